"""When a storage cannot confirm bytes, the offset never claims them."""

import httpx

from tuspluggy import hookimpl
from tuspluggy.plugins.file_storage import FileStorage
from tuspluggy.testing import live_server

TUS = {"Tus-Resumable": "1.0.0"}


class UnconfirmingStorage(FileStorage):
    """Writes reach the disk, but every commit (the durability point) fails."""

    async def open_writer(self, upload, offset):
        writer = await super().open_writer(upload, offset)

        async def commit():
            raise OSError("the disk went away")

        writer.commit = commit
        return writer


class Plugin:
    def __init__(self, data_dir):
        self.data_dir = data_dir

    @hookimpl
    def tus_register_storages(self, register):
        register("unconfirming", lambda ctx: UnconfirmingStorage(self.data_dir))


async def test_bytes_the_storage_did_not_confirm_are_not_counted(data_dir):
    async with live_server(plugins=[("unconfirming", Plugin(data_dir))], storage="unconfirming",
                           data_dir=data_dir, info_dir=data_dir) as url:
        async with httpx.AsyncClient() as client:
            location = (await client.post(url + "/", headers={**TUS, "Upload-Length": "6"})).headers["Location"]
            response = await client.patch(location, content=b"abcdef", headers={
                **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
            assert response.status_code == 500
            assert "Traceback" not in response.text and response.text.count("\n") == 1
            head = await client.head(location, headers=TUS)
            assert head.headers["Upload-Offset"] == "0"
