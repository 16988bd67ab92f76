"""What hooks cost: upload throughput with the HTTP and AMQP notifiers on (every post-*
event), and the latency a blocking pre-create HTTP hook adds to POST. The baseline is
tuspluggy without hooks, measured in the same run."""

from __future__ import annotations

import http.server
import statistics
import threading
import time

from httpclient import Connection

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672"
_RECEIVER = None


class _Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def receiver_url() -> str:
    """A hook endpoint in this process that answers 200 at once (threads, keep-alive)."""
    global _RECEIVER
    if _RECEIVER is None:
        _RECEIVER = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
        _RECEIVER.daemon_threads = True
        threading.Thread(target=_RECEIVER.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{_RECEIVER.server_address[1]}/hook"


def creation_latency(port: int, count: int = 400) -> dict:
    conn = Connection("127.0.0.1", port)
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        response = conn.request("POST", "/files", {"Tus-Resumable": "1.0.0", "Upload-Length": "10"})
        latencies.append(time.perf_counter() - start)
        if response.status != 201:
            raise RuntimeError(f"POST answered {response.status}: {response.body[:200]!r}")
    conn.close()
    latencies.sort()
    return {"POST p50 ms": statistics.median(latencies) * 1000, "POST p99 ms": latencies[int(count * 0.99)] * 1000}


def hook_scenarios(gib, chunk, Scenario, one_stream_in_patches, make_tuspluggy):
    url = receiver_url()

    def plain(d):
        server = make_tuspluggy(d)
        server.name = "tuspluggy, no hooks"
        return server

    def notifiers(d):
        server = make_tuspluggy(d, extra=("--hooks-http-urls", url, "--hooks-amqp-url", AMQP_URL,
                                          "--hooks", "post-create,post-receive,post-finish,post-terminate"))
        server.name = "tuspluggy, HTTP + AMQP post-* hooks"
        return server

    def pre_create(d):
        server = make_tuspluggy(d, extra=("--hooks-http-urls", url, "--hooks", "pre-create"))
        server.name = "tuspluggy, HTTP pre-create hook"
        return server

    return [
        Scenario("hooks: 1 GiB in 64 MiB PATCHes", lambda p: one_stream_in_patches(p, gib, chunk), [plain, notifiers],
                 baseline="tuspluggy, no hooks"),
        Scenario("hooks: POST latency", creation_latency, [plain, pre_create], baseline="tuspluggy, no hooks"),
    ]
