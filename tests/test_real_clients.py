"""Real tus clients against a real server: tuspy (PyPI) and tus-js-client (npm, run by node).
Each uploads, is cut off (aborted, or the server is killed), resumes, and the bytes are compared."""

import json
import os
import shutil
import subprocess
import threading
import time

import httpx
import pytest
from tusclient import client as tus_client
from tusclient.storage import filestorage

from tuspluggy.testing import ServerProcess

JS_DIR = os.path.join(os.path.dirname(__file__), "js")
MiB = 1024 * 1024


def random_bytes(size):
    return os.urandom(size)


def test_tuspy_uploads_is_cut_off_and_resumes_after_restart(tmp_path):
    data = random_bytes(5 * MiB + 123)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    srv = ServerProcess(data_dir=str(tmp_path / "data")).start()
    try:
        storage = filestorage.FileStorage(str(tmp_path / "tuspy-urls.json"))
        uploader = tus_client.TusClient(srv.url + "/").uploader(
            file_path=str(source), chunk_size=MiB, metadata={"filename": "a.bin"},
            store_url=True, url_storage=storage)
        for _ in range(2):
            uploader.upload_chunk()
        url = uploader.url
        srv.kill()  # the connection drops: the server is gone
        srv.start()
        again = tus_client.TusClient(srv.url + "/").uploader(
            file_path=str(source), chunk_size=MiB, metadata={"filename": "a.bin"},
            store_url=True, url_storage=storage)
        assert again.url == url and again.offset == 2 * MiB  # resumed from the server's HEAD
        again.upload()
        assert httpx.get(url, timeout=60).content == data
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def node_client():
    if shutil.which("node") is None:
        pytest.fail("node is required for the tus-js-client tests (apt-get install nodejs npm)")
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "tus-js-client")):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=300)
    return os.path.join(JS_DIR, "upload.mjs")


def run_node(script, *args, timeout=120):
    result = subprocess.run(["node", script, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_tus_js_client_aborts_and_resumes(tmp_path, node_client):
    data = random_bytes(6 * MiB + 7)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    with ServerProcess(data_dir=str(tmp_path / "data")) as srv:
        first = run_node(node_client, srv.url + "/", str(source), "--chunk-size", str(MiB), "--abort-after", str(2 * MiB))
        assert not first["done"]
        offset = int(httpx.head(first["url"], headers={"Tus-Resumable": "1.0.0"}).headers["Upload-Offset"])
        assert 2 * MiB <= offset < len(data)
        second = run_node(node_client, srv.url + "/", str(source), "--chunk-size", str(MiB), "--upload-url", first["url"])
        assert second["done"] and second["url"] == first["url"]
        assert httpx.get(first["url"], timeout=60).content == data


def test_tus_js_client_survives_a_server_crash_mid_upload(tmp_path, node_client):
    data = random_bytes(40 * MiB)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    srv = ServerProcess(data_dir=str(tmp_path / "data")).start()
    try:
        node = subprocess.Popen(["node", node_client, srv.url + "/", str(source), "--chunk-size", str(2 * MiB)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Kill the server once some (not all) bytes are stored, then bring it back on the same port.
        deadline = time.time() + 60
        while time.time() < deadline:
            sizes = [f.stat().st_size for f in (tmp_path / "data").iterdir() if len(f.name) == 36]
            if sizes and sizes[0] >= 4 * MiB:
                break
            time.sleep(0.01)
        srv.kill()
        time.sleep(0.5)
        srv.start()
        out, err = node.communicate(timeout=120)
        assert node.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["done"]
        assert httpx.get(result["url"], timeout=60).content == data
    finally:
        srv.stop()
