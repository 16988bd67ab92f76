"""HTTP hooks: POST each event's JSON to every URL of ``--hooks-http-urls``.

Each request carries ``Hook-Name: <event>``, ``Idempotency-Key: <event id>`` (the same on
every retry, so a receiver can de-duplicate) and the client headers named by
``--hooks-http-proxy-headers``. For a blocking event, a non-2xx answer rejects the tus
request with that answer's status, body and Content-Type unchanged; a 2xx
``application/json`` answer to pre-create may change the new upload (docs/hooks.md).
Each URL is its own notifier (``http:<url>``), so a receiver that is down delays only its
own deliveries and one that already has an event is not sent it again.
"""

from __future__ import annotations

import importlib
import json
import logging
from typing import TYPE_CHECKING

from tuspluggy import hookimpl
from tuspluggy.errors import TusError
from tuspluggy.hook_formats import BLOCKING_EVENTS
from tuspluggy.interfaces import HookCall, HookReply, PluginContext

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("tuspluggy.hooks.http")


def _httpx():
    # Imported when an HTTP hook is configured, not when the plugin is collected: a server
    # without HTTP hooks does not carry httpx's ~2 MB (peak RSS is a benchmark figure).
    return importlib.import_module("httpx")


class HttpHookNotifier:
    can_reject = True

    def __init__(self, url: str, *, proxy_headers: list[str], timeout: float, delivery_timeout: float) -> None:
        self.url = url
        self.name = f"http:{url}"
        self.proxy_headers = [h.strip().lower() for h in proxy_headers if h.strip()]
        self.timeout = timeout  # blocking events: the client is waiting
        self.delivery_timeout = delivery_timeout  # post-* events: only the outbox is waiting
        self._client = _httpx().AsyncClient(follow_redirects=False)

    async def notify(self, call: HookCall) -> HookReply | None:
        headers = {"Content-Type": "application/json", "Hook-Name": call.event, "Idempotency-Key": call.event_id}
        for name in self.proxy_headers:
            values = call.request.headers.get(name)
            if values:
                headers[name] = ", ".join(values)
        blocking = call.event in BLOCKING_EVENTS
        timeout = self.timeout if blocking else self.delivery_timeout
        httpx = _httpx()
        try:
            response = await self._client.post(self.url, content=call.body.encode(), headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            raise TimeoutError(f"{self.url} did not answer within {timeout:g}s") from None
        except httpx.HTTPError as error:
            raise ConnectionError(f"{self.url} could not be reached: {error or type(error).__name__}") from None
        if not response.is_success:
            # The receiver's own answer, passed on to the client unchanged.
            raise TusError(
                response.status_code if 300 <= response.status_code <= 599 else 502,
                f"{call.event} hook {self.url} answered {response.status_code}",
                content_type=response.headers.get("content-type", "text/plain; charset=utf-8"),
                body=response.content,
            )
        if not blocking:
            return None
        return _reply(response, self.url)

    async def aclose(self) -> None:
        await self._client.aclose()


def _reply(response: httpx.Response, url: str) -> HookReply | None:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" or not response.content.strip():
        return None
    try:
        return HookReply(data=json.loads(response.content))
    except ValueError:
        raise ValueError(f"{url} answered with Content-Type application/json but the body is not JSON") from None


@hookimpl
def tus_add_options(add_option):
    add_option("hooks-http-urls", default=[], type=list, help="URLs that receive each event as a JSON POST, comma-separated.")
    add_option("hooks-http-proxy-headers", default=[], type=list,
               help="Client request headers copied into each hook request, comma-separated (e.g. Authorization).")
    add_option("http-hook-timeout", default=2.0, type=float,
               help="Seconds a receiver may take to answer a blocking (pre-*) event before the request gets 504.")
    add_option("hooks-http-delivery-timeout", default=30.0, type=float,
               help="Seconds a receiver may take to answer a post-* event before the attempt counts as failed.")


@hookimpl
def tus_register_notifiers(register):
    def factory(ctx: PluginContext):
        urls = ctx.config.get("hooks_http_urls") or []
        return [
            HttpHookNotifier(
                url,
                proxy_headers=ctx.config.get("hooks_http_proxy_headers") or [],
                timeout=ctx.config.get("http_hook_timeout", 2.0),
                delivery_timeout=ctx.config.get("hooks_http_delivery_timeout", 30.0),
            )
            for url in urls
        ] or None

    register("http", factory)
