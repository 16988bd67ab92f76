"""The command line: Rustus's option names, TUSPLUGGY_* (and RUSTUS_*) variables, and what
each option changes, checked on real server processes."""

import os
import subprocess
import sys
import time

import httpx
import pytest

from tuspluggy.testing import ServerProcess, tus_upload

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}


def run_cli(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "tuspluggy.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def test_data_dir_from_tuspluggy_variable(tmp_path):
    data = tmp_path / "from-env"
    env = {"TUSPLUGGY_DATA_DIR": str(data), "TUSPLUGGY_INFO_DIR": str(data)}
    with ServerProcess(env=env) as srv:
        location = tus_upload(srv.url + "/", b"abc")
    upload_id = location.rsplit("/", 1)[1]
    assert (data / upload_id).read_bytes() == b"abc"
    assert (data / f"{upload_id}.info").exists()


def test_rustus_variables_are_aliases_and_tuspluggy_wins(tmp_path):
    env = {"RUSTUS_URL": "/rustus", "RUSTUS_MAX_FILE_SIZE": "10", "TUSPLUGGY_MAX_FILE_SIZE": "20"}
    with ServerProcess(data_dir=str(tmp_path), env=env) as srv:
        assert srv.url.endswith("/rustus")
        assert httpx.options(srv.url + "/").headers["Tus-Max-Size"] == "20"


@pytest.mark.parametrize("word,expected", [("yes", 201), ("true", 201), ("1", 201), ("no", 400), ("false", 400), ("0", 400)])
def test_switches_take_yes_no_values(tmp_path, word, expected):
    with ServerProcess("--allow-empty", word, data_dir=str(tmp_path)) as srv:
        response = httpx.post(srv.url + "/", headers={**TUS, "Upload-Length": "0"})
        assert response.status_code == expected


def test_switch_from_environment(tmp_path):
    with ServerProcess(data_dir=str(tmp_path), env={"TUSPLUGGY_ALLOW_EMPTY": "yes"}) as srv:
        assert httpx.post(srv.url + "/", headers={**TUS, "Upload-Length": "0"}).status_code == 201


def test_unknown_storage_fails_at_start_with_the_known_names(tmp_path):
    result = run_cli("serve", "--port", "0", "--storage", "no-such-storage", "--data-dir", str(tmp_path))
    assert result.returncode != 0
    assert "no-such-storage" in result.stderr and "file-storage" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("serve", "--port", "0", "--info-storage", "nope", "--data-dir", str(tmp_path))
    assert result.returncode != 0
    assert "nope" in result.stderr and "file-info-storage" in result.stderr


def test_custom_url_prefix(tmp_path):
    with ServerProcess("--url", "/api/uploads/", data_dir=str(tmp_path)) as srv:
        assert srv.url.endswith("/api/uploads")
        location = tus_upload(srv.url + "/", b"abc")
        assert "/api/uploads/" in location
        assert httpx.post(srv.origin + "/files/", headers={**TUS, "Upload-Length": "1"}).status_code == 404


def test_location_uses_forwarded_headers_only_behind_proxy(tmp_path):
    forwarded = {**TUS, "Upload-Length": "1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "up.example.com",
                 "X-Forwarded-Prefix": "/public"}
    with ServerProcess(data_dir=str(tmp_path)) as srv:
        location = httpx.post(srv.url + "/", headers=forwarded).headers["Location"]
        assert location.startswith(srv.url + "/")
    with ServerProcess("--behind-proxy", "yes", data_dir=str(tmp_path)) as srv:
        location = httpx.post(srv.url + "/", headers=forwarded).headers["Location"]
        assert location.startswith("https://up.example.com/public/files/")
        rfc7239 = {**TUS, "Upload-Length": "1", "Forwarded": 'for=192.0.2.60;proto=https;host="files.example.org"'}
        location = httpx.post(srv.url + "/", headers=rfc7239).headers["Location"]
        assert location.startswith("https://files.example.org/files/")


def test_tus_extensions_option_limits_what_is_offered(tmp_path):
    with ServerProcess("--tus-extensions", "creation,getting", data_dir=str(tmp_path)) as srv:
        options = httpx.options(srv.url + "/")
        assert options.headers["Tus-Extension"] == "creation"
        assert "Tus-Checksum-Algorithm" not in options.headers
        location = httpx.post(srv.url + "/", headers={**TUS, "Upload-Length": "3"}).headers["Location"]
        response = httpx.delete(location, headers=TUS)
        assert response.status_code == 405 and "Allow" in response.headers
        response = httpx.post(srv.url + "/", headers={**TUS, "Upload-Defer-Length": "1"})
        assert response.status_code == 400
        response = httpx.post(srv.url + "/", headers={**TUS, "Upload-Length": "3", "Upload-Concat": "partial"})
        assert response.status_code == 400


def test_creation_with_upload_implies_creation(tmp_path):
    with ServerProcess("--tus-extensions", "creation-with-upload", data_dir=str(tmp_path)) as srv:
        assert httpx.options(srv.url + "/").headers["Tus-Extension"] == "creation,creation-with-upload"


def test_max_body_size_limits_one_request(tmp_path):
    with ServerProcess("--max-body-size", "100", data_dir=str(tmp_path)) as srv:
        location = httpx.post(srv.url + "/", headers={**TUS, "Upload-Length": "1000"}).headers["Location"]
        response = httpx.patch(location, content=b"x" * 200, headers={**TUS, **OCTET, "Upload-Offset": "0"})
        assert response.status_code == 413
        response = httpx.patch(location, content=b"x" * 100, headers={**TUS, **OCTET, "Upload-Offset": "0"})
        assert response.status_code == 204


def test_dir_structure_places_files_by_date(tmp_path):
    with ServerProcess("--dir-structure", "{year}/{month}/{day}", data_dir=str(tmp_path)) as srv:
        location = tus_upload(srv.url + "/", b"abc")
    now = time.gmtime()
    upload_id = location.rsplit("/", 1)[1]
    assert (tmp_path / str(now.tm_year) / str(now.tm_mon) / str(now.tm_mday) / upload_id).read_bytes() == b"abc"


def test_remove_parts_deletes_partials_after_concatenation(tmp_path):
    with ServerProcess("--remove-parts", "yes", data_dir=str(tmp_path)) as srv, httpx.Client() as client:
        parts = []
        for data in (b"ab", b"cd"):
            url = client.post(srv.url + "/", headers={**TUS, "Upload-Length": "2", "Upload-Concat": "partial"}).headers["Location"]
            client.patch(url, content=data, headers={**TUS, **OCTET, "Upload-Offset": "0"})
            parts.append(url)
        final = client.post(srv.url + "/", headers={**TUS, "Upload-Concat": "final;" + " ".join(parts)}).headers["Location"]
        assert client.get(final).content == b"abcd"
        for url in parts:
            assert client.head(url, headers=TUS).status_code == 404


def test_expired_uploads_answer_410_and_cleanup_removes_them(tmp_path):
    with ServerProcess("--expiration", "1", "--cleanup-interval", "0", data_dir=str(tmp_path)) as srv:
        location = httpx.post(srv.url + "/", headers={**TUS, "Upload-Length": "10"}).headers["Location"]
        finished = tus_upload(srv.url + "/", b"done")
        time.sleep(1.5)
        assert httpx.head(location, headers=TUS).status_code == 410
        response = httpx.patch(location, content=b"x", headers={**TUS, **OCTET, "Upload-Offset": "0"})
        assert response.status_code == 410
        assert httpx.head(finished, headers=TUS).status_code == 200  # finished uploads never expire
    result = run_cli("cleanup", "--expiration", "1", "--data-dir", str(tmp_path), "--info-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    upload_id = location.rsplit("/", 1)[1]
    assert upload_id in result.stdout
    assert not (tmp_path / upload_id).exists() and not (tmp_path / f"{upload_id}.info").exists()
    assert (tmp_path / finished.rsplit("/", 1)[1]).exists()


def test_server_removes_expired_uploads_periodically(tmp_path):
    with ServerProcess("--expiration", "1", "--cleanup-interval", "0.5", data_dir=str(tmp_path)) as srv:
        location = httpx.post(srv.url + "/", headers={**TUS, "Upload-Length": "10"}).headers["Location"]
        upload_id = location.rsplit("/", 1)[1]
        deadline = time.time() + 15
        while (tmp_path / f"{upload_id}.info").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert not (tmp_path / f"{upload_id}.info").exists()
        assert not (tmp_path / upload_id).exists()
        assert httpx.head(location, headers=TUS).status_code == 404


def test_cors_answers_preflight_for_allowed_origins_only(tmp_path):
    with ServerProcess("--cors", "https://*.example.com", data_dir=str(tmp_path)) as srv:
        preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PATCH",
                     "Access-Control-Request-Headers": "upload-offset,tus-resumable"}
        response = httpx.options(srv.url + "/", headers=preflight)
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
        assert "Upload-Offset" in response.headers["Access-Control-Allow-Headers"]
        post = httpx.post(srv.url + "/", headers={**TUS, "Upload-Length": "1", "Origin": "https://app.example.com"})
        assert "Location" in post.headers["Access-Control-Expose-Headers"]
        other = httpx.options(srv.url + "/", headers={**preflight, "Origin": "https://evil.test"})
        assert "Access-Control-Allow-Origin" not in other.headers


def test_help_lists_rustus_options_with_their_variables():
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--url", "--log-level", "--workers", "--max-body-size", "--max-file-size",
                   "--cors", "--behind-proxy", "--tus-extensions", "--remove-parts", "--allow-empty", "--storage",
                   "--data-dir", "--dir-structure", "--force-fsync", "--info-storage", "--info-dir"):
        assert option in result.stdout, option
    assert "TUSPLUGGY_DATA_DIR" in result.stdout
