"""The boto3 client of --storage s3, built from the Rustus-named options, and the one
place S3 calls leave the trio thread.

boto3 is synchronous and thread-safe: each call runs in a worker thread
(trio.to_thread), so a slow object store never stalls the trio loop, and we do not
hand-write SigV4 or the S3 XML protocol.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from functools import partial

import boto3
import trio
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from tuspluggy.errors import TusError
from tuspluggy.plugin_manager import PluginLoadError


class ObjectStoreError(TusError):
    """The object store refused or could not be reached: a 503 with one line, no traceback."""

    def __init__(self, operation: str, error: Exception) -> None:
        super().__init__(503, f"object storage failed ({operation}): {error}", {"Retry-After": "5"})


def error_code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def _secret(value: str | None, path: str | None, name: str) -> str | None:
    if value:
        return value
    if path:
        try:
            with open(path, encoding="utf-8") as file:
                return file.read().strip()
        except OSError as error:
            raise PluginLoadError(f"--{name}-path: cannot read {path}: {error.strerror}") from None
    return None


def make_client(config, max_connections: int):
    """A boto3 S3 client from the --s3-* options. With no keys given, boto3's own chain
    (AWS_* variables, profiles, instance roles) supplies them."""
    headers = {}
    if config.get("s3_headers"):
        try:
            headers = json.loads(config.s3_headers)
        except ValueError:
            headers = None
        if not isinstance(headers, dict):
            raise PluginLoadError('--s3-headers must be a JSON object, e.g. {"x-amz-acl": "private"}')
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=config.get("s3_url") or None,
        region_name=config.get("s3_region") or None,
        aws_access_key_id=_secret(config.get("s3_access_key"), config.get("s3_access_key_path"), "s3-access-key"),
        aws_secret_access_key=_secret(config.get("s3_secret_key"), config.get("s3_secret_key_path"), "s3-secret-key"),
        config=BotoConfig(
            s3={"addressing_style": "path" if config.get("s3_force_path_style") else "auto"},
            max_pool_connections=max_connections,
            retries={"max_attempts": 5, "mode": "standard"},
        ),
    )
    if headers:
        def add_headers(request, **_):
            for name, value in headers.items():
                request.headers[name] = str(value)

        client.meta.events.register("before-sign.s3", add_headers)
    return client


def call_sync(client, operation: str, ignore: tuple[str, ...] = (), **kwargs):
    """One S3 call in the current (worker) thread; errors become ObjectStoreError, codes
    in `ignore` (e.g. NoSuchUpload when aborting twice) become None."""
    try:
        return getattr(client, operation)(**kwargs)
    except ClientError as error:
        if error_code(error) in ignore:
            return None
        raise ObjectStoreError(operation, error) from None
    except BotoCoreError as error:
        raise ObjectStoreError(operation, error) from None


async def call(client, operation: str, ignore: tuple[str, ...] = (), **kwargs):
    return await trio.to_thread.run_sync(partial(call_sync, client, operation, ignore, **kwargs))


async def wait_future(future: Future):
    """Await a concurrent.futures.Future from trio without holding a thread for it."""
    if not future.done():
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def wake(_):
            try:
                token.run_sync_soon(done.set, idempotent=True)
            except trio.RunFinishedError:
                pass

        future.add_done_callback(wake)
        await done.wait()
    return future.result()
