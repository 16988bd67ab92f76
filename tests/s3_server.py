"""A real S3-compatible HTTP server for tests: moto's server mode in a subprocess on a
free loopback port. The storage under test talks to it over HTTP with boto3, exactly as
it would to AWS or MinIO; nothing in the client is mocked."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid

import boto3
import httpx
from botocore.config import Config as BotoConfig

from tuspluggy.testing import stop_process

ACCESS_KEY = "testing-access"
SECRET_KEY = "testing-secret"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> MotoServer:
        for _ in range(5):
            port = _free_port()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            self.url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    httpx.get(self.url + "/moto-api/", timeout=1)
                    return self
                except httpx.HTTPError:
                    time.sleep(0.1)
            self.stop()  # the port was taken meanwhile, or it died: try another
        raise RuntimeError("moto server did not start")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def client(self):
        return boto3.client("s3", endpoint_url=self.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY,
                            config=BotoConfig(s3={"addressing_style": "path"}))

    def new_bucket(self) -> str:
        name = f"tus-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def server_args(self, bucket: str, *extra: str) -> list[str]:
        """The tuspluggy options that point --storage s3 at this server."""
        return ["--storage", "s3", "--s3-url", self.url, "--s3-bucket", bucket, "--s3-region", REGION,
                "--s3-access-key", ACCESS_KEY, "--s3-secret-key", SECRET_KEY, "--s3-force-path-style", "yes",
                *extra]
