"""Shared helpers of the hook tests: schema checks against the hooks document, hook
scripts, and the FastAPI receiver and Celery worker from contrib/ run as real processes."""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema

from tuspluggy.testing import stop_process, wait_for

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).resolve().parent / "hook_schemas"
CONTRIB = ROOT / "contrib"

_format_checker = jsonschema.FormatChecker()


@_format_checker.checks("ipvanyaddress", raises=ValueError)
def _is_ip(value) -> bool:
    ipaddress.ip_address(value)
    return True


def load_schema(fmt: str) -> dict:
    """The document's schema for `fmt`, read as pydantic (v1) meant it: a property that is
    not required is Optional, so it may also be null (the document's own example has
    "path": null and "parts": null)."""
    schema = copy.deepcopy(json.loads((SCHEMAS / f"{fmt}.json").read_text()))
    for definition in schema["definitions"].values():
        required = set(definition.get("required", ()))
        for name, prop in definition["properties"].items():
            if name not in required:
                definition["properties"][name] = {"anyOf": [prop, {"type": "null"}]}
    return schema


def _same_fields(value, schema: dict, node: dict, where: str) -> None:
    """Field for field: every object has exactly the properties its model declares."""
    if "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    if node.get("type") == "object" and "properties" in node and isinstance(value, dict):
        assert set(value) == set(node["properties"]), f"{where}: fields {sorted(value)} != {sorted(node['properties'])}"
        for key, sub in node["properties"].items():
            _same_fields(value[key], schema, sub, f"{where}.{key}")


def validate_payload(payload: dict, fmt: str) -> None:
    schema = load_schema(fmt)
    jsonschema.validate(payload, schema, format_checker=_format_checker)
    _same_fields(payload, json.loads((SCHEMAS / f"{fmt}.json").read_text()),
                 json.loads((SCHEMAS / f"{fmt}.json").read_text()), "hook")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_jsonl(path) -> list[dict]:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def wait_until(predicate, timeout: float = 30, interval: float = 0.1):
    return wait_for(predicate, timeout, interval)


def recording_hook(directory: Path, log_path: Path, name: str = "hook", *, stdout: str = "", stderr: str = "",
                   status: int = 0, sleep: float = 0) -> Path:
    """An executable that appends {argv} as a JSON line to `log_path`, then behaves as told."""
    script = directory / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys, time\n"
        f"with open({str(log_path)!r}, 'a') as f: f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"time.sleep({sleep!r})\n"
        f"sys.stdout.write({stdout!r}); sys.stderr.write({stderr!r})\n"
        f"sys.exit({status})\n"
    )
    script.chmod(0o755)
    return script


class Receiver:
    """contrib/fastapi_receiver/server.py under uvicorn, on a fixed free port so it can be
    stopped and started again at the same address."""

    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.log_path = log_path
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        env = {**os.environ, "HOOKS_RECEIVER_LOG": str(self.log_path)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning"],
            cwd=CONTRIB / "fastapi_receiver", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def up():
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/docs", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 30)
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def received(self) -> list[dict]:
        return read_jsonl(self.log_path)


class TcpRelay:
    """A TCP relay to a real service on a fixed free port. stop() closes the port and every
    connection through it, as if the service went down; start() brings it back."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def start(self) -> TcpRelay:
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def accept() -> None:
            while True:
                try:
                    client, _ = listener.accept()
                except OSError:
                    return
                try:
                    upstream = socket.create_connection(self.target)
                except OSError:
                    client.close()
                    continue
                self._sockets += [client, upstream]
                threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
                threading.Thread(target=pump, args=(upstream, client), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self._sockets = []
