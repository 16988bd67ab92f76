"""Spare files (core/spare_files.py): made ahead by a thread, taken by requests, and never
left behind: a clean exit removes them, and the next process removes a crashed one's."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tuspluggy.spare_files import PREFIX, SpareFiles, remove_orphans
from tuspluggy.testing import ServerProcess, wait_for

TUS = {"Tus-Resumable": "1.0.0"}


def spares_in(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(PREFIX))


def test_spares_are_made_ahead_then_taken_empty_and_discarded(tmp_path):
    spares = SpareFiles(str(tmp_path), mode=0o600, keep=4)
    first = spares.take()  # the first call starts the maker (and may already find one)
    if first is not None:
        os.unlink(first)
    wait_for(lambda: len(spares_in(tmp_path)) >= 3, timeout=5)  # made ahead, up to `keep`
    taken = spares.take()
    assert taken is not None and os.path.getsize(taken) == 0
    assert os.stat(taken).st_mode & 0o777 == 0o600
    os.unlink(taken)
    spares.discard()
    assert spares_in(tmp_path) == []


def test_spares_of_a_process_that_died_are_removed_and_a_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / f"{PREFIX}{dead.stdout.strip()}-7").touch()
    (tmp_path / f"{PREFIX}{os.getpid()}-7").touch()
    (tmp_path / "upload-id").touch()
    remove_orphans(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted([f"{PREFIX}{os.getpid()}-7", "upload-id"])


def test_a_server_uses_spares_and_leaves_none_behind_when_stopped(tmp_path):
    with ServerProcess(data_dir=str(tmp_path)) as srv, httpx.Client(timeout=10) as client:
        for _ in range(20):
            url = client.post(srv.url + "/", headers={**TUS, "Upload-Length": "3"}).headers["Location"]
            response = client.patch(url, content=b"abc", headers={
                **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
            assert response.status_code == 204
            assert client.get(url).content == b"abc"
        assert spares_in(tmp_path)  # made ahead while it serves
    assert spares_in(tmp_path) == []
    # Every upload is its data file and its record, nothing else visible.
    visible = [n for n in os.listdir(tmp_path) if not n.startswith(".")]
    assert len(visible) == 40


def test_a_record_write_survives_its_spare_being_removed_by_another_host(tmp_path, monkeypatch):
    # Hosts sharing a directory each clean up spares of pids they do not see running;
    # a spare removed between take and rename must not fail the write.
    from tuspluggy.fsutil import atomic_write

    class OneSpare:
        def take(self):
            path = tmp_path / f"{PREFIX}1-1"
            path.touch()
            return str(path)

    real_replace = os.replace

    def replace_after_the_spare_vanished(src, dst):
        if os.path.basename(src).startswith(PREFIX):
            os.unlink(src)  # the other host's clean-up, just before our rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_the_spare_vanished)
    target = tmp_path / "record.info"
    atomic_write(str(target), b'{"ok": 1}', fsync=False, spares=OneSpare())
    monkeypatch.undo()
    assert target.read_bytes() == b'{"ok": 1}'
    assert sorted(os.listdir(tmp_path)) == ["record.info"]
