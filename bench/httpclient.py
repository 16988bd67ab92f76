"""A minimal HTTP/1.1 client on a raw socket, for the load generator.

httpx costs ~100 µs of Python per request and copies bodies; here a request is one
sendall of the head plus sendall of memoryview slices of a buffer made once, and a
response is parsed from a few recv() calls. Keep-alive, one connection per object.
"""

from __future__ import annotations

import socket

SEND_SLICE = 4 * 1024 * 1024


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Connection:
    def __init__(self, host: str, port: int, timeout: float = 300) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None
        self.buffer = b""

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def send_head(self, method: str, path: str, headers: dict[str, str], length: int | None) -> None:
        if self.sock is None:
            self.connect()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin1"))

    def send_body(self, pieces) -> None:
        for piece in pieces:
            view = memoryview(piece)
            for start in range(0, len(view), SEND_SLICE):
                self.sock.sendall(view[start:start + SEND_SLICE])

    def read_response(self, method: str) -> Response:
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buffer += data
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if method != "HEAD" and status not in (204, 304) and headers.get("transfer-encoding", "") == "chunked":
            body, self.buffer = self._read_chunked(rest)
        else:
            length = 0 if method == "HEAD" or status in (204, 304) else int(headers.get("content-length", "0"))
            while len(rest) < length:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("server closed the connection")
                rest += data
            body, self.buffer = rest[:length], rest[length:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, body)

    def _read_chunked(self, rest: bytes) -> tuple[bytes, bytes]:
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += self._recv()
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += self._recv()
            body, rest = body + rest[:size], rest[size + 2:]
            if size == 0:
                return body, rest

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        return data

    def request(self, method: str, path: str, headers: dict[str, str], body=None, *, retry: bool = True) -> Response:
        """`body` is None, bytes, or a list of buffers sent one after the other."""
        pieces = [] if body is None else (body if isinstance(body, list) else [body])
        length = sum(len(p) for p in pieces) if body is not None else None
        try:
            self.send_head(method, path, headers, length)
            self.send_body(pieces)
            return self.read_response(method)
        except (ConnectionError, BrokenPipeError):
            # A keep-alive connection the server closed while idle: one fresh try.
            self.close()
            if not retry:
                raise
            return self.request(method, path, headers, body, retry=False)
