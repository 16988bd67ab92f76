"""tuspluggy against @tus/server (+ @tus/file-store), side by side on loopback.

Run through bench/run (it installs the peer from npm into bench/.cache). Every scenario
starts a fresh server (so peak RSS belongs to that scenario), with its data in a fresh
directory of the same file system, and the servers alternate: run 1 starts with
tuspluggy, run 2 with @tus/server, and so on. Figures are medians over the runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpclient import Connection  # noqa: E402

BENCH = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(BENCH, ".cache")
NODE_DIR = os.path.join(CACHE, "node")
MiB = 1024 * 1024
MB = 1e6
TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {**TUS, "Content-Type": "application/offset+octet-stream"}


# -- servers ----------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    found = [pid]
    for index in range(len(found) + 64):
        if index >= len(found):
            break
        try:
            for task in os.listdir(f"/proc/{found[index]}/task"):
                with open(f"/proc/{found[index]}/task/{task}/children") as file:
                    found += [int(p) for p in file.read().split()]
        except OSError:
            continue
    return found


def status_kib(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


@dataclass
class Server:
    name: str
    command: list[str]
    data_dir: str
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    port: int = 0
    log_path: str = ""

    def start(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        os.makedirs(self.data_dir)
        self.log_path = self.data_dir.rstrip("/") + ".log"
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=log, text=True,
                                        env={**os.environ, **self.env}, start_new_session=True)
        deadline = time.monotonic() + 60
        for line in self.process.stdout:
            match = re.search(r"listening (?:on http://[\d.]+:)?(\d+)", line)
            if match:
                self.port = int(match.group(1))
                break
            if time.monotonic() > deadline:
                break
        if not self.port:
            self.stop()
            raise RuntimeError(f"{self.name} did not start; see {self.log_path}")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
        wait_until_ready(self.port)

    def pids(self) -> list[int]:
        return descendants(self.process.pid) if self.process else []

    def peak_rss_mb(self) -> float:
        # VmHWM: each process's peak resident set since it started; summed over workers.
        return sum(status_kib(pid, "VmHWM") for pid in self.pids()) * 1024 / MB

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(20)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        self.process = None
        self.port = 0
        shutil.rmtree(self.data_dir, ignore_errors=True)


def wait_until_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = Connection("127.0.0.1", port, timeout=5)
            response = conn.request("OPTIONS", "/files", TUS)
            conn.close()
            if response.status < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no server answering on port {port}")


def make_tuspluggy(data_dir: str, workers: int = 1, extra: tuple[str, ...] = ()) -> Server:
    python = sys.executable
    command = [python, "-m", "tuspluggy.cli", "serve", "--host", "127.0.0.1", "--port", "0",
               "--data-dir", data_dir, "--info-dir", data_dir, "--workers", str(workers),
               # @tus/server logs nothing per request either; errors still show.
               "--log-level", "WARN", *extra]
    name = "tuspluggy" if workers == 1 else f"tuspluggy --workers {workers}"
    return Server(name, command, data_dir, env={"PYTHONUNBUFFERED": "1"})


CEILING = "stack ceiling: bare hypercorn, no storage"


def make_ceiling(data_dir: str) -> Server:
    """hypercorn + tuspluggy's tuning with an app that stores nothing (bench/bare_server.py)."""
    return Server(CEILING, [sys.executable, os.path.join(BENCH, "bare_server.py")], data_dir,
                  env={"PYTHONUNBUFFERED": "1"})


def make_peer(data_dir: str) -> Server:
    return Server("@tus/server", ["node", os.path.join(NODE_DIR, "tus_node_server.mjs"), data_dir], data_dir)


# -- one client's operations --------------------------------------------------------


def path_of(location: str) -> str:
    return urlsplit(location).path


def create(conn: Connection, length: int) -> str:
    response = conn.request("POST", "/files", {**TUS, "Upload-Length": str(length)})
    if response.status != 201:
        raise RuntimeError(f"POST answered {response.status}: {response.body[:200]!r}")
    return path_of(response.headers["location"])


def patch(conn: Connection, path: str, offset: int, pieces: list) -> int:
    response = conn.request("PATCH", path, {**OCTET, "Upload-Offset": str(offset)}, pieces)
    if response.status != 204:
        raise RuntimeError(f"PATCH answered {response.status}: {response.body[:200]!r}")
    return int(response.headers["upload-offset"])


def head_offset(conn: Connection, path: str) -> int:
    response = conn.request("HEAD", path, TUS)
    if response.status != 200:
        raise RuntimeError(f"HEAD answered {response.status}")
    return int(response.headers["upload-offset"])


# -- scenarios ----------------------------------------------------------------------

_BUFFER: bytes | None = None


def buffer(size: int = 64 * MiB) -> bytes:
    global _BUFFER
    if _BUFFER is None or len(_BUFFER) < size:
        _BUFFER = os.urandom(size)
    return _BUFFER


def one_stream_in_patches(port: int, total: int, patch_size: int) -> dict:
    data = memoryview(buffer(patch_size))[:patch_size]
    conn = Connection("127.0.0.1", port)
    start = time.perf_counter()
    path = create(conn, total)
    offset = 0
    while offset < total:
        size = min(patch_size, total - offset)
        offset = patch(conn, path, offset, [data[:size]])
    seconds = time.perf_counter() - start
    conn.close()
    return {"MB/s": total / seconds / MB}


def one_stream_one_patch(port: int, total: int) -> dict:
    piece = 64 * MiB if total >= 64 * MiB else total
    data = memoryview(buffer(piece))[:piece]
    pieces = [data] * (total // piece) + ([data[: total % piece]] if total % piece else [])
    conn = Connection("127.0.0.1", port)
    start = time.perf_counter()
    path = create(conn, total)
    offset = patch(conn, path, 0, pieces)
    seconds = time.perf_counter() - start
    conn.close()
    assert offset == total
    return {"MB/s": total / seconds / MB}


def parallel_streams(port: int, streams: int, size: int) -> dict:
    data = memoryview(buffer(size))[:size]
    errors = []
    barrier = threading.Barrier(streams + 1)

    def one() -> None:
        conn = Connection("127.0.0.1", port)
        conn.connect()
        barrier.wait()
        try:
            path = create(conn, size)
            patch(conn, path, 0, [data])
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            conn.close()

    threads = [threading.Thread(target=one) for _ in range(streams)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} parallel uploads failed: {errors[0]}")
    return {"MB/s": streams * size / seconds / MB}


def _client_process(port: int, jobs: list, kind: str, threads: int, ready, go, results) -> None:
    """One load-generator process: `threads` keep-alive connections working through `jobs`."""
    payload = os.urandom(4096)
    latencies: list[float] = []
    created: list[str] = []
    lock = threading.Lock()
    queue = list(reversed(jobs))
    errors = []

    def worker() -> None:
        conn = Connection("127.0.0.1", port, timeout=60)
        conn.connect()
        local_lat, local_created = [], []
        go.wait()
        try:
            while True:
                with lock:
                    if not queue:
                        break
                    job = queue.pop()
                t0 = time.perf_counter()
                if kind == "small":
                    path = create(conn, len(payload))
                    patch(conn, path, 0, [payload])
                    local_created.append(path)
                else:
                    response = conn.request("HEAD", job, TUS)
                    if response.status != 200:
                        raise RuntimeError(f"HEAD answered {response.status}")
                local_lat.append(time.perf_counter() - t0)
        except Exception as error:
            errors.append(repr(error))
        finally:
            conn.close()
            with lock:
                latencies.extend(local_lat)
                created.extend(local_created)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    ready.release()
    for thread in pool:
        thread.join()
    cpu = sum(os.times()[:2])
    results.put({"latencies": latencies, "created": created, "errors": errors, "cpu": cpu})


def load(port: int, kind: str, jobs: list, concurrency: int, processes: int) -> dict:
    """Run `jobs` ("small" uploads, or HEAD paths) at `concurrency` from several processes."""
    context = multiprocessing.get_context("fork")
    ready = context.Semaphore(0)
    go = context.Event()
    results = context.Queue()
    per_process = concurrency // processes
    shares = [jobs[i::processes] for i in range(processes)]
    workers = [context.Process(target=_client_process, args=(port, share, kind, per_process, ready, go, results))
               for share in shares]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire(timeout=60)
    time.sleep(0.2)  # every connection is open and waiting on `go`
    start = time.perf_counter()
    go.set()
    collected = [results.get(timeout=600) for _ in workers]
    seconds = time.perf_counter() - start
    for worker in workers:
        worker.join()
    errors = [e for c in collected for e in c["errors"]]
    if errors:
        raise RuntimeError(f"{len(errors)} client errors, first: {errors[0]}")
    latencies = sorted(l for c in collected for l in c["latencies"])
    done = len(latencies)
    return {
        "per_s": done / seconds,
        "p50_ms": latencies[done // 2] * 1000,
        "p99_ms": latencies[min(done - 1, int(done * 0.99))] * 1000,
        "created": [p for c in collected for p in c["created"]],
        "client_cpu_s": sum(c["cpu"] for c in collected),
        "seconds": seconds,
    }


def small_and_heads(port: int, uploads: int, heads: int, concurrency: int, processes: int) -> dict:
    small = load(port, "small", list(range(uploads)), concurrency, processes)
    created = small.pop("created")
    spread = load(port, "head", [created[i % len(created)] for i in range(heads)], concurrency, processes)
    one = load(port, "head", [created[0]] * heads, concurrency, processes)
    return {
        "small uploads/s": small["per_s"], "small p50 ms": small["p50_ms"], "small p99 ms": small["p99_ms"],
        "HEAD/s one upload": one["per_s"], "HEAD p50 ms one": one["p50_ms"], "HEAD p99 ms one": one["p99_ms"],
        "HEAD/s many uploads": spread["per_s"], "HEAD p50 ms many": spread["p50_ms"],
        "HEAD p99 ms many": spread["p99_ms"],
        "client CPU s per 1000 small": small["client_cpu_s"] / uploads * 1000,
        "client CPU s per 1000 HEAD": one["client_cpu_s"] / heads * 1000,
    }


def cut_and_resume(port: int, total: int, cut_after: int) -> dict:
    data = memoryview(buffer(64 * MiB))
    conn = Connection("127.0.0.1", port)
    path = create(conn, total)
    conn.send_head("PATCH", path, {**OCTET, "Upload-Offset": "0"}, total)
    sent = 0
    while sent < cut_after:
        piece = data[: min(len(data), cut_after - sent)]
        conn.sock.sendall(piece)
        sent += len(piece)
    cut = time.perf_counter()
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    # The server must notice the cut, store what arrived and record it; poll HEAD until
    # the offset holds still.
    probe = Connection("127.0.0.1", port)
    last, stable_since = -1, time.perf_counter()
    while time.perf_counter() - cut < 15:
        offset = head_offset(probe, path)
        if offset != last:
            last, stable_since = offset, time.perf_counter()
        elif time.perf_counter() - stable_since > 0.3:
            break
        time.sleep(0.02)
    recorded = time.perf_counter() - cut - 0.3
    kept = last
    # Resume: retry while the cut request still holds the upload's lock.
    resumed_at = time.perf_counter()
    while True:
        offset = head_offset(probe, path)
        remaining = total - offset
        pieces = []
        while remaining > 0:
            piece = data[: min(len(data), remaining)]
            pieces.append(piece)
            remaining -= len(piece)
        response = probe.request("PATCH", path, {**OCTET, "Upload-Offset": str(offset)}, pieces)
        if response.status == 204:
            break
        if time.perf_counter() - resumed_at > 30:
            raise RuntimeError(f"resume PATCH answered {response.status}: {response.body[:200]!r}")
        probe.close()
        time.sleep(0.1)
    final = head_offset(probe, path)
    probe.close()
    return {
        "kept MiB of cut": kept / MiB,
        "kept fraction": kept / cut_after,
        "s until offset recorded": max(recorded, 0.0),
        "resumed to the end": 1.0 if final == total else 0.0,
    }


# -- machine limits -----------------------------------------------------------------


def _sink(server: socket.socket, report) -> None:
    conn, _ = server.accept()
    view = memoryview(bytearray(MiB))
    total = 0
    while True:
        n = conn.recv_into(view)
        if not n:
            break
        total += n
    report.put(total)


def loopback_throughput(total: int = 2048 * MiB) -> float:
    """One TCP stream over loopback between two processes, Python sendall/recv_into."""
    context = multiprocessing.get_context("fork")
    server = socket.create_server(("127.0.0.1", 0))
    report = context.Queue()
    sink = context.Process(target=_sink, args=(server, report))
    sink.start()
    data = memoryview(buffer(64 * MiB))
    client = socket.create_connection(server.getsockname())
    start = time.perf_counter()
    sent = 0
    while sent < total:
        client.sendall(data[: min(len(data), total - sent)])
        sent += min(len(data), total - sent)
    client.close()
    received = report.get(timeout=120)
    seconds = time.perf_counter() - start
    sink.join()
    server.close()
    return received / seconds / MB


def disk_write_throughput(directory: str, total: int = 1024 * MiB, sync: bool = False) -> float:
    """Sequential 1 MiB writes (what the servers do) into the directory the servers use,
    starting with no dirty pages left by an earlier scenario."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "disk-probe")
    data = memoryview(buffer(64 * MiB))
    os.sync()
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        written = 0
        while written < total:
            written += os.write(fd, data[(written % (60 * MiB)):][: MiB])
        if sync:
            os.fdatasync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - start
    os.unlink(path)
    return total / seconds / MB


# -- the run ------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    run: object  # callable(port) -> dict
    servers: list  # factories(data_dir) -> Server
    baseline: str = "@tus/server"  # ratios are to this server's figures


def median_table(rows: dict) -> dict:
    return {key: statistics.median(values) for key, values in rows.items() if values}


def versions() -> dict:
    def pip_version(name: str) -> str:
        try:
            from importlib.metadata import version

            return version(name)
        except Exception:
            return "?"

    def npm_version(name: str) -> str:
        try:
            with open(os.path.join(NODE_DIR, "node_modules", name, "package.json")) as file:
                return json.load(file)["version"]
        except OSError:
            return "?"

    return {
        "python": platform.python_version(),
        "tuspluggy": pip_version("tuspluggy"),
        "trio": pip_version("trio"),
        "hypercorn": pip_version("hypercorn"),
        "quart": pip_version("quart"),
        "quart-trio": pip_version("quart-trio"),
        "node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip(),
        "@tus/server": npm_version("@tus/server"),
        "@tus/file-store": npm_version("@tus/file-store"),
    }


def machine() -> dict:
    model = "?"
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = status = 0
    try:
        with open("/proc/meminfo") as file:
            mem = int(file.readline().split()[1]) // 1024
    except OSError:
        pass
    del status
    return {"cpu": model, "cores": os.cpu_count(), "memory MiB": mem, "kernel": platform.release(),
            "disk": disk_of(CACHE)}


def disk_of(path: str) -> str:
    try:
        out = subprocess.run(["df", "-T", path], capture_output=True, text=True).stdout.splitlines()[-1].split()
        return f"{out[0]} ({out[1]})"
    except Exception:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="repetitions; figures are medians")
    parser.add_argument("--scale", type=float, default=1.0, help="size multiplier (0.05 for a smoke test)")
    parser.add_argument("--only", default="", help="comma-separated scenario names to run")
    parser.add_argument("--results", default=os.path.join(BENCH, "RESULTS.md"), help="where to write the results")
    parser.add_argument("--hooks", action="store_true", help="also measure the cost of hooks (needs RabbitMQ)")
    args = parser.parse_args()
    scale = args.scale
    gib = int(1024 * MiB * scale) // MiB * MiB or MiB
    chunk = 64 * MiB if scale >= 1 else max(MiB, int(64 * MiB * scale) // MiB * MiB)
    parallel_size = max(MiB, int(64 * MiB * scale) // MiB * MiB)
    small_n = max(64, int(2000 * scale))
    head_n = max(128, int(5000 * scale))
    data_root = os.path.join(CACHE, "data")
    os.makedirs(data_root, exist_ok=True)

    peer = make_peer
    one = make_tuspluggy

    def two(d):
        return make_tuspluggy(d, workers=2)

    scenarios = [
        Scenario("1 GiB in 64 MiB PATCHes", lambda p: one_stream_in_patches(p, gib, chunk), [one, peer]),
        Scenario("1 GiB in one PATCH", lambda p: one_stream_one_patch(p, gib), [one, peer, make_ceiling]),
        Scenario("16 parallel 64 MiB uploads", lambda p: parallel_streams(p, 16, parallel_size),
                 [one, two, peer, make_ceiling]),
        Scenario("small uploads and HEADs", lambda p: small_and_heads(p, small_n, head_n, 32, 4),
                 [one, two, peer, make_ceiling]),
        Scenario("cut mid-PATCH and resumed", lambda p: cut_and_resume(p, 4 * chunk, int(1.5 * chunk)), [one, peer]),
    ]
    if args.hooks:
        scenarios += hook_scenarios(gib, chunk)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",")]
        scenarios = [s for s in scenarios if any(w in s.name for w in wanted)]

    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()
    limits: dict[str, list[float]] = {"loopback TCP MB/s": [], "disk write MB/s (page cache)": [],
                                      "disk write MB/s (fdatasync)": []}
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    for run in range(args.runs):
        print(f"== run {run + 1}/{args.runs}", flush=True)
        limits["loopback TCP MB/s"].append(loopback_throughput(max(64 * MiB, 2 * gib)))
        limits["disk write MB/s (page cache)"].append(disk_write_throughput(data_root, gib))
        limits["disk write MB/s (fdatasync)"].append(disk_write_throughput(data_root, gib, sync=True))
        for scenario in scenarios:
            factories = scenario.servers if run % 2 == 0 else list(reversed(scenario.servers))
            for factory in factories:
                # Dirty pages of the previous scenario must not be written back during this one.
                os.sync()
                server = factory(os.path.join(data_root, f"srv-{len(results)}"))
                server.start()
                try:
                    cpu0 = server.cpu()
                    t0 = time.perf_counter()
                    figures = scenario.run(server.port)
                    wall = time.perf_counter() - t0
                    figures["peak RSS MB"] = server.peak_rss_mb()
                    figures["server CPU %"] = (server.cpu() - cpu0) / wall * 100
                finally:
                    server.stop()
                cell = results.setdefault((scenario.name, server.name), {})
                for key, value in figures.items():
                    cell.setdefault(key, []).append(value)
                shown = ", ".join(f"{k} {v:.3g}" for k, v in figures.items())
                print(f"  {scenario.name:<30} {server.name:<22} {shown}", flush=True)
    load_end = os.getloadavg()
    report = render(args, scenarios, results, median_table(limits), limits, started, load_start, load_end)
    print(report["table"])
    with open(args.results, "w") as file:
        file.write(report["markdown"])
    print(f"wrote {args.results}")


def hook_scenarios(gib: int, chunk: int) -> list[Scenario]:
    """Upload throughput with notifiers on, and the latency a blocking pre-create hook adds."""
    from hooks_bench import hook_scenarios as make

    return make(gib, chunk, Scenario, one_stream_in_patches, make_tuspluggy)


TARGETS = {
    # (scenario, figure): (minimum or maximum ratio tuspluggy/@tus/server, "min"|"max")
    ("1 GiB in 64 MiB PATCHes", "MB/s"): (2.5, "min"),
    ("1 GiB in one PATCH", "MB/s"): (2.5, "min"),
    ("16 parallel 64 MiB uploads", "MB/s"): (1.5, "min"),
    ("small uploads and HEADs", "small uploads/s"): (1.5, "min"),
    ("small uploads and HEADs", "HEAD/s one upload"): (2.0, "min"),
    ("small uploads and HEADs", "HEAD/s many uploads"): (2.0, "min"),
    ("1 GiB in 64 MiB PATCHes", "peak RSS MB"): (0.6, "max"),
}


def hook_summary(results) -> str:
    """The two hook targets, stated as the issue states them."""
    lines = []
    plain = median_table(results.get(("hooks: 1 GiB in 64 MiB PATCHes", "tuspluggy, no hooks"), {}))
    hooked = median_table(results.get(("hooks: 1 GiB in 64 MiB PATCHes", "tuspluggy, HTTP + AMQP post-* hooks"), {}))
    if plain.get("MB/s") and hooked.get("MB/s"):
        change = (hooked["MB/s"] / plain["MB/s"] - 1) * 100
        ok = "met" if change >= -10 else "MISSED"
        lines.append(f"- Upload throughput with the HTTP and AMQP notifiers on: {hooked['MB/s']:.0f} vs "
                     f"{plain['MB/s']:.0f} MB/s without hooks ({change:+.1f}%; target: within 10%, {ok}).")
    plain = median_table(results.get(("hooks: POST latency", "tuspluggy, no hooks"), {}))
    hooked = median_table(results.get(("hooks: POST latency", "tuspluggy, HTTP pre-create hook"), {}))
    if plain.get("POST p50 ms") and hooked.get("POST p50 ms"):
        added = hooked["POST p50 ms"] - plain["POST p50 ms"]
        ok = "met" if added < 5 else "MISSED"
        lines.append(f"- A blocking pre-create HTTP hook adds {added:.2f} ms to POST at p50 "
                     f"({hooked['POST p50 ms']:.2f} vs {plain['POST p50 ms']:.2f} ms; target: under 5 ms, {ok}).")
    return ("## Hooks\n\n" + "\n".join(lines)) if lines else ""


def render(args, scenarios, results, limits, raw_limits, started, load_start, load_end) -> dict:
    lines = []
    header = "| scenario | figure | server | median | ratio (to the baseline) | target | of machine limit |"
    lines += [header, "|---|---|---|---|---|---|---|"]
    tcp = limits.get("loopback TCP MB/s")
    disk = limits.get("disk write MB/s (page cache)")
    for scenario in scenarios:
        names = [n for (s, n) in results if s == scenario.name]
        peer = scenario.baseline
        peer_cell = median_table(results.get((scenario.name, peer), {}))
        for name in names:
            cell = median_table(results[(scenario.name, name)])
            for figure, value in cell.items():
                ratio = ""
                if name != peer and peer_cell.get(figure):
                    ratio = f"{value / peer_cell[figure]:.2f}×"
                target = ""
                goal = TARGETS.get((scenario.name, figure))
                if goal and name != peer and name != CEILING and peer_cell.get(figure):
                    r = value / peer_cell[figure]
                    ok = r >= goal[0] if goal[1] == "min" else r <= goal[0]
                    sign = "≥" if goal[1] == "min" else "≤"
                    target = f"{sign} {goal[0]}× {'met' if ok else f'MISSED by {abs(r - goal[0]) / goal[0] * 100:.0f}%'}"
                limit = ""
                if figure == "MB/s" and tcp and disk:
                    limit = f"{value / tcp:.0%} of TCP, {value / disk:.0%} of disk"
                lines.append(f"| {scenario.name} | {figure} | {name} | {value:.4g} | {ratio} | {target} | {limit} |")
    table = "\n".join(lines)
    hook_lines = hook_summary(results)
    limit_lines = "\n".join(
        f"- {name}: median {statistics.median(values):.0f} (runs: {', '.join(f'{v:.0f}' for v in values)})"
        for name, values in raw_limits.items() if values
    )
    raw = ["| scenario | server | figure | runs |", "|---|---|---|---|"]
    for (scenario, name), cell in results.items():
        for figure, values in cell.items():
            raw.append(f"| {scenario} | {name} | {figure} | {', '.join(f'{v:.4g}' for v in values)} |")
    command = "bench/run " + " ".join(sys.argv[1:])
    info = machine()
    ver = versions()
    analysis = ""
    analysis_path = os.path.join(BENCH, "ANALYSIS.md")
    if os.path.exists(analysis_path):
        with open(analysis_path) as file:
            analysis = file.read()
    markdown = f"""# Benchmark results: tuspluggy vs @tus/server

Written by `{command.strip()}` on {started:%Y-%m-%d %H:%M} UTC ({args.runs} runs, medians; scale {args.scale}).
MB = 10^6 bytes. Ratios are tuspluggy / @tus/server measured in the same run.

- Machine: {info['cpu']}, {info['cores']} cores, {info['memory MiB']} MiB RAM, Linux {info['kernel']}, data on {info['disk']}
- Load average (1/5/15 min) at start: {' / '.join(f'{x:.2f}' for x in load_start)}; at end: {' / '.join(f'{x:.2f}' for x in load_end)}
- Versions: {', '.join(f'{k} {v}' for k, v in ver.items())}
- Both servers store into plain files under bench/.cache/data on the same file system; a fresh server
  (and data directory) per scenario, servers alternating first/second from run to run.
- Load generator: Python on raw sockets (bench/httpclient.py), several processes for the small-request
  scenarios; it shares the 2 cores with the server under test (its CPU time is in the raw figures).

## Machine limits (same run)

{limit_lines}

## Figures

{table}

{hook_lines}

## Every run

{chr(10).join(raw)}

{analysis}
"""
    return {"table": table, "markdown": markdown}


if __name__ == "__main__":
    main()
