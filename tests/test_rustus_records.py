"""An upload begun under Rustus (its FileInfo JSON record and data file) resumes under tuspluggy."""

import json

import httpx

from tuspluggy.testing import ServerProcess

TUS = {"Tus-Resumable": "1.0.0"}


def test_a_rustus_record_resumes(tmp_path):
    upload_id = "3cd911fe-eba0-499a-b220-b1d1b947b80f"
    (tmp_path / upload_id).write_bytes(b"hello ")
    (tmp_path / f"{upload_id}.info").write_text(json.dumps({
        "id": upload_id, "offset": 6, "length": 11, "path": str(tmp_path / upload_id),
        "created_at": 1658671969, "deferred_size": False, "is_partial": False, "is_final": False,
        "parts": None, "storage": "file_storage", "metadata": {"filename": "hello.txt"},
    }))
    with ServerProcess(data_dir=str(tmp_path)) as srv:
        url = f"{srv.url}/{upload_id}"
        head = httpx.head(url, headers=TUS)
        assert head.headers["Upload-Offset"] == "6" and head.headers["Upload-Length"] == "11"
        response = httpx.patch(url, content=b"world", headers={
            **TUS, "Upload-Offset": "6", "Content-Type": "application/offset+octet-stream"})
        assert response.status_code == 204
        download = httpx.get(url)
        assert download.content == b"hello world"
        assert 'filename="hello.txt"' in download.headers["Content-Disposition"]
