"""The pure protocol layer (no I/O): parsers and decisions, including property tests that
malformed input only ever raises TusError with a 4xx status."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuspluggy.errors import TusError
from tuspluggy.protocol import parse, proxy, rules
from tuspluggy.protocol.download import content_disposition_for, content_type_for, parse_range
from tuspluggy.upload import Upload, is_valid_upload_id

SETTINGS = rules.TusSettings(max_file_size=100)


def test_metadata_round_trip_keeps_order_and_empty_values():
    header = "b YQ==,a,c "
    parsed = parse.parse_metadata(header)
    assert list(parsed) == ["b", "a", "c"]
    assert parsed == {"b": "a", "a": "", "c": ""}
    assert parse.encode_metadata(parsed) == "b YQ==,a,c"


@given(st.text(max_size=200))
@settings(max_examples=500, deadline=None)
def test_any_metadata_header_parses_or_is_a_400(header):
    try:
        parse.parse_metadata(header)
    except TusError as error:
        assert error.status == 400 and "\n" not in error.message


@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_.-]{0,10}", fullmatch=True), st.text(max_size=30), max_size=8))
def test_metadata_encoding_round_trips(metadata):
    assert parse.parse_metadata(parse.encode_metadata(metadata)) == metadata


@given(st.text(max_size=40), st.integers(min_value=0, max_value=10**12))
@settings(max_examples=500, deadline=None)
def test_any_range_header_is_a_range_none_or_416(header, size):
    try:
        byte_range = parse_range(header, size)
    except TusError as error:
        assert error.status == 416
        return
    if byte_range is not None:
        assert 0 <= byte_range.start < byte_range.end <= size


@given(st.dictionaries(st.sampled_from(["Upload-Length", "Upload-Defer-Length", "Upload-Metadata", "Upload-Concat",
                                        "Content-Type", "Content-Length", "Upload-Checksum"]),
                       st.text(max_size=30)))
@settings(max_examples=500, deadline=None)
def test_any_creation_headers_plan_or_give_a_4xx(headers):
    try:
        rules.plan_creation(headers, SETTINGS)
    except TusError as error:
        assert 400 <= error.status < 500


@given(st.dictionaries(st.sampled_from(["Upload-Offset", "Upload-Length", "Content-Type", "Content-Length",
                                        "Upload-Checksum"]), st.text(max_size=30)))
@settings(max_examples=500, deadline=None)
def test_any_patch_headers_plan_or_give_a_4xx(headers):
    upload = Upload(id="u", length=None, offset=3)
    try:
        rules.plan_patch(headers, upload, SETTINGS, now=0)
    except TusError as error:
        assert 400 <= error.status < 500


def test_tus_resumable_exemptions():
    rules.check_tus_resumable("OPTIONS", {})
    rules.check_tus_resumable("GET", {})
    with pytest.raises(TusError) as info:
        rules.check_tus_resumable("HEAD", {})
    assert info.value.status == 412 and info.value.headers == {"Tus-Version": "1.0.0"}


def test_extensions_follow_the_storage_capabilities():
    built = rules.TusSettings.build({"creation", "termination", "concatenation"}, {"creation"})
    assert built.extensions == {"creation"}
    built = rules.TusSettings.build({"creation-defer-length"}, {"creation-defer-length"})
    assert built.extensions == {"creation", "creation-defer-length"}


def test_part_ids_from_urls():
    assert rules.part_id_from_url("http://h/files/abc", "/files") == "abc"
    assert rules.part_id_from_url("/files/abc/", "/files") == "abc"
    assert rules.part_id_from_url("/other/abc", "/files") is None
    assert rules.part_id_from_url("/files/a/b", "/files") is None


@pytest.mark.parametrize("upload_id,valid", [
    ("3cd911fe-eba0-499a-b220-b1d1b947b80f", True), ("my-file_1.bin", True),
    ("..", False), (".", False), ("a/b", False), ("", False), ("../x", False), ("a\x00", False), ("x" * 200, False),
])
def test_upload_ids(upload_id, valid):
    assert is_valid_upload_id(upload_id) is valid


def test_proxy_headers():
    headers = {"Host": "internal:8080", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example:443",
               "X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    assert proxy.public_origin(headers, "http", True) == proxy.PublicOrigin("https", "public.example")
    assert proxy.public_origin(headers, "http", False) == proxy.PublicOrigin("http", "internal:8080")
    assert proxy.client_address(headers, "10.0.0.1", True) == "203.0.113.7"
    assert proxy.client_address(headers, "10.0.0.1", False) == "10.0.0.1"
    forwarded = {"Forwarded": 'for="[2001:db8::1]:4711";proto=https;host=up.example'}
    assert proxy.client_address(forwarded, None, True) == "2001:db8::1"
    assert proxy.public_origin({**forwarded, "Host": "x"}, "http", True).host == "up.example"
    assert proxy.public_origin({"Host": "evil\r\nX: y"}, "http", False).host == "localhost"


def test_download_labels():
    assert content_type_for({"filetype": "IMAGE/PNG"}) == "image/png"
    assert content_type_for({"filetype": "text/html; charset=x"}) == "application/octet-stream"
    assert content_disposition_for({"filename": "a.pdf", "filetype": "application/pdf"}, "id").startswith("inline;")
    assert content_disposition_for({}, "the-id") == "attachment; filename=\"the-id\"; filename*=UTF-8''the-id"
