"""The durable outbox: recorded before the answer, delivered with retries, claimed by one
process at a time, resumed after a restart, never re-sent to a notifier that has it."""

from __future__ import annotations

import collections
import json
import os

import httpx
import trio

from hooks_support import read_jsonl, recording_hook, wait_until
from tuspluggy.interfaces import HookCall, RequestInfo
from tuspluggy.outbox import Outbox, RetryPolicy
from tuspluggy.testing import tus_upload

FAST = RetryPolicy(first_delay=0.05, max_delay=0.2)


def eid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"  # event ids are uuids


def call(n: int, upload_id: str | None = None) -> HookCall:
    return HookCall(event="post-finish", event_id=eid(n), body=json.dumps({"n": n}), upload_id=upload_id or f"u{n}",
                    request=RequestInfo(uri="/files", method="PATCH", remote_addr="127.0.0.1", headers={}))


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[str] = []
        self.fail_first = fail_first

    async def notify(self, c: HookCall) -> None:
        await trio.sleep(0.01)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise ConnectionError("receiver down")
        self.calls.append(c.event_id)


async def wait_for(predicate, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


async def test_recorded_event_is_on_disk_before_delivery(tmp_path):
    outbox = Outbox(str(tmp_path), policy=FAST)
    await outbox.record(call(1), ["a"])
    (row,) = outbox.list_deliveries()
    assert (row.event_id, row.notifier, row.state, row.attempts) == (eid(1), "a", "pending", 0)
    names = os.listdir(tmp_path / "pending")
    assert len(names) == 1 and names[0].endswith(f"-u1-{eid(1)}.event")


async def test_failures_are_retried_with_backoff_and_logged(tmp_path, caplog):
    outbox = Outbox(str(tmp_path), policy=FAST, poll_interval=0.05)
    flaky = Recorder(fail_first=3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run, {"flaky": flaky.notify})
        await outbox.record(call(1), ["flaky"])
        await wait_for(lambda: flaky.calls)
        await wait_for(lambda: outbox.pending_count() == 0)
        nursery.cancel_scope.cancel()
    assert flaky.calls == [eid(1)]
    messages = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(messages) == 3
    assert f"hook post-finish event {eid(1)} to notifier flaky failed (attempt 1)" in messages[0]
    assert "ConnectionError: receiver down" in messages[0]


async def test_success_to_one_notifier_is_not_resent_after_a_restart(tmp_path):
    first = Outbox(str(tmp_path), policy=FAST, poll_interval=0.05)
    good, down = Recorder(), Recorder(fail_first=10**6)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(first.run, {"good": good.notify, "down": down.notify})
        await first.record(call(1), ["good", "down"])
        await wait_for(lambda: good.calls)
        await trio.sleep(0.3)
        nursery.cancel_scope.cancel()
    states = {(r.notifier, r.state) for r in first.list_deliveries()}
    assert states == {("good", "delivered"), ("down", "pending")}
    assert [r.attempts for r in first.list_deliveries() if r.notifier == "down"][0] >= 2

    # "Restart": a new outbox over the same directory, with the receiver back.
    second = Outbox(str(tmp_path), policy=FAST, poll_interval=0.05)
    good2, back = Recorder(), Recorder()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(second.run, {"good": good2.notify, "down": back.notify})
        await wait_for(lambda: back.calls)
        await wait_for(lambda: second.pending_count() == 0)
        nursery.cancel_scope.cancel()
    assert good2.calls == [] and back.calls == [eid(1)]
    assert second.list_deliveries(recent=False) == []
    done = second.list_deliveries()  # remembered in memory for dashboards
    assert {(r.event_id, r.notifier, r.state) for r in done} == {(eid(1), "down", "delivered"),
                                                                  (eid(1), "good", "delivered")}


async def test_events_of_one_upload_are_delivered_in_order(tmp_path):
    outbox = Outbox(str(tmp_path), policy=FAST, poll_interval=0.05, concurrency=4)
    flaky = Recorder(fail_first=3)  # the first event needs four attempts
    for n in range(5):
        await outbox.record(call(n, upload_id="same-upload"), ["x"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run, {"x": flaky.notify})
        await wait_for(lambda: outbox.pending_count() == 0)
        nursery.cancel_scope.cancel()
    assert flaky.calls == [eid(n) for n in range(5)]


async def test_two_processes_sharing_an_outbox_deliver_each_event_once(tmp_path):
    # Two Outbox objects stand for two worker processes: flock claims work the same way
    # between two open files of one process as between two processes.
    seen: list[str] = []

    async def notify(c):
        await trio.sleep(0.02)
        seen.append(c.event_id)

    a = Outbox(str(tmp_path), policy=FAST, poll_interval=0.02, concurrency=4)
    b = Outbox(str(tmp_path), policy=FAST, poll_interval=0.02, concurrency=4)
    for n in range(40):
        await (a if n % 2 else b).record(call(n), ["x"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.run, {"x": notify})
        nursery.start_soon(b.run, {"x": notify})
        await wait_for(lambda: a.pending_count() == 0, 30)
        nursery.cancel_scope.cancel()
    counts = collections.Counter(seen)
    assert len(counts) == 40 and set(counts.values()) == {1}


async def test_given_up_events_can_be_retried(tmp_path):
    outbox = Outbox(str(tmp_path), policy=RetryPolicy(first_delay=0.02, max_delay=0.05, max_attempts=2),
                    poll_interval=0.05)
    down = Recorder(fail_first=2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run, {"x": down.notify})
        await outbox.record(call(7), ["x"])
        await wait_for(lambda: outbox.pending_count() == 0)
        (row,) = outbox.list_deliveries()
        assert (row.state, row.attempts, row.last_error) == ("failed", 2, "ConnectionError: receiver down")
        assert outbox.retry(eid(7)) is True
        await wait_for(lambda: down.calls == [eid(7)])
        await wait_for(lambda: outbox.list_deliveries(recent=False) == [])
        assert outbox.retry(eid(7)) is False
        nursery.cancel_scope.cancel()


async def test_unconfigured_notifier_is_not_waited_for_forever(tmp_path):
    outbox = Outbox(str(tmp_path), policy=FAST, poll_interval=0.05)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(outbox.run, {})
        await outbox.record(call(1), ["gone"])
        await wait_for(lambda: outbox.pending_count() == 0)
        nursery.cancel_scope.cancel()
    (row,) = outbox.list_deliveries()
    assert row.state == "failed" and row.last_error == "notifier not configured"


def test_server_with_two_workers_delivers_each_event_once(make_server, tmp_path):
    log = tmp_path / "calls.jsonl"
    hook = recording_hook(tmp_path, log, "hook.py")
    server = make_server("--workers", "2", "--hooks-file", str(hook), "--hooks", "post-create,post-finish",
                         "--hooks-poll-interval", "0.2")
    with httpx.Client(timeout=30) as client:
        for _ in range(10):
            tus_upload(server.url, b"w" * 3, client=client)
    calls = wait_until(lambda: len(read_jsonl(log)) >= 20 and read_jsonl(log), 60)
    server.stop()
    calls = read_jsonl(log)
    assert len(calls) == 20
    ids = collections.Counter(json.loads(argv[1])["upload"]["id"] for argv in calls)
    assert len(ids) == 10 and set(ids.values()) == {2}


async def test_half_written_files_of_a_crash_are_swept(tmp_path):
    Outbox(str(tmp_path))
    stale = tmp_path / "pending" / ".tmp-abc.part"
    fresh = tmp_path / "pending" / ".tmp-def.part"
    stale.write_bytes(b"{")
    fresh.write_bytes(b"{")
    os.utime(stale, (1, 1))
    outbox = Outbox(str(tmp_path))
    assert not stale.exists() and fresh.exists()  # a fresh one may be another worker's write
    assert outbox.pending_count() == 0
