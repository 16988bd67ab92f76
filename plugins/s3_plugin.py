"""s3-storage: the options and factory of the S3 storage (plugins/s3_storage.py, which
needs boto3: ``pip install 'tuspluggy[s3]'``)."""

from __future__ import annotations

from tuspluggy import hookimpl
from tuspluggy.interfaces import PluginContext
from tuspluggy.plugin_manager import PluginLoadError

from .optional import import_for

MiB = 1024 * 1024


@hookimpl
def tus_add_options(add_option):
    add_option("s3-url", default="", help="Endpoint of the S3-compatible store, e.g. http://127.0.0.1:9000; empty = AWS.")
    add_option("s3-bucket", default="", help="Bucket holding the uploads (must exist).")
    add_option("s3-region", default="us-east-1", help="Region of the bucket.")
    add_option("s3-access-key", default="", help="Access key id; empty = boto3's usual sources (AWS_* variables, roles).")
    add_option("s3-access-key-path", default="", help="File holding the access key id.")
    add_option("s3-secret-key", default="", help="Secret access key.")
    add_option("s3-secret-key-path", default="", help="File holding the secret access key.")
    add_option("s3-force-path-style", default=False, type=bool,
               help="Address the bucket in the path (http://host/bucket/key), as MinIO and moto need (yes/no).")
    add_option("s3-headers", default="", help='JSON object of headers added to every S3 request, e.g. {"x-amz-acl": "private"}.')
    add_option("s3-object-prefix", default="", help="Prefix of every object key, e.g. uploads/.")
    add_option("s3-part-size", default=8 * MiB, type=int, help="Bytes of each multipart part (at least 5 MiB).")
    add_option("s3-concurrency", default=4, type=int, help="Parts one request uploads (or copies) at the same time.")


@hookimpl
def tus_register_storages(register):
    def factory(ctx: PluginContext):
        config = ctx.config
        if not config.get("s3_bucket"):
            raise PluginLoadError("--storage s3 needs --s3-bucket")
        storage = import_for("tuspluggy.plugins.s3_storage", "--storage s3", "s3")
        s3_client = import_for("tuspluggy.plugins.s3_client", "--storage s3", "s3")
        concurrency = config.get("s3_concurrency") or 4
        client = s3_client.make_client(config, max_connections=concurrency * 4 + 10)
        return storage.S3Storage(client, config.s3_bucket, prefix=config.get("s3_object_prefix") or "",
                                 part_size=config.get("s3_part_size") or 8 * MiB, concurrency=concurrency)

    register("s3", factory)
