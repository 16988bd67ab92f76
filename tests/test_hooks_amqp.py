"""AMQP hooks against the real RabbitMQ on 127.0.0.1:5672, and a real Celery worker running
the document's Celery app (contrib/rustus_celery). Every test uses its own exchange and
queue names, so tests running at the same time never see each other's messages."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import uuid

import httpx
import pytest

from hooks_support import CONTRIB, TcpRelay, read_jsonl, validate_payload, wait_until
from tuspluggy.testing import require_service, tus_upload

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(autouse=True)
def rabbitmq():
    require_service("rabbitmq")


@pytest.fixture
def names():
    """A unique prefix; the queues and exchanges it names are deleted afterwards."""
    prefix = f"hooktest{uuid.uuid4().hex[:8]}"
    yield prefix
    asyncio.run(_delete_everything(prefix))


async def _delete_everything(prefix: str) -> None:
    import aiormq

    connection = await aiormq.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        for event in ("pre-create", "post-create", "post-receive", "pre-terminate", "post-terminate", "post-finish",
                      "pre-access"):
            await channel.queue_delete(f"{prefix}.{event}")
        await channel.queue_delete(prefix)
        await channel.queue_delete(f"{prefix}-route")
        await channel.exchange_delete(prefix)
    finally:
        await connection.close()


async def _queue_exists(queue: str) -> bool:
    import aiormq

    connection = await aiormq.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        await channel.queue_declare(queue, passive=True)
        return True
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        await connection.close()


def fetch(queue: str, count: int, timeout: float = 30) -> list:
    """Take `count` messages off `queue` (waiting up to `timeout` seconds for them)."""

    async def run():
        import aiormq
        from pamqp.commands import Basic

        connection = await aiormq.connect(AMQP_URL)
        messages = []
        try:
            channel = await connection.channel()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(messages) < count and loop.time() < deadline:
                try:
                    message = await channel.basic_get(queue, no_ack=True)
                except aiormq.exceptions.ChannelNotFoundEntity:
                    channel = await connection.channel()
                    message = None
                if message is None or not isinstance(message.delivery, Basic.GetOk):  # GetEmpty: nothing yet
                    await asyncio.sleep(0.1)
                    continue
                messages.append(message)
        finally:
            await connection.close()
        return messages

    return asyncio.run(run())


def _declared_server(make_server, prefix, *extra):
    return make_server(
        "--hooks-amqp-url", AMQP_URL, "--hooks-amqp-exchange", prefix, "--hooks-amqp-queues-prefix", prefix,
        "--hooks-amqp-declare-exchange", "yes", "--hooks-amqp-declare-queues", "yes", *extra,
    )


def test_events_routed_by_prefix_and_event_with_ids(make_server, names):
    server = _declared_server(make_server, names, "--hooks-format", "tusd")
    location = tus_upload(server.url, b"abcdef", chunk_size=4)
    assert httpx.delete(location, headers=TUS).status_code == 204
    expected = {"pre-create": 1, "post-create": 1, "post-receive": 1, "post-finish": 1, "pre-terminate": 1,
                "post-terminate": 1}
    ids = []
    for event, count in expected.items():
        messages = fetch(f"{names}.{event}", count)
        assert len(messages) == count, event
        for message in messages:
            props = message.header.properties
            assert props.content_type == "application/json" and props.delivery_mode == 2
            assert message.routing_key == f"{names}.{event}"
            body = json.loads(message.body)
            validate_payload(body, "tusd")
            assert body["Upload"]["ID"] == location.rsplit("/", 1)[1]
            ids.append(props.message_id)
    assert len(set(ids)) == len(ids) == 6  # a stable id per event


def test_one_routing_key_means_one_queue(make_server, names):
    route = f"{names}-route"
    server = _declared_server(make_server, names, "--hooks-amqp-routing-key", route, "--hooks",
                              "post-create,post-finish", "--hooks-amqp-durable-exchange", "yes",
                              "--hooks-amqp-durable-queues", "yes")
    tus_upload(server.url, b"abc", chunk_size=2)
    messages = fetch(route, 2)
    assert [json.loads(m.body)["upload"]["offset"] for m in messages] == [0, 3]
    assert all(m.routing_key == route for m in messages)


def test_amqp_never_cancels_even_when_the_broker_is_down(make_server, names):
    relay = TcpRelay(("127.0.0.1", 5672))  # not started: the broker is unreachable
    server = make_server(
        "--hooks-amqp-url", f"amqp://guest:guest@127.0.0.1:{relay.port}/", "--hooks-amqp-exchange", names,
        "--hooks-amqp-queues-prefix", names, "--hooks-amqp-declare-exchange", "yes",
        "--hooks-amqp-declare-queues", "yes", "--hooks-retry-delay", "0.2", "--hooks-retry-max-delay", "1",
        "--hooks-amqp-timeout", "3",
    )
    try:
        locations = [tus_upload(server.url, b"q" * 5, chunk_size=2) for _ in range(2)]  # pre-create included
        assert httpx.delete(locations[0], headers=TUS).status_code == 204  # pre-terminate included
        wait_until(lambda: "notifier amqp failed (attempt 2)" in server.log(), 60)
        server.restart()  # and a server restart while the broker is still down
        relay.start()
        expected = {"pre-create": 2, "post-create": 2, "post-receive": 4, "post-finish": 2, "pre-terminate": 1,
                    "post-terminate": 1}
        seen = collections.Counter()
        for event, count in expected.items():
            messages = fetch(f"{names}.{event}", count, timeout=60)
            assert len(messages) == count, event
            seen.update(m.header.properties.message_id for m in messages)
        server.stop()
        for event in expected:  # nothing more arrived afterwards: each event once
            assert fetch(f"{names}.{event}", 1, timeout=0.5) == []
        assert all(count == 1 for count in seen.values()) and len(seen) == sum(expected.values())
    finally:
        relay.stop()


def test_celery_worker_runs_one_task_per_event(make_server, names, tmp_path):
    log = tmp_path / "tasks.jsonl"
    queue = names
    env = {**os.environ, "CELERY_BROKER_URL": AMQP_URL, "TASK_PREFIX": names, "HOOKS_RECEIVER_LOG": str(log),
           "PYTHONPATH": str(CONTRIB)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "rustus_celery", "worker", "-Q", queue, "--pool", "solo",
         "--concurrency", "1", "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"{names}@%h",
         "--loglevel", "WARNING"],
        cwd=CONTRIB, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        # The document's recipe: a direct exchange and routing key named like the worker's
        # queue, which the worker declares (durable, as Celery does).
        wait_until(lambda: asyncio.run(_queue_exists(queue)), 60, interval=0.5)
        server = make_server("--hooks-amqp-url", AMQP_URL, "--hooks-amqp-exchange", queue,
                             "--hooks-amqp-exchange-kind", "direct", "--hooks-amqp-routing-key", queue,
                             "--hooks-amqp-celery", "yes", "--hooks-amqp-queues-prefix", names)
        location = tus_upload(server.url, b"celery!", chunk_size=4)
        assert httpx.delete(location, headers=TUS).status_code == 204
        tasks = wait_until(lambda: len(read_jsonl(log)) >= 6 and read_jsonl(log), 90)
        assert sorted(t["hook_name"] for t in tasks) == sorted(
            ["pre-create", "post-create", "post-receive", "post-finish", "pre-terminate", "post-terminate"])
        assert len({t["task_id"] for t in tasks}) == 6  # the task id is the event id
        for task in tasks:
            validate_payload(task["payload"], "default")
            assert task["payload"]["upload"]["id"] == location.rsplit("/", 1)[1]
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
