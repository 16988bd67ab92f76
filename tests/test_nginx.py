"""tuspluggy behind Debian's nginx, configured by the site file we ship
(contrib/deploy/nginx/tuspluggy.conf, with ports and certificate paths substituted).

nginx terminates TLS (a throwaway self-signed certificate) and publishes the server under
/uploads/. Checked through the proxy with a real tus client (tuspy): Location carries the
public https scheme, host:port and prefix; resume works; a body larger than nginx's default
cap streams through; hooks see the real client address (the client connects from
127.0.0.2, nginx from 127.0.0.1); the upload page and the dashboard's event stream work
through the prefix, and the dashboard asks proxied clients for the token.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tusclient.client import TusClient

from nginx_support import NGINX, Nginx
from tuspluggy.testing import ServerProcess, wait_for

SITE = Path(__file__).resolve().parent.parent / "contrib" / "deploy" / "nginx" / "tuspluggy.conf"
TUS = {"Tus-Resumable": "1.0.0"}
# The certificate is a throwaway self-signed one: not verifying it is the point.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def _free_ports(count: int) -> list[int]:
    """Distinct free ports (all held open while choosing, so none is handed out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def site_config(app_port: int, http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """The shipped site file, pointed at this test's ports and certificate."""
    text = SITE.read_text()
    replacements = {
        "server 127.0.0.1:1081;": f"server 127.0.0.1:{app_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "/etc/ssl/certs/uploads.example.com.pem": str(cert),
        "/etc/ssl/private/uploads.example.com.key": str(key),
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{SITE.name} no longer contains {old!r}: update this test"
        text = text.replace(old, new)
    return text


@pytest.fixture
def hook_log(tmp_path):
    """A --hooks-file script appending each event's payload to a JSON-lines file."""
    log = tmp_path / "hooks.jsonl"
    script = tmp_path / "hook.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'event': sys.argv[1], 'payload': json.loads(sys.argv[2])}) + '\\n')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


@pytest.fixture
def proxied(tmp_path, data_dir, hook_log):
    """(public base URL, tuspluggy process, nginx) for tuspluggy behind the shipped nginx site."""
    if not os.path.exists(NGINX):
        message = "nginx is missing: apt-get install -y nginx-light"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    script, _ = hook_log
    app = ServerProcess("--behind-proxy", "yes", "--ui", "yes", "--ui-token", "t0ken",
                        "--hooks-file", str(script), "--hooks", "pre-create,post-finish", data_dir=data_dir).start()
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    cert, key = _self_signed(nginx_dir)
    http_port, https_port = _free_ports(2)
    nginx = Nginx(nginx_dir, site_config(app.port, http_port, https_port, cert, key))
    try:
        nginx.start(https_port)
        yield f"https://127.0.0.1:{https_port}/uploads", http_port, app, nginx
    finally:
        nginx.stop()
        app.stop()


def _hook_calls(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_location_carries_public_scheme_host_and_prefix_and_resume_works(proxied, tmp_path):
    public, _, app, nginx = proxied
    content = os.urandom(6 * 1024 * 1024 + 123)
    client = TusClient(public + "/files/")

    # Part of the file, then the client stops (a crash, a closed laptop).
    first = client.uploader(file_stream=io.BytesIO(content), chunk_size=1024 * 1024, verify_tls_cert=False,
                            metadata={"filename": "through-nginx.bin"})
    first.upload(stop_at=2 * 1024 * 1024)
    location = first.url
    assert location.startswith(public + "/files/"), location
    with httpx.Client(verify=False) as http:
        head = http.head(location, headers=TUS)
        assert head.status_code == 200
        assert int(head.headers["Upload-Offset"]) == 2 * 1024 * 1024

    # A new client resumes from the stored URL: HEAD through the proxy, then PATCHes. The
    # last PATCH is bigger than nginx's default 1 MiB body cap.
    second = client.uploader(file_stream=io.BytesIO(content), url=location, chunk_size=4 * 1024 * 1024 + 123,
                             verify_tls_cert=False)
    assert second.offset == 2 * 1024 * 1024
    second.upload()
    with httpx.Client(verify=False, timeout=60) as http:
        assert http.get(location).content == content
    # One upload, created once: the resume did not start over.
    posts = [line for line in app.log().splitlines() if "POST /files" in line]
    assert len(posts) == 1, app.log()


def test_hooks_see_the_real_client_address(proxied, hook_log):
    public, _, _, _ = proxied
    _, log = hook_log
    # The client connects from 127.0.0.2; nginx itself connects to tuspluggy from 127.0.0.1.
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=False)
    with httpx.Client(transport=transport, timeout=30) as http:
        created = http.post(public + "/files/", headers={**TUS, "Upload-Length": "5"})
        assert created.status_code == 201, created.text
        location = created.headers["Location"]
        assert location.startswith(public + "/files/")
        done = http.patch(location, content=b"hello", headers={
            **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert done.status_code == 204

    calls = wait_for(lambda: [c for c in _hook_calls(log) if c["event"] == "post-finish"] and _hook_calls(log))
    by_event = {c["event"]: c["payload"] for c in calls}
    assert by_event["pre-create"]["request"]["remote_addr"] == "127.0.0.2"
    assert by_event["post-finish"]["request"]["remote_addr"] == "127.0.0.2"


def test_plain_http_is_redirected_to_https(proxied):
    _, http_port, _, _ = proxied
    response = httpx.get(f"http://127.0.0.1:{http_port}/uploads/", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://127.0.0.1/uploads/")


def test_upload_page_and_dashboard_work_under_the_prefix(proxied):
    public, _, _, _ = proxied
    with httpx.Client(verify=False, timeout=30) as http:
        page = http.get(public + "/")
        assert page.status_code == 200 and 'data-endpoint="files/"' in page.text
        assert http.get(public + "/ui/static/tus-client.js").status_code == 200
        # The token travels as a Secure cookie: the public scheme is https.
        dashboard = http.get(public + "/ui/uploads?token=t0ken")
        assert dashboard.status_code == 200
        assert "Secure" in dashboard.headers["Set-Cookie"]
        # The event stream is not held back by nginx's buffers.
        started = time.monotonic()
        with http.stream("GET", public + "/ui/api/stream") as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                if line.startswith("event: snapshot"):
                    break
        assert time.monotonic() - started < 25


# -- the other deployment files: what can be checked without systemd or docker here ----------

DEPLOY = SITE.parent.parent


def _env_file(text: str, commented: bool = False) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if commented and line.startswith("# TUSPLUGGY_"):
            line = line[2:]
        if line.startswith("TUSPLUGGY_") and "=" in line:
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_example_env_file_names_real_options_and_starts_a_working_server(tmp_path, data_dir):
    from tuspluggy.server import load_plugins
    from tuspluggy.testing import tus_upload

    _, registry = load_plugins()
    known = {name for option in registry.options for name in option.envvars}
    text = (DEPLOY / "tuspluggy.env").read_text()
    assert set(_env_file(text, commented=True)) <= known
    env = _env_file(text)
    # This machine's ports and directories; everything else exactly as shipped.
    for name in ("TUSPLUGGY_HOST", "TUSPLUGGY_PORT", "TUSPLUGGY_DATA_DIR", "TUSPLUGGY_INFO_DIR"):
        env.pop(name)
    with ServerProcess(data_dir=data_dir, env=env) as server:
        location = tus_upload(server.url + "/", b"deployed", metadata={"filename": "a.txt"})
        assert httpx.get(location).content == b"deployed"


def test_systemd_unit_and_dockerfile_run_unprivileged():
    unit = (DEPLOY / "tuspluggy.service").read_text()
    assert "\nUser=tuspluggy\n" in unit and "\nEnvironmentFile=/etc/tuspluggy/tuspluggy.env\n" in unit
    assert "\nExecStart=/opt/tuspluggy/bin/tuspluggy serve\n" in unit
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users and all(not user.startswith(("root", "0")) for user in users)
    assert dockerfile.index("USER ") > dockerfile.index("pip install")  # nothing runs as root after install
    if shutil.which("systemd-analyze"):
        checked = subprocess.run(["systemd-analyze", "verify", str(DEPLOY / "tuspluggy.service")],
                                 capture_output=True, text=True, timeout=60)
        assert "bad-setting" not in checked.stderr.lower(), checked.stderr
