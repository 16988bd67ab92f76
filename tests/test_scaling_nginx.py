"""The load balancer of docs/scaling.md, run by Debian's nginx in front of two instances
that share PostgreSQL and an S3 server: a real tus client (tuspy) uploads through it with
small chunks, so round robin sends consecutive PATCHes of one upload to both instances."""

from __future__ import annotations

import io
import os
import re
import socket
from pathlib import Path

import httpx
import pytest
from tusclient.client import TusClient

from nginx_support import NGINX, Nginx
from scaling_support import MiB, Cluster, drop_table, moto, payload, postgres_dsn  # noqa: F401 (moto is a fixture)
from tuspluggy.testing import require_service

DOC = Path(__file__).resolve().parent.parent / "docs" / "scaling.md"


def doc_nginx_config() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/scaling.md should hold exactly one nginx block"
    return blocks[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def nginx_in_front(moto, tmp_path):
    require_service("postgres")
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/run installs it)")
    table = f"nginx_{os.urandom(5).hex()}"
    cluster = Cluster(moto, ["--info-storage", "db-info-storage", "--info-db-dsn", postgres_dsn(),
                             "--db-info-table", table], tmp_path)
    a, b = cluster.start_many(2, "--behind-proxy", "yes")
    port = free_port()
    site = doc_nginx_config()
    for old, new in (("server 10.0.0.11:1081", f"server 127.0.0.1:{a.port}"),
                     ("server 10.0.0.12:1081", f"server 127.0.0.1:{b.port}"),
                     ("listen 80;", f"listen 127.0.0.1:{port};")):
        assert site.count(old) == 1, f"the nginx block of docs/scaling.md no longer has {old!r}"
        site = site.replace(old, new)
    directory = tmp_path / "nginx"
    directory.mkdir()
    proxy = Nginx(directory, site)
    try:
        proxy.start(port)
        yield f"http://127.0.0.1:{port}", (a, b)
    finally:
        proxy.stop()
        cluster.stop()
        drop_table(table)


def test_tus_client_through_the_documented_load_balancer(nginx_in_front):
    origin, instances = nginx_in_front
    data = payload(6 * MiB + 333, seed=17)
    client = TusClient(origin + "/files")
    uploader = client.uploader(file_stream=io.BytesIO(data), chunk_size=512 * 1024,
                               metadata={"filename": "through-nginx.bin"})
    uploader.upload()
    url = uploader.url
    assert url.startswith(origin + "/files/")  # Location names the load balancer, not an instance
    with httpx.Client(timeout=60) as http:
        assert http.get(url).content == data
        for instance in instances:  # and each instance has the whole upload
            assert http.get(instance.url + "/" + url.rsplit("/", 1)[1]).content == data
    # Both instances served PATCHes of this one upload (each logs one line per request).
    upload_id = url.rsplit("/", 1)[1]
    for instance in instances:
        assert f"PATCH /files/{upload_id} 204" in instance.log()
