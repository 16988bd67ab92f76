"""The upload page and dashboard over plain HTTP: who may see the dashboard, the event
stream, and that the page is self-contained (works offline)."""

from __future__ import annotations

import json
import re
import signal
import threading
from pathlib import Path

import httpx
import pytest

from tuspluggy.testing import tus_upload
from tuspluggy.ui import STATIC_DIR

# A request that came through a proxy from another machine.
REMOTE = {"X-Forwarded-For": "203.0.113.9"}


def test_ui_is_off_unless_asked(server):
    assert httpx.get(server.origin + "/").status_code == 404
    assert httpx.get(server.origin + "/ui/uploads").status_code == 404


def test_upload_page_is_served_with_a_strict_content_security_policy(make_server):
    server = make_server("--ui")  # a bare --ui means yes
    page = httpx.get(server.origin + "/")
    assert page.status_code == 200
    assert 'data-endpoint="files/"' in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("ui/static/upload.js", "ui/static/tus-client.js", "ui/static/style.css", "ui/static/dashboard.js"):
        response = httpx.get(f"{server.origin}/{asset}")
        assert response.status_code == 200, asset


def test_page_loads_nothing_from_the_internet():
    # Offline by construction: no absolute URL in any file the browser gets.
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), path.name
        assert not re.search(r"""(import|fetch)\s*\(?\s*["'](https?:)?//""", text), path.name


def test_dashboard_answers_loopback_without_a_token_and_refuses_remote_clients(make_server):
    server = make_server("--ui", "yes", "--behind-proxy", "yes")
    assert httpx.get(server.origin + "/ui/uploads").status_code == 200
    refused = httpx.get(server.origin + "/ui/uploads", headers=REMOTE)
    assert refused.status_code == 403
    assert "--ui-token" in refused.text and len(refused.text.strip().splitlines()) == 1
    # A proxy on this machine forwarding a loopback client is still local (behind-proxy yes).
    assert httpx.get(server.origin + "/ui/uploads", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_dashboard_asks_remote_clients_for_the_ui_token(make_server):
    server = make_server("--ui", "yes", "--ui-token", "s3cret")
    api = server.origin + "/ui/api/snapshot"
    assert httpx.get(api, headers=REMOTE).status_code == 401
    assert httpx.get(api, headers={**REMOTE, "Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(api, headers={**REMOTE, "Authorization": "Bearer s3cret"}).status_code == 200
    # ?token= once sets a cookie, which the page's EventSource then carries.
    with httpx.Client(headers=REMOTE) as client:
        first = client.get(server.origin + "/ui/uploads?token=s3cret")
        assert first.status_code == 200
        assert "HttpOnly" in first.headers["Set-Cookie"]
        assert client.get(api).status_code == 200
    # The page itself and the tus endpoint are not behind the token.
    assert httpx.get(server.origin + "/", headers=REMOTE).status_code == 200


def test_dashboard_stream_sends_uploads_as_server_sent_events(make_server):
    server = make_server("--ui", "yes")
    location = tus_upload(server.url + "/", b"hello", metadata={"filename": "hello.txt"})
    with httpx.stream("GET", server.origin + "/ui/api/stream", timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        snapshot = None
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "snapshot":
                snapshot = json.loads(line[6:])
                break
    assert snapshot is not None
    (row,) = [u for u in snapshot["uploads"] if location.endswith(u["id"])]
    assert row["length"] == 5 and row["offset"] == 5 and row["metadata"] == {"filename": "hello.txt"}
    assert snapshot["deliveries_enabled"] is False


def test_retry_without_a_delivery_log_is_a_4xx(make_server):
    server = make_server("--ui", "yes")
    response = httpx.post(server.origin + "/ui/api/deliveries/nope/retry")
    assert response.status_code == 404
    assert "notifier" in response.text


def test_retry_from_another_site_is_refused(make_server, tmp_path):
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    server = make_server("--ui", "yes", "--hooks-file", str(hook), "--hooks", "post-finish")
    response = httpx.post(server.origin + "/ui/api/deliveries/x/retry", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert httpx.post(server.origin + "/ui/api/deliveries/x/retry", headers={"Origin": server.origin}).status_code == 404


@pytest.mark.parametrize("name", ["index.html", "dashboard.html"])
def test_pages_use_relative_urls_so_they_work_under_a_proxy_prefix(name):
    text = (Path(STATIC_DIR) / name).read_text()
    assert not re.search(r"""(src|href)=["']/""", text)


def test_open_event_stream_ends_when_the_server_shuts_down(make_server):
    # Without this, SIGTERM would wait out hypercorn's graceful timeout for every open
    # dashboard. The stream must end by itself: the server closes it, not the client.
    server = make_server("--ui", "yes")
    streaming, ended = threading.Event(), threading.Event()

    def read() -> None:
        with httpx.stream("GET", server.origin + "/ui/api/stream", timeout=120) as response:
            for line in response.iter_lines():
                if line.startswith("event: snapshot"):
                    streaming.set()
        ended.set()  # a clean end of the response, not an error

    threading.Thread(target=read, daemon=True).start()
    assert streaming.wait(60)
    server.process.send_signal(signal.SIGTERM)
    assert ended.wait(60), server.log()
    assert server.process.wait(60) == 0, server.log()
