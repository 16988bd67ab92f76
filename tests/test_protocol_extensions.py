"""tus 1.0.0 extensions, requirement by requirement: creation, creation-with-upload,
creation-defer-length, checksum, termination, concatenation(-unfinished), expiration,
GET download. Each test runs against a real server process and in-process."""

import base64
import hashlib
import time

import httpx
import pytest

from conftest import process_or_in_process

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}
MAX_SIZE = 1_000_000


@pytest.fixture(scope="module", params=["process", "in-process"])
def srv(request, tmp_path_factory):
    options = dict(max_file_size=MAX_SIZE, expiration=3600)
    with process_or_in_process(request.param, str(tmp_path_factory.mktemp("data")), options) as server:
        yield server


def post(client, srv, **headers):
    return client.post(srv.url + "/", headers={**TUS, **headers})


def create(client, srv, length=10, **headers):
    response = post(client, srv, **{"Upload-Length": str(length), **headers})
    assert response.status_code == 201, response.text
    return response.headers["Location"]


def patch(client, url, data, offset, **headers):
    return client.patch(url, content=data, headers={**TUS, **OCTET, "Upload-Offset": str(offset), **headers})


def head(client, url):
    return client.head(url, headers=TUS)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def assert_one_line_4xx(response, status):
    assert response.status_code == status, (response.status_code, response.text)
    assert response.text.endswith("\n") and "\n" not in response.text[:-1] and response.text.strip()


# -- creation ------------------------------------------------------------------------------


def test_cr2_creation_without_length_is_400(client, srv):
    assert_one_line_4xx(post(client, srv), 400)


def test_cr3_defer_length_other_than_1_is_400(client, srv):
    assert_one_line_4xx(post(client, srv, **{"Upload-Defer-Length": "2"}), 400)


def test_cr4_length_and_defer_length_together_is_400(client, srv):
    assert_one_line_4xx(post(client, srv, **{"Upload-Length": "5", "Upload-Defer-Length": "1"}), 400)


@pytest.mark.parametrize("value", ["-1", "abc", "1e3", "", "0x10", "5 5"])
def test_cr_malformed_length_is_400(client, srv, value):
    assert_one_line_4xx(post(client, srv, **{"Upload-Length": value}), 400)


def test_cr5_empty_upload_needs_allow_empty(client, srv):
    # This server runs without --allow-empty (Rustus's default); see the core tests for the opposite.
    assert_one_line_4xx(post(client, srv, **{"Upload-Length": "0"}), 400)


def test_cr6_length_over_max_size_is_413(client, srv):
    assert_one_line_4xx(post(client, srv, **{"Upload-Length": str(MAX_SIZE + 1)}), 413)
    assert post(client, srv, **{"Upload-Length": str(MAX_SIZE)}).status_code == 201


def test_cr7_creation_is_201_with_absolute_location_under_the_base_path(client, srv):
    response = post(client, srv, **{"Upload-Length": "5"})
    assert response.status_code == 201
    location = response.headers["Location"]
    assert location.startswith(srv.url + "/")
    assert len(location.rsplit("/", 1)[1]) == 36  # a UUID


def test_cr8_metadata_with_empty_values_and_keys_without_value(client, srv):
    value = f"filename {b64('my file.txt')},empty ,novalue,unicode {b64('grüße ✓')}"
    url = create(client, srv, 5, **{"Upload-Metadata": value})
    echoed = head(client, url).headers["Upload-Metadata"]
    pairs = dict(p.split(" ") if " " in p else (p, "") for p in echoed.split(","))
    assert base64.b64decode(pairs["filename"]).decode() == "my file.txt"
    assert pairs["empty"] == "" and pairs["novalue"] == ""
    assert base64.b64decode(pairs["unicode"]).decode() == "grüße ✓"


@pytest.mark.parametrize("value", [
    "key not-base64!", "key a b", "key YWJj,key YWJj", "key YWJ", "k\x7fy YWJj", ",", "key //79",
])
def test_cr8_malformed_metadata_is_400(client, srv, value):
    assert_one_line_4xx(post(client, srv, **{"Upload-Length": "5", "Upload-Metadata": value}), 400)


def test_cr11_a_new_upload_starts_at_offset_0(client, srv):
    url = create(client, srv, 5)
    assert head(client, url).headers["Upload-Offset"] == "0"


# -- creation-with-upload ------------------------------------------------------------------


def test_cw2_creation_with_upload_answers_201_with_offset(client, srv):
    response = client.post(srv.url + "/", content=b"hello", headers={**TUS, **OCTET, "Upload-Length": "11"})
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == "5"
    url = response.headers["Location"]
    assert patch(client, url, b" world", 5).status_code == 204
    assert client.get(url).content == b"hello world"


def test_cw2_creation_with_the_whole_file_completes_it(client, srv):
    response = client.post(srv.url + "/", content=b"abc", headers={**TUS, **OCTET, "Upload-Length": "3"})
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == "3"
    assert client.get(response.headers["Location"]).content == b"abc"


def test_cw_creation_body_bigger_than_length_is_413(client, srv):
    response = client.post(srv.url + "/", content=b"abcdef", headers={**TUS, **OCTET, "Upload-Length": "3"})
    assert_one_line_4xx(response, 413)


def test_cw_creation_with_upload_checks_the_checksum(client, srv):
    bad = "sha1 " + base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    response = client.post(srv.url + "/", content=b"abc", headers={
        **TUS, **OCTET, "Upload-Length": "6", "Upload-Checksum": bad})
    assert_one_line_4xx(response, 460)
    # The upload exists, empty, and the answer says where it is.
    assert head(client, response.headers["Location"]).headers["Upload-Offset"] == "0"


# -- creation-defer-length -----------------------------------------------------------------


def test_dl2_deferred_length_is_reported_until_declared(client, srv):
    response = post(client, srv, **{"Upload-Defer-Length": "1"})
    assert response.status_code == 201
    url = response.headers["Location"]
    h = head(client, url)
    assert h.headers["Upload-Defer-Length"] == "1" and "Upload-Length" not in h.headers
    assert patch(client, url, b"abc", 0).status_code == 204
    response = patch(client, url, b"def", 3, **{"Upload-Length": "6"})
    assert response.status_code == 204
    h = head(client, url)
    assert h.headers["Upload-Length"] == "6" and "Upload-Defer-Length" not in h.headers
    assert client.get(url).content == b"abcdef"


def test_dl3_length_once_set_cannot_change(client, srv):
    url = create(client, srv, 6)
    assert_one_line_4xx(patch(client, url, b"abc", 0, **{"Upload-Length": "7"}), 400)
    assert patch(client, url, b"abc", 0, **{"Upload-Length": "6"}).status_code == 204


def test_dl_declared_length_smaller_than_offset_is_400(client, srv):
    url = post(client, srv, **{"Upload-Defer-Length": "1"}).headers["Location"]
    patch(client, url, b"abcd", 0)
    assert_one_line_4xx(patch(client, url, b"", 4, **{"Upload-Length": "2"}), 400)


def test_dl_declared_length_over_max_size_is_413(client, srv):
    url = post(client, srv, **{"Upload-Defer-Length": "1"}).headers["Location"]
    assert_one_line_4xx(patch(client, url, b"", 0, **{"Upload-Length": str(MAX_SIZE + 1)}), 413)


# -- checksum ------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512"])
def test_ck4_matching_checksum_is_204(client, srv, algorithm):
    url = create(client, srv, 11)
    digest = base64.b64encode(hashlib.new(algorithm, b"hello world").digest()).decode()
    response = patch(client, url, b"hello world", 0, **{"Upload-Checksum": f"{algorithm} {digest}"})
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == "11"


def test_ck4_spec_example_sha1_of_hello_world(client, srv):
    url = create(client, srv, 11)
    response = patch(client, url, b"hello world", 0, **{"Upload-Checksum": "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="})
    assert response.status_code == 204


def test_ck6_mismatch_is_460_and_the_chunk_is_discarded(client, srv):
    url = create(client, srv, 10)
    assert patch(client, url, b"abc", 0).status_code == 204
    response = patch(client, url, b"defg", 3, **{"Upload-Checksum": "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="})
    assert_one_line_4xx(response, 460)
    assert head(client, url).headers["Upload-Offset"] == "3"
    assert client.get(url).content == b"abc"
    # The same offset accepts the right bytes afterwards.
    digest = base64.b64encode(hashlib.md5(b"defg").digest()).decode()
    assert patch(client, url, b"defg", 3, **{"Upload-Checksum": f"md5 {digest}"}).status_code == 204
    assert client.get(url).content == b"abcdefg"


@pytest.mark.parametrize("value", ["crc32 AAAA", "SHA1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", "sha1", "sha1 !!!", "sha1 a b"])
def test_ck5_unsupported_or_malformed_checksum_is_400(client, srv, value):
    url = create(client, srv, 10)
    assert_one_line_4xx(patch(client, url, b"abc", 0, **{"Upload-Checksum": value}), 400)
    assert head(client, url).headers["Upload-Offset"] == "0"


# -- termination ---------------------------------------------------------------------------


def test_tm2_delete_is_204_and_tm3_the_upload_is_gone(client, srv, tmp_path):
    url = create(client, srv, 10)
    patch(client, url, b"abc", 0)
    response = client.delete(url, headers=TUS)
    assert response.status_code == 204
    assert head(client, url).status_code == 404
    assert patch(client, url, b"def", 3).status_code == 404
    assert client.get(url).status_code == 404
    assert client.delete(url, headers=TUS).status_code == 404


def test_tm2_a_finished_upload_can_be_deleted(client, srv):
    url = create(client, srv, 3)
    patch(client, url, b"abc", 0)
    assert client.delete(url, headers=TUS).status_code == 204
    assert head(client, url).status_code == 404


# -- concatenation -------------------------------------------------------------------------


def make_partial(client, srv, data):
    response = post(client, srv, **{"Upload-Length": str(len(data)), "Upload-Concat": "partial"})
    assert response.status_code == 201
    url = response.headers["Location"]
    if data:
        assert patch(client, url, data, 0).status_code == 204
    return url


def test_cc2_partial_upload_reports_upload_concat_partial(client, srv):
    url = make_partial(client, srv, b"abc")
    h = head(client, url)
    assert h.headers["Upload-Concat"] == "partial"
    assert h.headers["Upload-Offset"] == "3"


def test_cc4_cc5_final_is_the_parts_in_order(client, srv):
    a = make_partial(client, srv, b"hello ")
    b = make_partial(client, srv, b"world")
    relative_b = "/" + b.split("/", 3)[3]  # absolute and relative URLs both name parts
    response = post(client, srv, **{"Upload-Concat": f"final;{a} {relative_b}", "Upload-Metadata": f"filename {b64('f.txt')}"})
    assert response.status_code == 201
    final = response.headers["Location"]
    h = head(client, final)
    assert h.headers["Upload-Offset"] == "11" and h.headers["Upload-Length"] == "11"
    assert h.headers["Upload-Concat"].startswith("final;")
    assert [u.rsplit("/", 1)[1] for u in h.headers["Upload-Concat"][6:].split(" ")] == [
        a.rsplit("/", 1)[1], b.rsplit("/", 1)[1]]
    assert client.get(final).content == b"hello world"
    # CC7: the final keeps its own metadata, not the parts'.
    assert h.headers["Upload-Metadata"] == f"filename {b64('f.txt')}"


def test_cc5_a_part_may_repeat(client, srv):
    a = make_partial(client, srv, b"ab")
    final = post(client, srv, **{"Upload-Concat": f"final;{a} {a} {a}"}).headers["Location"]
    assert client.get(final).content == b"ababab"


def test_cc8_patch_to_a_final_upload_is_403(client, srv):
    a = make_partial(client, srv, b"abc")
    final = post(client, srv, **{"Upload-Concat": f"final;{a}"}).headers["Location"]
    assert_one_line_4xx(patch(client, final, b"x", 3), 403)
    assert client.get(final).content == b"abc"


def test_cc_final_naming_a_non_partial_upload_is_400(client, srv):
    plain = create(client, srv, 3)
    patch(client, plain, b"abc", 0)
    assert_one_line_4xx(post(client, srv, **{"Upload-Concat": f"final;{plain}"}), 400)


def test_cc_final_naming_unknown_or_foreign_uploads_is_404(client, srv):
    assert_one_line_4xx(post(client, srv, **{"Upload-Concat": f"final;{srv.url}/00000000-0000-4000-8000-000000000000"}), 404)
    assert_one_line_4xx(post(client, srv, **{"Upload-Concat": "final;http://elsewhere.example/other/abc"}), 404)


@pytest.mark.parametrize("value", ["final;", "final", "everything", "partial;x"])
def test_cc_malformed_upload_concat_is_400(client, srv, value):
    assert_one_line_4xx(post(client, srv, **{"Upload-Length": "3", "Upload-Concat": value}), 400)


def test_cc6_concatenation_unfinished_completes_when_the_parts_do(client, srv):
    a = post(client, srv, **{"Upload-Length": "3", "Upload-Concat": "partial"}).headers["Location"]
    b = post(client, srv, **{"Upload-Defer-Length": "1", "Upload-Concat": "partial"}).headers["Location"]
    final = post(client, srv, **{"Upload-Concat": f"final;{a} {b}"}).headers["Location"]
    h = head(client, final)
    assert "Upload-Offset" not in h.headers  # CC9: no offset until the concatenation is done
    assert client.get(final).status_code == 409
    patch(client, a, b"abc", 0)
    assert "Upload-Offset" not in head(client, final).headers
    patch(client, b, b"def", 0, **{"Upload-Length": "3"})
    h = head(client, final)
    assert h.headers["Upload-Offset"] == "6" and h.headers["Upload-Length"] == "6"
    assert client.get(final).content == b"abcdef"


# -- expiration ----------------------------------------------------------------------------


def test_ex2_ex3_upload_expires_on_post_and_patch_as_http_date(client, srv):
    response = post(client, srv, **{"Upload-Length": "6"})
    expires = response.headers["Upload-Expires"]
    assert expires.endswith(" GMT") and len(expires) == 29  # IMF-fixdate
    response = patch(client, response.headers["Location"], b"abc", 0)
    assert response.headers["Upload-Expires"].endswith(" GMT")
    options = client.options(srv.url + "/")
    assert "expiration" in options.headers["Tus-Extension"].split(",")


def test_ex2_a_finished_upload_does_not_expire(client, srv):
    url = create(client, srv, 3)
    response = patch(client, url, b"abc", 0)
    assert "Upload-Expires" not in response.headers


# -- GET download --------------------------------------------------------------------------


def upload_with(client, srv, data, metadata):
    encoded = ",".join(f"{k} {b64(v)}" for k, v in metadata.items())
    url = create(client, srv, len(data), **{"Upload-Metadata": encoded})
    patch(client, url, data, 0)
    return url


def test_get_uses_filetype_and_filename_metadata(client, srv):
    url = upload_with(client, srv, b"\x89PNG....", {"filename": "cat.png", "filetype": "image/png"})
    response = client.get(url)
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Disposition"] == "inline; filename=\"cat.png\"; filename*=UTF-8''cat.png"


def test_get_never_renders_html_and_quotes_hostile_filenames(client, srv):
    url = upload_with(client, srv, b"<script>", {"filename": '../my "r%"; é.html', "filetype": "text/html"})
    response = client.get(url)
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert 'filename="my _r__; _.html"' in disposition  # no directory, no quote, ASCII only
    assert "filename*=UTF-8''my%20%22r%25%22%3B%20%C3%A9.html" in disposition


def test_get_rejects_malformed_filetype(client, srv):
    url = upload_with(client, srv, b"x", {"filetype": "text/html\r\nX-Evil: 1"})
    response = client.get(url)
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert "X-Evil" not in response.headers


def test_get_range_requests(client, srv):
    url = upload_with(client, srv, b"0123456789", {})
    response = client.get(url, headers={"Range": "bytes=2-5"})
    assert response.status_code == 206
    assert response.content == b"2345"
    assert response.headers["Content-Range"] == "bytes 2-5/10"
    assert client.get(url, headers={"Range": "bytes=-3"}).content == b"789"
    assert client.get(url, headers={"Range": "bytes=7-"}).content == b"789"
    response = client.get(url, headers={"Range": "bytes=20-30"})
    assert_one_line_4xx(response, 416)
    assert response.headers["Content-Range"] == "bytes */10"
    assert client.get(url, headers={"Range": "pages=1-2"}).status_code == 200


def test_get_of_an_unfinished_upload_serves_the_bytes_stored(client, srv):
    url = create(client, srv, 10)
    patch(client, url, b"abc", 0)
    response = client.get(url)
    assert response.status_code == 200 and response.content == b"abc"
