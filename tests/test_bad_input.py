"""Bad input: hypothesis throws thousands of malformed requests at a real server.

Every request goes over a raw socket (an HTTP client library would refuse or normalise
much of it: dot segments, odd methods, control bytes). Whatever arrives, the answer is
never a 5xx, every 4xx carries a one-line message, the server stays up, and nothing is
written outside its data directory.
"""

from __future__ import annotations

import base64
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuspluggy.testing import ServerProcess, read_raw_answer, tus_upload

EXAMPLES = int(os.environ.get("TUSPLUGGY_BAD_INPUT_EXAMPLES", "1600"))
METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "PUT", "TRACE", "BREW", "patch", "P@TCH"]
TUS_HEADERS = ["Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Defer-Length", "Upload-Metadata",
               "Upload-Concat", "Upload-Checksum", "Content-Type", "X-HTTP-Method-Override", "Range",
               "X-Request-ID", "Forwarded", "X-Forwarded-Host", "Origin", "Access-Control-Request-Method"]


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """A server whose working directory and data directory are both watched."""
    root = tmp_path_factory.mktemp("bad-input")
    data = root / "data"
    cwd = root / "cwd"
    data.mkdir()
    cwd.mkdir()
    here = os.getcwd()
    os.chdir(cwd)  # the server inherits it: a stray relative write would land here
    try:
        server = ServerProcess("--read-timeout", "5", data_dir=str(data)).start()
    finally:
        os.chdir(here)
    try:
        existing = tus_upload(server.url + "/", b"x" * 10)
        partial = tus_upload(server.url + "/", b"y" * 10, headers={"Upload-Concat": "partial"})
        open_upload = _create_open_upload(server.url)
        yield {"server": server, "root": root, "data": data, "cwd": cwd,
               "ids": [u.rsplit("/", 1)[1] for u in (existing, partial, open_upload)]}
    finally:
        server.stop()


def _create_open_upload(url: str) -> str:
    import httpx

    r = httpx.post(url + "/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(10**9)})
    return r.headers["Location"]


# -- strategies -----------------------------------------------------------------------

header_text = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", max_codepoint=0x2FF), max_size=60
)
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", " ", "0", "1", "-0", "+5", "1e3", "0x10", "١٢", " 7 ", "18446744073709551616", "9" * 400]),
    header_text,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


metadata = st.one_of(
    st.lists(
        st.tuples(
            st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=0, max_size=12),
            st.one_of(st.binary(max_size=30).map(b64), header_text, st.just("!!notbase64"), st.just("")),
        ),
        max_size=6,
    ).map(lambda pairs: ",".join(f"{k} {v}".rstrip() for k, v in pairs)),
    st.integers(min_value=1, max_value=300).map(lambda n: ",".join(f"k{i} {b64(b'v')}" for i in range(n))),
    st.integers(min_value=1_000, max_value=60_000).map(lambda n: "big " + "A" * (n - n % 4)),
    header_text,
)


def header_values(ids):
    path_like = st.sampled_from([f"/files/{i}" for i in ids] + ["/files/../etc", "http://evil/files/x", ""])
    return {
        "Tus-Resumable": st.sampled_from(["1.0.0", "1.0.0", "0.2.2", "", "1.0", "1.0.0, 0.2.2"]) | header_text,
        "Upload-Length": numbers,
        "Upload-Offset": numbers,
        "Upload-Defer-Length": st.sampled_from(["1", "0", "true", ""]) | header_text,
        "Upload-Metadata": metadata,
        "Upload-Concat": st.one_of(
            st.sampled_from(["partial", "final", "final;", "partial;x", "Final"]),
            st.lists(path_like, max_size=4).map(lambda urls: "final;" + " ".join(urls)),
            header_text,
        ),
        "Upload-Checksum": st.one_of(
            st.tuples(st.sampled_from(["sha1", "md5", "sha256", "crc32", "SHA1", ""]),
                      st.one_of(st.binary(max_size=40).map(b64), header_text)).map(" ".join),
            header_text,
        ),
        "Content-Type": st.sampled_from([
            "application/offset+octet-stream", "application/offset+octet-stream; charset=utf-8",
            "text/plain", "", "multipart/form-data; boundary=x", "application/json",
        ]) | header_text,
        "X-HTTP-Method-Override": st.sampled_from(METHODS) | header_text,
        "Range": st.sampled_from(["bytes=0-3", "bytes=5-2", "bytes=-1", "bytes=0-", "bytes=99999-", "pages=1"])
        | header_text,
        "X-Request-ID": header_text,
        "Forwarded": st.sampled_from(["for=1.2.3.4;host=x;proto=https", "proto=gopher", ""]) | header_text,
        "X-Forwarded-Host": header_text,
        "Origin": st.sampled_from(["http://a.example", "null", ""]) | header_text,
        "Access-Control-Request-Method": st.sampled_from(METHODS) | header_text,
    }


def paths(ids):
    segment = st.one_of(
        st.sampled_from(ids),
        st.sampled_from(["..", ".", "%2e%2e", "..%2F..%2Fescape", "%2F", "%00", "..\\..\\escape", "~", "%",
                         "%ZZ", "a" * 300, "../../../../tmp/escape"]),
        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
    )
    return st.one_of(
        st.sampled_from(["/files", "/files/", "/", "//files", "/files//", "/metrics", "/health", "*"]),
        st.lists(segment, min_size=1, max_size=4).map(lambda parts: "/files/" + "/".join(parts)),
        st.lists(segment, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts)),
        st.integers(min_value=1, max_value=20_000).map(lambda n: "/files/" + "b" * n),
    )


@st.composite
def requests(draw, ids):
    method = draw(st.sampled_from(METHODS) | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12))
    path = draw(paths(ids))
    values = header_values(ids)
    chosen = draw(st.lists(st.sampled_from(TUS_HEADERS), unique=True, max_size=8))
    headers = [(name, draw(values[name])) for name in chosen]
    if draw(st.booleans()):
        headers.append(("Tus-Resumable", "1.0.0"))
    body = draw(st.binary(max_size=4096)) if method in ("POST", "PATCH", "PUT") or draw(st.booleans()) else b""
    bad_length = draw(st.sampled_from([None] * 8 + ["-1", "abc", "1,2", "0x10", " "]))
    return method, path, headers, body, bad_length


# -- a raw HTTP exchange -------------------------------------------------------------


def exchange(port: int, method: str, path: str, headers, body: bytes, bad_length: str | None):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {bad_length if bad_length is not None else len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole body was read: the answer is what counts
        override = dict((k.lower(), v) for k, v in headers).get("x-http-method-override", "").strip().upper()
        received = _read_answer(sock, "HEAD" if "HEAD" in (method.upper(), override) else method)
    head, _, payload = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), f"no HTTP answer to {method} {path[:80]}: {received[:200]!r}"
    return int(status_line.split(b" ")[1]), head, payload


def _read_answer(sock: socket.socket, method: str) -> bytes:
    """Up to the end of the answer's body (by Content-Length), or until the server closes."""
    received = b""
    try:
        while True:
            head, sep, payload = received.partition(b"\r\n\r\n")
            if sep:
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if method.upper() == "HEAD" or len(payload) >= length:
                    return received
            data = sock.recv(65536)
            if not data:
                return received
            received += data
    except ConnectionResetError:
        return received


def check_answer(method: str, path: str, status: int, head: bytes, payload: bytes) -> None:
    assert status < 500, f"{status} for {method} {path[:80]}: {payload[:300]!r}"
    if status >= 400 and method.upper() != "HEAD":
        text = payload.decode("utf-8", "replace").strip()
        assert text, f"{status} without a message for {method} {path[:80]}"
        assert "\n" not in text, f"message of {status} is not one line: {text[:300]!r}"
        assert "Traceback" not in text


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(data=st.data())
def test_malformed_requests_get_a_4xx_with_a_one_line_message(target, data):
    method, path, headers, body, bad_length = data.draw(requests(target["ids"]))
    status, head, payload = exchange(target["server"].port, method, path, headers, body, bad_length)
    override = dict((k.lower(), v) for k, v in headers).get("x-http-method-override", "").strip().upper()
    check_answer("HEAD" if override == "HEAD" else method, path, status, head, payload)


@settings(max_examples=max(200, EXAMPLES // 4), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(junk=st.binary(min_size=1, max_size=2048))
def test_garbage_bytes_instead_of_a_request(target, junk):
    with socket.create_connection(("127.0.0.1", target["server"].port), timeout=30) as sock:
        sock.sendall(junk + b"\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        received = read_raw_answer(sock)
    if received:  # hypercorn may also just close a connection that never was HTTP
        status = int(received.split(b" ", 2)[1])
        assert status < 500, received[:300]


def test_zz_server_alive_and_nothing_written_outside_its_data_dir(target):
    """Runs after the property tests (module order): the server still serves uploads."""
    server = target["server"]
    assert server.process.poll() is None, server.log()[-3000:]
    location = tus_upload(server.url + "/", b"still alive")
    import httpx

    assert httpx.get(location).content == b"still alive"
    assert "Traceback" not in server.log()
    assert os.listdir(target["cwd"]) == []
    outside = [
        os.path.join(directory, name)
        for directory, _, names in os.walk(target["root"])
        for name in names
        if not os.path.join(directory, name).startswith(str(target["data"]) + os.sep)
    ]
    assert outside == []
    for directory, _, names in os.walk(target["data"]):
        for name in names:
            assert os.path.realpath(os.path.join(directory, name)).startswith(os.path.realpath(target["data"]))
