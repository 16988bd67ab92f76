"""The InfoStore contract (core/interfaces.py), checked the same way on every built-in info
store: file-info-storage, redis-info-storage (real Redis) and db-info-storage (real
PostgreSQL). Two store objects on one backend stand for two server instances."""

import time
import uuid

import pytest

from tuspluggy.aio import AsyncioPortal
from tuspluggy.interfaces import LockTimeout
from tuspluggy.plugins.file_info_storage import FileInfoStore
from tuspluggy.testing import require_service
from tuspluggy.upload import Upload, new_upload_id

from scaling_support import postgres_dsn


@pytest.fixture(params=["file", "redis", "postgres"])
async def two_instances(request, tmp_path):
    if request.param == "file":
        yield FileInfoStore(str(tmp_path)), FileInfoStore(str(tmp_path))
        return
    require_service(request.param)
    portal = AsyncioPortal()
    portal.start()
    name = f"test_{uuid.uuid4().hex[:10]}"
    if request.param == "redis":
        from tuspluggy.plugins.redis_info_storage import RedisInfoStore

        stores = [RedisInfoStore("redis://127.0.0.1:6379/0", portal, prefix=name + ":") for _ in range(2)]
    else:
        from tuspluggy.plugins.db_info_storage import DbInfoStore

        stores = [DbInfoStore(postgres_dsn(), portal, table=name) for _ in range(2)]
    for store in stores:
        await store.open()
    try:
        yield tuple(stores)
    finally:
        if request.param == "redis":
            keys = await portal.run(lambda: stores[0].client.keys(name + ":*"))
            if keys:
                await portal.run(lambda: stores[0].client.delete(*keys))
        else:
            await portal.run(lambda: stores[0].pool.execute(f"DROP TABLE IF EXISTS {name}"))
        for store in stores:
            await store.close()
        await portal.close()


async def test_records_are_saved_read_listed_and_deleted(two_instances):
    store, other = two_instances
    upload = Upload(id=new_upload_id(), length=10, metadata={"filename": "a.txt", "empty": ""},
                    storage_state={"mpu": "secret"}, parts=None)
    assert await store.get(upload.id) is None
    await store.save(upload)
    assert await other.get(upload.id) == upload  # seen by the other instance, field for field
    upload.offset = 7
    await other.save(upload)
    assert (await store.get(upload.id)).offset == 7
    assert [i async for i in store.list_ids()] == [upload.id]
    await store.delete(upload.id)
    await other.delete(upload.id)  # deleting a missing record is not an error
    assert await store.get(upload.id) is None
    assert [i async for i in store.list_ids()] == []


async def test_expired_uploads_are_found_for_cleanup(two_instances):
    store, _ = two_instances
    now = time.time()
    expired = Upload(id=new_upload_id(), length=5, expires_at=now - 10)
    fresh = Upload(id=new_upload_id(), length=5, expires_at=now + 1000)
    forever = Upload(id=new_upload_id(), length=5, expires_at=None)
    for upload in (expired, fresh, forever):
        await store.save(upload)
    # Redis and PostgreSQL index expiry times; without list_expired the service reads every record.
    list_expired = getattr(store, "list_expired", None)
    if list_expired is not None:
        assert [i async for i in list_expired(now)] == [expired.id]
    assert sorted([i async for i in store.list_ids()]) == sorted([expired.id, fresh.id, forever.id])


@pytest.mark.parametrize("upload_id", ["../etc/passwd", "'; DROP TABLE x; --", "", "a/b"])
async def test_ids_that_are_not_ours_are_simply_absent(two_instances, upload_id):
    store, _ = two_instances
    assert await store.get(upload_id) is None


async def test_the_lock_excludes_other_instances_times_out_and_is_released(two_instances):
    store, other = two_instances
    upload_id = new_upload_id()
    async with store.make_locker().lock(upload_id, 1):
        with pytest.raises(LockTimeout):
            async with other.make_locker().lock(upload_id, 0.3):
                pass
    async with other.make_locker().lock(upload_id, 1):
        pass
