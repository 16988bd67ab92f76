"""Upload.to_dict copies by hand what dataclasses.asdict copies generically (it is on every
request's path): it must give the same record, share no container with the upload, and
cover every field, including ones added later."""

from __future__ import annotations

import dataclasses

from tuspluggy.upload import Upload


def populated() -> Upload:
    return Upload(
        id="u1", length=10, offset=3, metadata={"filename": "a.txt", "flag": None}, is_final=True,
        parts=["p1", "p2"], storage="s3_storage", path="/d/u1", expires_at=12.5, finals_waiting=["f1"],
        storage_state={"upload_id": "x", "parts": [{"n": 1, "etag": "e"}]},
    )


def test_to_dict_is_what_asdict_gives_for_every_field():
    for upload in (populated(), Upload(id="u2", length=None)):
        assert upload.to_dict() == dataclasses.asdict(upload)
        assert list(upload.to_dict()) == [f.name for f in dataclasses.fields(Upload)]


def test_to_dict_shares_no_container_with_the_upload():
    upload = populated()
    data = upload.to_dict()
    data["metadata"]["filename"] = "changed"
    data["parts"].append("p3")
    data["finals_waiting"].clear()
    data["storage_state"]["parts"][0]["etag"] = "changed"
    assert upload.to_dict() == populated().to_dict()


def test_from_dict_ignores_unknown_keys_and_round_trips():
    data = {**populated().to_dict(), "a_future_field": 1}
    assert Upload.from_dict(data) == populated()
