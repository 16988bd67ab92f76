"""Full disk: a PATCH that runs out of space on a small file system made by the test.

The answer is 507 (Insufficient Storage) with a one-line message: a 5xx on purpose, because
the request was fine and tus clients retry 5xx answers, which is what should happen once
space is freed (a 4xx would make them give up). The record's offset equals the bytes in
the file, and the upload resumes from HEAD once there is room again.
"""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from tuspluggy.testing import ServerProcess

TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}
MiB = 1024 * 1024


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs, unmounted afterwards (needs root, as on the CI machines)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        message = f"cannot mount a tmpfs: {result.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(path, size: int) -> None:
    with open(path, "wb") as file:
        file.write(b"\0" * size)


@pytest.mark.parametrize("layout", ["records-elsewhere", "records-on-the-full-disk"])
def test_patch_that_fills_the_disk_answers_507_and_resumes_after_space_is_freed(small_fs, tmp_path, layout):
    data_dir = small_fs / "data"
    info_dir = tmp_path / "info" if layout == "records-elsewhere" else small_fs / "data"
    data_dir.mkdir()
    info_dir.mkdir(exist_ok=True)
    filler = small_fs / "filler"
    fill(filler, 1 * MiB)  # leaves about 3 MiB
    source = os.urandom(3 * MiB + 512 * 1024)

    with ServerProcess("--data-dir", str(data_dir), "--info-dir", str(info_dir)) as server:
        r = httpx.post(server.url + "/", headers={**TUS, "Upload-Length": str(len(source))})
        assert r.status_code == 201, r.text
        location = r.headers["Location"]
        upload_id = location.rsplit("/", 1)[1]
        stored_file = data_dir / upload_id

        r = httpx.patch(location, content=source, headers={**PATCH, "Upload-Offset": "0"}, timeout=30)
        assert r.status_code == 507, (r.status_code, r.text)
        assert "full" in r.text and r.text.count("\n") <= 1

        offset = int(httpx.head(location, headers=TUS).headers["Upload-Offset"])
        stored = stored_file.read_bytes()
        assert 0 < offset < len(source)
        assert offset == len(stored), "the record's offset must equal the bytes stored"
        assert stored == source[:offset]

        # While the disk stays full, a retry is refused the same way and changes nothing.
        r = httpx.patch(location, content=source[offset:], headers={**PATCH, "Upload-Offset": str(offset)})
        assert r.status_code == 507, r.text
        assert int(httpx.head(location, headers=TUS).headers["Upload-Offset"]) == len(stored_file.read_bytes())
        offset = int(httpx.head(location, headers=TUS).headers["Upload-Offset"])

        os.unlink(filler)
        r = httpx.patch(location, content=source[offset:], headers={**PATCH, "Upload-Offset": str(offset)}, timeout=30)
        assert r.status_code == 204, r.text
        assert r.headers["Upload-Offset"] == str(len(source))
        assert httpx.get(location).content == source
        assert server.process.poll() is None


def test_creating_an_upload_on_a_full_disk_answers_507(small_fs):
    data_dir = small_fs / "data"
    data_dir.mkdir()
    with ServerProcess("--data-dir", str(data_dir), "--info-dir", str(data_dir)) as server:
        fill(small_fs / "filler", 4 * MiB)  # fills it completely (writes stop at ENOSPC)
        r = httpx.post(server.url + "/", headers={**TUS, "Upload-Length": "100"})
        assert r.status_code == 507, (r.status_code, r.text)
        assert "full" in r.text
