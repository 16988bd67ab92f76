"""AMQP hooks: publish each event to RabbitMQ (aiormq, through the core's asyncio portal).

The routing key is ``--hooks-amqp-routing-key`` if set, otherwise ``<queues-prefix>.<event>``.
Messages are persistent, carry the event id as ``message_id`` and are published with
publisher confirms, so a delivery counts only once the broker has the message; until then
the outbox retries it. With ``--hooks-amqp-celery`` each message is a Celery task
(protocol 2) named ``<queues-prefix>.<event>`` whose id is the event id and whose only
argument is the payload.

AMQP never cancels a request, even for pre-* events (`can_reject = False`): the broker is
told through the outbox like any post-* event. The connection is opened on first use and
re-opened after a failure, so a broker that is down at start-up only delays events.
"""

from __future__ import annotations

import json
import logging
import os
import socket

import trio

from tuspluggy import hookimpl
from tuspluggy.hook_formats import EVENTS
from tuspluggy.interfaces import HookCall, PluginContext

log = logging.getLogger("tuspluggy.hooks.amqp")


class AmqpNotifier:
    name = "amqp"
    can_reject = False

    def __init__(self, ctx: PluginContext) -> None:
        c = ctx.config
        if ctx.aio is None:
            raise RuntimeError("the AMQP notifier needs the asyncio portal (ctx.aio)")
        self.aio = ctx.aio
        self.url = c.hooks_amqp_url
        self.exchange = c.get("hooks_amqp_exchange", "tuspluggy")
        self.exchange_kind = c.get("hooks_amqp_exchange_kind", "topic")
        self.routing_key = c.get("hooks_amqp_routing_key") or ""
        self.prefix = c.get("hooks_amqp_queues_prefix", "tuspluggy")
        self.declare_exchange = c.get("hooks_amqp_declare_exchange", False)
        self.declare_queues = c.get("hooks_amqp_declare_queues", False)
        self.durable_exchange = c.get("hooks_amqp_durable_exchange", False)
        self.durable_queues = c.get("hooks_amqp_durable_queues", False)
        self.auto_delete = c.get("hooks_amqp_auto_delete", False)
        self.celery = c.get("hooks_amqp_celery", False)
        self.timeout = c.get("hooks_amqp_timeout", 10.0)
        self.events = [e for e in EVENTS if e in set(c.get("hooks") or [])]
        # Touched only on the asyncio thread.
        self._connection = None
        self._channel = None
        self._open_lock = None  # an asyncio.Lock, made on the asyncio thread

    def routing_key_for(self, event: str) -> str:
        return self.routing_key or f"{self.prefix}.{event}"

    # -- trio side ---------------------------------------------------------------------

    async def notify(self, call: HookCall) -> None:
        try:
            with trio.fail_after(self.timeout):
                await self.aio.run(lambda: self._publish(call))
        except trio.TooSlowError:
            raise TimeoutError(f"RabbitMQ did not confirm within {self.timeout:g}s") from None
        return None

    async def ready(self) -> None:
        with trio.fail_after(self.timeout):
            await self.aio.run(self._open_channel)

    async def aclose(self) -> None:
        await self.aio.run(self._close)

    # -- asyncio side -------------------------------------------------------------------

    async def _open_channel(self):
        import asyncio

        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        # One connection shared by concurrent deliveries: opening it twice would let the
        # second attempt close the first one under messages in flight.
        async with self._open_lock:
            if self._channel is not None and not self._channel.is_closed:
                return self._channel
            return await self._connect()

    async def _connect(self):
        import aiormq

        await self._close()
        try:
            self._connection = await aiormq.connect(self.url)
            channel = await self._connection.channel(publisher_confirms=True)
            if self.declare_exchange and self.exchange:
                await channel.exchange_declare(self.exchange, exchange_type=self.exchange_kind,
                                               durable=self.durable_exchange, auto_delete=self.auto_delete)
            if self.declare_queues:
                for queue in dict.fromkeys(self.routing_key_for(e) for e in self.events):
                    await channel.queue_declare(queue, durable=self.durable_queues, auto_delete=self.auto_delete)
                    if self.exchange:
                        await channel.queue_bind(queue, self.exchange, routing_key=queue)
        except BaseException:
            await self._close()
            raise
        self._channel = channel
        log.info("connected to RabbitMQ, exchange %r", self.exchange)
        return channel

    async def _publish(self, call: HookCall) -> None:
        from pamqp.commands import Basic

        channel = await self._open_channel()
        payload = json.loads(call.body)
        headers = None
        if self.celery:
            task = f"{self.prefix}.{call.event}"
            headers = celery_headers(task, call.event_id, payload)
            body = json.dumps([[payload], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
        else:
            body = call.body
        properties = Basic.Properties(
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,  # persistent: survives a broker restart once confirmed
            message_id=call.event_id,
            correlation_id=call.event_id if self.celery else None,
            headers=headers,
        )
        try:
            confirmation = await channel.basic_publish(body.encode(), exchange=self.exchange,
                                                       routing_key=self.routing_key_for(call.event),
                                                       properties=properties)
        except BaseException:
            if channel.is_closed and self._channel is channel:
                self._channel = None  # the next attempt opens a fresh one
            raise
        if not isinstance(confirmation, Basic.Ack):
            raise RuntimeError(f"RabbitMQ did not accept the message: {type(confirmation).__name__}")

    async def _close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:
                pass


def celery_headers(task: str, task_id: str, payload) -> dict:
    """The headers of a Celery protocol-2 task message."""
    return {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr((payload,))[:1024],
        "kwargsrepr": "{}",
        "origin": f"tuspluggy@{socket.gethostname()}/{os.getpid()}",
        "ignore_result": True,
    }


@hookimpl
def tus_add_options(add_option):
    add_option("hooks-amqp-url", default="", help="RabbitMQ connection string, e.g. amqp://guest:guest@localhost:5672; setting it enables AMQP hooks.")
    add_option("hooks-amqp-exchange", default="tuspluggy", help="Exchange messages are published to.")
    add_option("hooks-amqp-exchange-kind", default="topic", choices=("topic", "direct", "fanout", "headers"),
               help="Kind of the exchange (used when declaring it).")
    add_option("hooks-amqp-routing-key", default="", help="One routing key (and queue) for every event; empty = <queues-prefix>.<event>.")
    add_option("hooks-amqp-queues-prefix", default="tuspluggy", help="Prefix of per-event routing keys, queue names and Celery task names.")
    add_option("hooks-amqp-declare-exchange", default=False, type=bool, help="Declare the exchange on connect (yes/no).")
    add_option("hooks-amqp-declare-queues", default=False, type=bool,
               help="Declare a queue per enabled event (or the routing-key queue) and bind it to the exchange (yes/no).")
    add_option("hooks-amqp-durable-exchange", default=False, type=bool, help="Declare the exchange durable (yes/no).")
    add_option("hooks-amqp-durable-queues", default=False, type=bool, help="Declare the queues durable (yes/no).")
    add_option("hooks-amqp-auto-delete", default=False, type=bool, help="Declare exchange and queues auto-delete (yes/no).")
    add_option("hooks-amqp-celery", default=False, type=bool, help="Publish each event as a Celery task named <queues-prefix>.<event> (yes/no).")
    add_option("hooks-amqp-timeout", default=10.0, type=float, help="Seconds to connect and get RabbitMQ's confirmation of one message.")


@hookimpl
def tus_register_notifiers(register):
    def factory(ctx: PluginContext):
        return AmqpNotifier(ctx) if ctx.config.get("hooks_amqp_url") else None

    register("amqp", factory)
