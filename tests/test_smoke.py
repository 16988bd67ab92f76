import httpx

from tuspluggy.testing import live_server, tus_upload


async def test_in_process_server_round_trip(data_dir):
    async with live_server(data_dir=data_dir, info_dir=data_dir) as url:
        async with httpx.AsyncClient() as client:
            r = await client.post(url + "/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "3"})
            assert r.status_code == 201
            r = await client.patch(r.headers["Location"], content=b"abc", headers={
                "Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
            assert r.status_code == 204 and r.headers["Upload-Offset"] == "3"


def test_real_process_round_trip(server):
    location = tus_upload(server.url + "/", b"x" * 3_000_000, chunk_size=1_000_000, metadata={"filename": "a.bin"})
    r = httpx.get(location)
    assert r.content == b"x" * 3_000_000


def test_thread_server_round_trip(data_dir):
    from tuspluggy.testing import ThreadServer

    with ThreadServer(data_dir=data_dir, info_dir=data_dir) as srv:
        location = tus_upload(srv.url + "/", b"abc" * 1000, chunk_size=1000)
        assert httpx.get(location).content == b"abc" * 1000
