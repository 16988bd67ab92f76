"""Observability: GET /metrics (Prometheus text), GET /health (readiness), one log line
per request with an id (text and --log-format json), --sentry-dsn."""

from __future__ import annotations

import json
import os
import shutil

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tuspluggy.metrics import Metrics
from tuspluggy.testing import ServerProcess, ThreadServer, tus_upload, wait_for

TUS = {"Tus-Resumable": "1.0.0"}


def scrape(origin: str) -> dict[tuple[str, tuple], float]:
    response = httpx.get(origin + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def origin_of(url: str) -> str:
    return url.rsplit("/files", 1)[0]


def test_metrics_count_uploads_bytes_and_requests(data_dir):
    with ThreadServer(data_dir=data_dir, info_dir=data_dir) as srv:
        origin = origin_of(srv.url)
        before = scrape(origin)
        location = tus_upload(srv.url + "/", b"x" * 300_000, chunk_size=100_000)
        assert httpx.head(location, headers=TUS).status_code == 200
        unfinished = httpx.post(srv.url + "/", headers={**TUS, "Upload-Length": "10"}).headers["Location"]
        assert httpx.delete(unfinished, headers=TUS).status_code == 204
        assert httpx.head(srv.url + "/" + "0" * 8, headers=TUS).status_code == 404
        after = scrape(origin)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("tuspluggy_uploads_created_total") == 2
    assert grew("tuspluggy_uploads_finished_total") == 1
    assert grew("tuspluggy_uploads_terminated_total") == 1
    assert grew("tuspluggy_bytes_received_total") == 300_000
    assert value(after, "tuspluggy_active_uploads") == 0
    assert grew("tuspluggy_http_requests_total", method="POST", status="201") == 2
    assert grew("tuspluggy_http_requests_total", method="PATCH", status="204") == 3
    assert grew("tuspluggy_http_requests_total", method="HEAD", status="200") == 1
    assert grew("tuspluggy_http_requests_total", method="HEAD", status="404") == 1
    assert grew("tuspluggy_http_requests_total", method="DELETE", status="204") == 1
    assert grew("tuspluggy_http_request_duration_seconds_count", method="PATCH") == 3
    # Families that count only once the event dispatcher reports into them are declared.
    assert ("tuspluggy_hook_events_undelivered", ()) in after


def test_unknown_methods_do_not_create_label_values(data_dir):
    with ThreadServer(data_dir=data_dir, info_dir=data_dir) as srv:
        origin = origin_of(srv.url)
        for method in ("BREW", "PROPFIND", "X" * 40):
            response = httpx.request(method, srv.url + "/", headers=TUS)
            assert 400 <= response.status_code < 500
        samples = scrape(origin)
    methods = {dict(labels).get("method") for (name, labels) in samples if name == "tuspluggy_http_requests_total"}
    assert "BREW" not in methods and "other" in methods


def test_hook_delivery_and_undelivered_counters():
    """The interface the event dispatcher reports through (ctx.extras["metrics"])."""
    metrics = Metrics()
    metrics.hook_delivery("http", "post-finish", "ok")
    metrics.hook_delivery("http", "post-finish", "failed")
    metrics.hook_delivery("http", "post-finish", "ok")
    waiting = [3]
    metrics.undelivered_from(lambda: waiting[0])
    text = metrics.render().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    key = (("event", "post-finish"), ("notifier", "http"), ("outcome", "ok"))
    assert samples[("tuspluggy_hook_deliveries_total", key)] == 2
    assert samples[("tuspluggy_hook_events_undelivered", ())] == 3


def test_health_is_ready_then_names_the_broken_storage(tmp_path):
    data = tmp_path / "data"
    info = tmp_path / "info"
    with ThreadServer(data_dir=str(data), info_dir=str(info)) as srv:
        origin = origin_of(srv.url)
        response = httpx.get(origin + "/health")
        assert response.status_code == 200 and response.text.strip() == "ok"
        shutil.rmtree(data)
        response = httpx.get(origin + "/health")
        assert response.status_code == 503
        assert "storage" in response.text and "\n" not in response.text.strip()
        os.makedirs(data)
        assert httpx.get(origin + "/health").status_code == 200


def test_one_json_log_line_per_request_with_the_request_id(data_dir):
    with ServerProcess("--log-format", "json", data_dir=data_dir) as server:
        response = httpx.post(server.url + "/", headers={**TUS, "Upload-Length": "5", "X-Request-ID": "abc-123"})
        assert response.status_code == 201
        assert response.headers["X-Request-ID"] == "abc-123"
        generated = httpx.head(response.headers["Location"], headers=TUS).headers["X-Request-ID"]
        assert len(generated) >= 16

        def lines():
            found = []
            for line in server.log().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("logger") == "tuspluggy.access":
                    found.append(entry)
            return found if len(found) >= 2 else None

        entries = wait_for(lines)
    by_id = {e["request_id"]: e for e in entries}
    assert by_id["abc-123"]["method"] == "POST" and by_id["abc-123"]["status"] == 201
    assert by_id[generated]["method"] == "HEAD" and by_id[generated]["status"] == 200
    assert all("duration_ms" in e for e in entries)
    assert len(entries) == 2  # one line per request


def test_text_log_line_has_the_request_id(data_dir):
    with ServerProcess(data_dir=data_dir) as server:
        httpx.post(server.url + "/", headers={**TUS, "Upload-Length": "5", "X-Request-ID": "req-42"})
        wait_for(lambda: "req-42 POST /files" in server.log())


def test_sentry_dsn_sends_an_event_for_a_500(data_dir):
    pytest.importorskip("sentry_sdk", reason="pip install 'tuspluggy[sentry]' to test --sentry-dsn")
    import http.server
    import threading

    received = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, self.rfile.read(int(self.headers.get("Content-Length", 0)))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    sentry = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=sentry.serve_forever, daemon=True).start()
    try:
        dsn = f"http://publickey@127.0.0.1:{sentry.server_address[1]}/42"
        with ServerProcess("--sentry-dsn", dsn, data_dir=data_dir) as server:
            location = tus_upload(server.url + "/", b"abc")
            upload_id = location.rsplit("/", 1)[1]
            # A record that is not JSON: the info store fails, the server answers 500.
            with open(os.path.join(data_dir, upload_id + ".info"), "w") as file:
                file.write("{not json")
            assert httpx.head(location, headers=TUS).status_code == 500
            wait_for(lambda: received, timeout=15)
    finally:
        sentry.shutdown()
    path, body = received[0]
    if body[:2] == b"\x1f\x8b":
        import gzip

        body = gzip.decompress(body)
    assert path.startswith("/api/42/")
    assert b"unexpected error" in body or b"JSONDecodeError" in body


def test_workers_share_counters_in_prometheus_multiprocess_mode(data_dir, tmp_path):
    shared = tmp_path / "prometheus"
    shared.mkdir()
    with ServerProcess("--workers", "2", data_dir=data_dir, env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}) as server:
        origin = origin_of(server.url)
        for _ in range(6):  # new connections: the kernel spreads them over both workers
            with httpx.Client() as client:
                assert client.post(server.url + "/", headers={**TUS, "Upload-Length": "5"}).status_code == 201
        for _ in range(3):  # whichever worker answers, it reports the sum
            with httpx.Client() as client:
                samples = {}
                for family in text_string_to_metric_families(client.get(origin + "/metrics").text):
                    for sample in family.samples:
                        samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
            assert value(samples, "tuspluggy_uploads_created_total") == 6
