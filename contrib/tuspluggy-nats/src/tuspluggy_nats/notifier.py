"""NatsNotifier: each upload event is a NATS message on ``{prefix}.{event}``.

nats-py speaks asyncio and the server speaks trio: every NATS call runs on the loop of
tuspluggy's asyncio portal (``ctx.aio``), and the connection is touched only there. The
connection is opened at the first event and then kept; nats-py reconnects by itself after
an outage, and a failed first connect is retried at the next event (post-* events wait in
tuspluggy's outbox meanwhile, so a NATS server that is down at start-up delays nothing else).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import trio

from tuspluggy.errors import TusError
from tuspluggy.interfaces import HookCall, HookReply, PluginContext

log = logging.getLogger("tuspluggy.hooks.nats")

# Rustus's rule: in request/reply mode a reply must be empty or OK to accept.
ACCEPT_WORDS = {"", "ok"}
MAX_REPLY_IN_MESSAGE = 200


class NatsNotifier:
    name = "nats"

    def __init__(self, ctx: PluginContext) -> None:
        c = ctx.config
        if ctx.aio is None:
            raise RuntimeError("the NATS notifier needs the asyncio portal (ctx.aio)")
        self.aio = ctx.aio
        self.urls: list[str] = list(c.hooks_nats_urls)
        self.prefix: str = c.get("hooks_nats_prefix") or "tuspluggy"
        self.subject: str = c.get("hooks_nats_subject") or ""
        self.wait_for_replies: bool = bool(c.get("hooks_nats_wait_for_replies"))
        self.user: str = c.get("hooks_nats_user") or ""
        self.password: str = c.get("hooks_nats_password") or ""
        self.token: str = c.get("hooks_nats_token") or ""
        self.timeout: float = float(c.get("hooks_nats_timeout") or 10.0)
        # Only a responder's reply can say no, so only request/reply mode can reject.
        self.can_reject = self.wait_for_replies
        # Touched only on the asyncio thread.
        self._client = None
        self._connecting = None

    def subject_for(self, event: str) -> str:
        return self.subject or f"{self.prefix}.{event}"

    # -- trio side ---------------------------------------------------------------------

    async def notify(self, call: HookCall) -> HookReply | None:
        try:
            with trio.fail_after(self.timeout + 1):
                reply = await self.aio.run(lambda: self._send(call))
        except trio.TooSlowError:
            raise TimeoutError(f"NATS did not answer within {self.timeout:g}s") from None
        if reply is None:
            return None
        return judge_reply(call.event, reply)

    async def ready(self) -> None:
        """Raise if NATS cannot be reached (used by readiness checks)."""
        with trio.fail_after(self.timeout + 1):
            await self.aio.run(self._connect)

    async def aclose(self) -> None:
        await self.aio.run(self._close)

    # -- asyncio side -------------------------------------------------------------------

    async def _connect(self):
        import asyncio

        import nats

        if self._client is not None and not self._client.is_closed:
            return self._client
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:  # concurrent first events share one connect
            if self._client is not None and not self._client.is_closed:
                return self._client
            options: dict[str, Any] = {
                "servers": self.urls,
                "connect_timeout": max(1, int(self.timeout)),
                # nats-py retries a failed *first* connect forever unless this is positive;
                # two tries per server, then an error the outbox retries later.
                "max_reconnect_attempts": 1,
                "reconnect_time_wait": 1,
                "name": "tuspluggy",
                "error_cb": _log_error,
            }
            if self.user:
                options.update(user=self.user, password=self.password)
            if self.token:
                options["token"] = self.token
            client = await nats.connect(**options)
            # Once connected, ride out outages: nats-py reads this option at each reconnect.
            client.options["max_reconnect_attempts"] = -1
            client.options["reconnect_time_wait"] = 2
            self._client = client
            log.info("connected to NATS at %s", ", ".join(self.urls))
            return client

    async def _send(self, call: HookCall) -> bytes | None:
        client = await self._connect()
        subject = self.subject_for(call.event)
        payload = call.body.encode()
        headers = message_headers(call)
        if self.wait_for_replies:
            import nats.errors

            try:
                message = await client.request(subject, payload, timeout=self.timeout, headers=headers)
            except nats.errors.NoRespondersError:
                raise RuntimeError(f"no NATS responder listens on {subject!r}") from None
            return message.data
        await client.publish(subject, payload, headers=headers)
        # A round trip, so the event counts as delivered only once the server has it.
        await client.flush(timeout=self.timeout)
        return None

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            try:
                await client.drain()
            except Exception:
                pass


async def _log_error(error: Exception) -> None:
    log.warning("NATS: %s", error)


def message_headers(call: HookCall) -> dict[str, str]:
    """The client's request headers (as Rustus forwards them), then the event's own.

    NATS headers are ASCII lines: a value that is not (Rustus panics on it) is left out.
    """
    headers: dict[str, str] = {}
    for name, values in call.request.headers.items():
        value = ", ".join(values)
        if _header_name_safe(name) and _header_value_safe(value):
            headers[name] = value
    headers.update({"Hook-Name": call.event, "Event-Id": call.event_id, "Upload-Id": call.upload_id,
                    "Content-Type": "application/json"})
    return headers


def _header_name_safe(name: str) -> bool:
    return bool(name) and name.isascii() and name.isprintable() and not any(c in name for c in ": ")


def _header_value_safe(value: str) -> bool:
    return value.isascii() and value.isprintable()


def judge_reply(event: str, data: bytes) -> HookReply | None:
    """What a responder's reply means for `event`.

    - empty or ``OK``: go on;
    - a JSON object with ``"status"`` 400-599: reject with that status and ``"message"``;
    - another JSON object, for pre-create: go on with that change of the new upload
      (``{"id": ..., "metadata": {...}}``, as the HTTP hooks answer);
    - anything else rejects a pre-* event with 403 and the reply as the message.
    A post-* event cannot be rejected: its reply is only logged.
    """
    text = data.decode("utf-8", "replace").strip()
    if text.lower() in ACCEPT_WORDS:
        return None
    parsed: Any = None
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    if not event.startswith("pre-"):
        log.warning("NATS responder answered %s with %r; post-* events cannot be rejected", event,
                    text[:MAX_REPLY_IN_MESSAGE])
        return None
    if isinstance(parsed, dict):
        status = parsed.get("status")
        if isinstance(status, int) and 400 <= status <= 599:
            message = str(parsed.get("message") or f"{event} rejected by the NATS hook")
            raise TusError(status, message[:MAX_REPLY_IN_MESSAGE])
        if event == "pre-create":
            return HookReply(data=parsed)
    raise TusError(403, f"{event} rejected by the NATS hook: {text[:MAX_REPLY_IN_MESSAGE]}")
