"""The upload page and the dashboard in a real browser (Debian's chromium driven by Playwright).

A 20 MiB file is uploaded from the page over a throttled connection, the page is reloaded
mid-upload, the same file is picked again and the upload continues from the server's offset;
the bytes on the server are compared. The dashboard then shows the upload and its post-finish
delivery (failed on purpose), and its Retry button delivers it, all without a reload.

Screenshots go to tmp; set TUSPLUGGY_UPDATE_SCREENSHOTS=1 to refresh docs/ui-*.png.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import httpx
import pytest

from tuspluggy.testing import ServerProcess, tus_upload, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DOCS = Path(__file__).resolve().parent.parent / "docs"
SIZE = 20 * 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


def _missing(message: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        _missing(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is missing: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        yield browser
        browser.close()


def screenshot_path(tmp_path: Path, name: str) -> Path:
    if os.environ.get("TUSPLUGGY_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        return DOCS / name
    return tmp_path / name


@pytest.fixture
def hook_script(tmp_path):
    """A --hooks-file script: records each event's payload, and fails while `fail` exists."""
    received = tmp_path / "hooks"
    received.mkdir()
    fail_flag = tmp_path / "fail"
    script = tmp_path / "hook.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"received, fail_flag = {str(received)!r}, {str(fail_flag)!r}\n"
        "name, payload = sys.argv[1], json.loads(sys.argv[2])\n"
        "if os.path.exists(fail_flag):\n"
        "    sys.exit('receiver is down (test)')\n"
        "with open(os.path.join(received, name + '-' + str(len(os.listdir(received))) + '.json'), 'w') as f:\n"
        "    json.dump(payload, f)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, received, fail_flag


def test_upload_page_resumes_after_reload_and_dashboard_retries_delivery(browser, tmp_path, data_dir, hook_script):
    script, received, fail_flag = hook_script
    fail_flag.touch()  # the post-finish delivery fails until the test "repairs" the receiver
    source = tmp_path / "twenty.bin"
    content = os.urandom(SIZE)
    source.write_bytes(content)

    with ServerProcess("--ui", "yes", "--hooks-file", str(script), "--hooks", "post-finish",
                       "--hooks-max-attempts", "1", data_dir=data_dir) as server:
        context = browser.new_context(viewport={"width": 1100, "height": 760})
        try:
            _upload_reload_resume_then_dashboard(context, server, tmp_path, data_dir, source, content,
                                                 received, fail_flag)
        except BaseException:
            # What the pages and the server saw, for a failure in CI.
            for open_page in context.pages:
                print(f"--- {open_page.url}\n{open_page.inner_html('body')}")
            print("--- server log\n" + server.log()[-6000:])
            raise
        finally:
            context.close()


def _upload_reload_resume_then_dashboard(context, server, tmp_path, data_dir, source, content, received, fail_flag):
    page = context.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.set_default_timeout(60_000)

    # A slow uplink (4 MiB/s), so the reload lands in the middle of the upload.
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    throttle = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 4 * 1024 * 1024}
    cdp.send("Network.emulateNetworkConditions", throttle)

    page.goto(server.origin + "/?chunk=262144")
    page.wait_for_selector("body[data-ready=yes]")
    page.set_input_files("#files", str(source))
    page.wait_for_function(f"() => Number(document.querySelector('li.upload')?.dataset.offset || 0) >= {3 * 1024 * 1024}")
    page.reload()
    page.wait_for_selector("body[data-ready=yes]")

    # The page remembers the unfinished upload; the server holds part of it.
    page.wait_for_selector("#unfinished li")
    assert "twenty.bin" in page.inner_text("#unfinished")
    stored = page.evaluate("Object.entries(localStorage).filter(([k]) => k.startsWith('tuspluggy::'))")
    assert len(stored) == 1
    upload_url = json.loads(stored[0][1])["url"]
    server_offset = int(httpx.head(upload_url, headers=TUS).headers["Upload-Offset"])
    assert 0 < server_offset < SIZE

    # Picking the same file again continues from the server's offset.
    page.set_input_files("#files", str(source))
    row = page.locator("li.upload")
    page.wait_for_function(f"() => Number(document.querySelector('li.upload')?.dataset.offset || 0) > {server_offset}")

    # Pause stops sending: the server's offset stays put; Resume goes on, at full speed.
    row.locator("button.pause").click()
    page.wait_for_selector("li.upload[data-state=paused] .status:text('paused')")

    def server_offset_now() -> int:
        return int(httpx.head(upload_url, headers=TUS).headers["Upload-Offset"])

    # The server first stores what the cut PATCH had sent; then nothing more arrives.
    readings = [server_offset_now()]
    while len(readings) < 40 and (len(readings) < 2 or readings[-1] != readings[-2]):
        time.sleep(0.5)
        readings.append(server_offset_now())
    paused_at = readings[-1]
    time.sleep(1)
    assert server_offset_now() == paused_at < SIZE
    cdp.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": -1})
    row.locator("button.resume").click()
    page.wait_for_selector("li.upload[data-state=done]")
    row = page.locator("li.upload[data-state=done]")
    assert int(row.get_attribute("data-resumed-from")) >= server_offset
    assert row.get_attribute("data-url") == upload_url
    upload_id = upload_url.rsplit("/", 1)[1]
    assert row.locator(".id").inner_text() == upload_id
    assert row.locator(".bytes").inner_text() == f"{SIZE} bytes"
    assert "filename=twenty.bin" in row.locator(".metadata").inner_text()
    assert row.locator("a.download").get_attribute("href") == upload_url
    assert page.locator("#unfinished li").count() == 0  # forgotten once complete
    page.screenshot(path=str(screenshot_path(tmp_path, "ui-upload.png")), full_page=True)

    # The bytes on the server are the file's bytes, in one upload (not a second one).
    assert httpx.get(upload_url, timeout=60).content == content
    infos = [name for name in os.listdir(data_dir) if name.endswith(".info")]
    assert infos == [upload_id + ".info"]
    # The page loaded nothing from anywhere but this server.
    assert requested and all(url.startswith((server.origin, "data:")) for url in requested), requested

    # The dashboard shows the upload and its failed post-finish delivery, live.
    dashboard = context.new_page()
    dashboard.set_default_timeout(60_000)
    dashboard.goto(server.origin + "/ui/uploads")
    upload_row = dashboard.locator(f"#uploads tr[data-id='{upload_id}']")
    upload_row.wait_for()
    assert str(SIZE) in upload_row.inner_text()
    assert "filename=twenty.bin" in upload_row.inner_text()
    delivery = dashboard.locator("#deliveries tr[data-event-id][data-event='post-finish'][data-state='failed']")
    delivery.wait_for()
    event_id = delivery.get_attribute("data-event-id")
    assert upload_id in delivery.inner_text()
    assert "receiver is down" in delivery.inner_text()
    dashboard.wait_for_selector("#live.live")
    dashboard.screenshot(path=str(screenshot_path(tmp_path, "ui-dashboard.png")), full_page=True)

    # The receiver is back: Retry delivers the event, and the row turns "delivered" live.
    fail_flag.unlink()
    delivery.locator("button", has_text="Retry").click()
    payload_file = wait_for(lambda: next(iter(received.glob("post-finish-*.json")), None), timeout=60)
    payload = json.loads(payload_file.read_text())
    assert upload_id in json.dumps(payload)
    dashboard.locator(f"#deliveries tr[data-event-id='{event_id}'][data-state='delivered']").wait_for()

    # A new upload appears on the open dashboard without a reload.
    other = tus_upload(server.url + "/", b"x" * 1000, metadata={"filename": "later.txt"})
    dashboard.locator(f"#uploads tr[data-id='{other.rsplit('/', 1)[1]}']").wait_for()


def test_dropped_file_is_uploaded_and_downloadable(browser, make_server):
    server = make_server("--ui", "yes")
    page = browser.new_page()
    try:
        page.set_default_timeout(60_000)
        page.goto(server.origin + "/")
        page.wait_for_selector("body[data-ready=yes]")
        dropped = page.evaluate_handle(
            "() => { const dt = new DataTransfer();"
            " dt.items.add(new File(['dropped bytes'], 'drøpped ✓.txt', { type: 'text/plain' })); return dt; }")
        page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
        page.wait_for_selector("li.upload[data-state=done]")
        link = page.locator("li.upload a.download").get_attribute("href")
        # Size and metadata as the server recorded them (UTF-8 survives the base64 round trip).
        assert page.locator("li.upload .bytes").inner_text() == "13 bytes"
        assert page.locator("li.upload .metadata").inner_text() == "filename=drøpped ✓.txt, filetype=text/plain"
        assert httpx.get(link).content == b"dropped bytes"
    finally:
        page.close()
