"""The ceiling of the stack: hypercorn's trio worker with tuspluggy's start-up tuning and an
ASGI app that speaks just enough tus for bench.py (POST, HEAD, PATCH) and stores nothing.

No storage, no records, no locks, no Quart: PATCH bodies are read and thrown away, offsets
live in a dict. Whatever this server reaches, no server built on hypercorn + h11 in one
Python process can beat on this machine; bench.py runs it beside the two real servers so
that RESULTS.md shows how much of that ceiling each figure uses.

    python bench/bare_server.py   # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import itertools
import logging
import socket

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from tuspluggy import tuning

offsets: dict[str, int] = {}
lengths: dict[str, int] = {}
ids = itertools.count()


def header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    method, path = scope["method"], scope["path"]
    headers = [(b"tus-resumable", b"1.0.0")]
    status = 200
    if method == "POST":
        upload_id = str(next(ids))
        offsets[upload_id] = 0
        lengths[upload_id] = int(header(scope, b"upload-length") or 0)
        host = (header(scope, b"host") or b"127.0.0.1").decode()
        headers.append((b"location", f"http://{host}/files/{upload_id}".encode()))
        status = 201
    elif method in ("HEAD", "PATCH"):
        upload_id = path.rsplit("/", 1)[-1]
        if upload_id not in offsets:
            status = 404
        elif method == "PATCH":
            received = 0
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return
                received += len(message.get("body", b""))
                more = message.get("more_body", False)
            offsets[upload_id] += received
            status = 204
        if status != 404:
            headers += [(b"upload-offset", str(offsets[upload_id]).encode()),
                        (b"upload-length", str(lengths[upload_id]).encode())]
    if status != 204:
        headers.append((b"content-length", b"0"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def main() -> None:
    tuning.raise_socket_read_size()
    tuning.tune_malloc()
    logging.disable(logging.WARNING)
    sock = socket.create_server(("127.0.0.1", 0))
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = config.errorlog = None
    config.max_app_queue_size = 2
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    trio.run(serve, app, config)


if __name__ == "__main__":
    main()
