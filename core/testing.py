"""Test helpers for tuspluggy and for plugin authors (``from tuspluggy.testing import ...``).

- `ServerProcess`: a real ``tuspluggy serve`` process on a free port, over real HTTP.
- `live_server`: the same server inside the test's trio loop (fast, in-process).
- `tus_upload`: a minimal tus client for tests (creation + PATCH in chunks).
- `require_service`: a test needing RabbitMQ/Redis/PostgreSQL/NATS fails under CI when the
  service is missing and is skipped with a hint elsewhere.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from contextlib import asynccontextmanager

import httpx

LISTENING = re.compile(r"tuspluggy listening on (http://[^/\s]+)(\S*)")

SERVICES = {
    "rabbitmq": (("127.0.0.1", 5672), "rabbitmq-server -detached"),
    "redis": (("127.0.0.1", 6379), "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"),
    "postgres": (("127.0.0.1", 5432), "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"),
    "nats": (
        ("127.0.0.1", 4222),
        "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js",
    ),
}


def service_available(name: str, timeout: float = 1.0) -> bool:
    address, _ = SERVICES[name]
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Fail (CI=true) or skip (elsewhere) the calling test when `name` is not running."""
    import pytest

    if service_available(name):
        return
    _, start = SERVICES[name]
    message = (
        f"{name} is not running on {SERVICES[name][0][0]}:{SERVICES[name][0][1]}; start it with `{start}` "
        f"or `docker compose -f contrib/services-compose.yml up -d`"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class ServerProcess:
    """``tuspluggy serve`` in a subprocess on a free port. Use as a context manager."""

    def __init__(self, *args: str, data_dir: str | None = None, env: dict[str, str] | None = None,
                 port: int = 0, start_timeout: float = 30, python: str | None = None) -> None:
        self.args = list(args)
        # Another interpreter (a venv with extra plugins installed, see overlay_venv).
        self.python = python or sys.executable
        self.data_dir = data_dir
        self.env = env
        self.port = port
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self.url = ""  # e.g. http://127.0.0.1:43125/files
        self.origin = ""  # e.g. http://127.0.0.1:43125
        self.output: list[str] = []

    def command(self) -> list[str]:
        command = [self.python, "-m", "tuspluggy.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.data_dir:
            command += ["--data-dir", self.data_dir, "--info-dir", self.data_dir]
        return command + self.args

    def start(self) -> ServerProcess:
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
        )
        found = threading.Event()

        def pump() -> None:
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                self.output.append(line)
                match = LISTENING.search(line)
                if match and not found.is_set():
                    self.origin = match.group(1)
                    self.url = self.origin + match.group(2).rstrip("/")
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(self.start_timeout) or not self.url:
            self.stop()
            raise RuntimeError("tuspluggy did not start:\n" + "".join(self.output))
        # Later restarts reuse the same port so stored upload URLs stay valid.
        self.port = int(self.origin.rsplit(":", 1)[1])
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def log(self) -> str:
        return "".join(self.output)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items())


def tus_upload(url: str, data: bytes, *, chunk_size: int = 1024 * 1024, metadata: dict[str, str] | None = None,
               headers: dict[str, str] | None = None, client: httpx.Client | None = None) -> str:
    """Upload `data` to the creation URL `url`; return the upload's URL."""
    own = client is None
    client = client or httpx.Client(timeout=60)
    try:
        base = {"Tus-Resumable": "1.0.0", **(headers or {})}
        create = {**base, "Upload-Length": str(len(data))}
        if metadata:
            create["Upload-Metadata"] = encode_metadata(metadata)
        response = client.post(url, headers=create)
        response.raise_for_status()
        location = response.headers["Location"]
        offset = 0
        while offset < len(data):
            chunk = data[offset: offset + chunk_size]
            response = client.patch(location, content=chunk, headers={
                **base, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
            response.raise_for_status()
            offset = int(response.headers["Upload-Offset"])
        return location
    finally:
        if own:
            client.close()


@asynccontextmanager
async def live_server(*, plugins: Iterable[tuple[str, object]] = (), load_entrypoints: bool = True, **options):
    """A server in the current trio loop on a free port; yields its creation URL.

    `options` are option values with underscores (data_dir=..., expiration=5).
    """
    import trio

    from .config import Config
    from .options import core_options
    from .plugin_manager import collect, make_plugin_manager
    from .server import serve

    pm = make_plugin_manager(load_entrypoints=load_entrypoints, plugins=plugins)
    registry = collect(pm, core_options())
    options.setdefault("port", 0)
    config = Config.from_options(registry.options, **options)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: serve(config, pm, registry, announce=False, shutdown_trigger=trio.sleep_forever,
                                      task_status=task_status)
        )
        yield binds[0] + "/" + config.url.strip("/")
        nursery.cancel_scope.cancel()


class ThreadServer:
    """The in-process server (same code as `live_server`) in a thread of its own, for
    synchronous tests: ``with ThreadServer(data_dir=d, info_dir=d) as srv: srv.url``."""

    def __init__(self, **options) -> None:
        self.options = options
        self.url = ""
        self._thread: threading.Thread | None = None
        self._token = None
        self._stop = None
        self._error: BaseException | None = None

    def __enter__(self) -> ThreadServer:
        import trio

        ready = threading.Event()

        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            async with live_server(**self.options) as url:
                self.url = url
                ready.set()
                await self._stop.wait()

        def run() -> None:
            try:
                trio.run(main)
            except BaseException as error:  # reported to the test in __enter__
                self._error = error
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(30)
        if self._error or not self.url:
            raise RuntimeError(f"in-process server did not start: {self._error!r}")
        return self

    def __exit__(self, *exc) -> None:
        if self._token is not None and self._stop is not None:
            self._token.run_sync_soon(self._stop.set)
        if self._thread:
            self._thread.join(30)


def wait_for(predicate, timeout: float = 10, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; return that or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:g} s")
        time.sleep(interval)


def stop_process(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if `process` has not exited within `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def overlay_venv(path: str | os.PathLike) -> str:
    """A throwaway venv at `path` that sees every package of the running environment, for
    installing a plugin without touching that environment (other test runs sharing it
    would load the plugin too). Returns its python; install with
    ``[python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-e", project]``.

    Made without pip of its own (fast): a .pth file adds this environment's site-packages,
    processed as a site directory so editable installs in it keep working.
    """
    import sysconfig
    import venv

    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    python = os.path.join(path, "bin", "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    parents = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    with open(os.path.join(purelib, "_tuspluggy_overlay.pth"), "w") as pth:
        pth.write("import site; " + "; ".join(f"site.addsitedir({p!r})" for p in sorted(parents)) + "\n")
    return python


def read_raw_answer(sock, *, head_only: bool = False) -> bytes:
    """Bytes a server sends on a raw socket until it closes the connection (or, with
    `head_only`, until the answer's head is complete); a reset counts as a close."""
    received = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
            if head_only and b"\r\n\r\n" in received:
                break
    except ConnectionResetError:
        pass
    return received
