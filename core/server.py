"""Assembling a server from the configuration and the plugins, and running it.

`tuspluggy serve` owns the trio task tree: the asyncio portal and the background tasks
(event delivery, expired-upload cleanup) start first, then hypercorn; on SIGINT/SIGTERM
the HTTP server drains first, then the background tasks, then the portal.
"""

from __future__ import annotations

import inspect
import logging
import multiprocessing
import os
import signal
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from .aio import AsyncioPortal
from .app import create_app
from .config import Config
from .events import build_dispatcher
from .interfaces import InfoStore, PluginContext, Storage
from .metrics import Metrics
from .options import core_options
from .plugin_manager import PluginManager, Registry, call_startup, collect, make_plugin_manager, select
from .protocol.rules import TusSettings
from .requestlog import RequestObserver
from .sentry import setup_sentry
from .service import ServiceOptions, UploadService

log = logging.getLogger("tuspluggy.server")


@dataclass
class Server:
    """A built server: the pieces a request reaches, and what to start and stop."""

    config: Config
    service: UploadService
    app: Any
    ctx: PluginContext
    notifiers: list[Any] = field(default_factory=list)
    background: list[Any] = field(default_factory=list)  # async callables run until shutdown
    closers: list[Any] = field(default_factory=list)


async def _maybe_await(value):
    if inspect.isawaitable(value):
        return await value
    return value


def load_plugins(disabled: list[str] | None = None) -> tuple[PluginManager, Registry]:
    pm = make_plugin_manager(disabled=disabled or [])
    return pm, collect(pm, core_options())


async def build_server(config: Config, pm: PluginManager, registry: Registry, aio: AsyncioPortal | None) -> Server:
    ctx = PluginContext(config=config, aio=aio)
    # Shared with plugins (the event dispatcher counts deliveries into it).
    metrics = ctx.extras["metrics"] = Metrics()
    storage: Storage = select(registry.storages, "storage", config.storage)(ctx)
    info_store: InfoStore = select(registry.info_stores, "info storage", config.info_storage)(ctx)
    closers = []
    for component in (storage, info_store):
        if hasattr(component, "open"):
            await _maybe_await(component.open())
        if hasattr(component, "close"):
            closers.append(component.close)
    notifiers = []
    for name, factory in registry.notifiers.items():
        notifier = factory(ctx)
        if notifier is not None:
            # A factory may return several notifiers (one per URL of --hooks-http-urls).
            notifiers.extend(notifier if isinstance(notifier, (list, tuple)) else [notifier])
            log.info("notifier %s enabled", name)
    settings = TusSettings.build(
        set(config.tus_extensions),
        set(storage.capabilities) | {"creation", "creation-with-upload", "checksum", "expiration", "getting"},
        max_file_size=config.max_file_size,
        max_body_size=config.max_body_size,
        allow_empty=config.allow_empty,
        expiration=config.expiration,
    )
    hooks, background, hook_closers = await build_dispatcher(config, notifiers, ctx)
    closers.extend(hook_closers)
    service = UploadService(
        storage=storage,
        info_store=info_store,
        settings=settings,
        hooks=hooks,
        options=ServiceOptions(
            lock_timeout=config.lock_timeout,
            read_timeout=config.read_timeout,
            remove_parts=config.remove_parts,
        ),
        base_path="/" + config.url.strip("/"),
        metrics=metrics,
    )
    app = create_app(
        service,
        base_path=config.url,
        behind_proxy=config.behind_proxy,
        cors_origins=config.cors,
        proxy_headers=config.get("hooks_http_proxy_headers") or [],
    )
    if config.get("ui"):
        from .ui import install_ui

        install_ui(app, service, token=config.get("ui_token") or "", behind_proxy=config.behind_proxy, host=config.host,
                   outbox=ctx.extras.get("outbox"))
    app.extensions["tuspluggy.notifiers"] = notifiers  # for /health
    call_startup(pm, ctx)  # names a plugin that raises, instead of a bare traceback
    return Server(config, service, app, ctx, notifiers, background, closers)


async def cleanup_loop(service: UploadService, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        try:
            await service.remove_expired()
        except Exception:
            log.exception("expired-upload cleanup failed; trying again in %ss", interval)


def hypercorn_config(config: Config) -> HypercornConfig:
    hc = HypercornConfig()
    hc.bind = [f"{config.host}:{config.port}"]
    hc.read_timeout = int(config.read_timeout) if config.read_timeout else None
    hc.graceful_timeout = 10
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    # A long Upload-Metadata must fit in the request head.
    hc.h11_max_incomplete_size = 64 * 1024
    # Body chunks hypercorn queues for the app per request (default 10, up to 1 MiB each).
    # The tus endpoint reads PATCH bodies straight from this queue (body.AsgiBody), so it
    # is the read-ahead of an upload: two chunks keep the socket busy while one is
    # written, more only add memory.
    hc.max_app_queue_size = 2
    return hc


async def shutdown_signal() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            log.info("shutting down: finishing requests in flight")
            return


@asynccontextmanager
async def running(config: Config, pm: PluginManager, registry: Registry):
    """A built server with its portal and background tasks running (but no HTTP)."""
    portal = AsyncioPortal()
    portal.start()
    try:
        server = await build_server(config, pm, registry, portal)
        try:
            async with trio.open_nursery() as nursery:
                for task in server.background:
                    nursery.start_soon(task)
                if server.service.settings.has("expiration") and config.cleanup_interval > 0:
                    nursery.start_soon(cleanup_loop, server.service, config.cleanup_interval)
                yield server
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                for close in reversed(server.closers):
                    try:
                        with trio.move_on_after(10):
                            await _maybe_await(close())
                    except Exception:
                        log.exception("error while closing")
    finally:
        with trio.CancelScope(shield=True):
            await portal.close()


def _telling_streams(trigger, app):
    """`trigger`, which also sets app.extensions["tuspluggy.closing"] when it fires, so that
    endless responses (the dashboard's event stream) end instead of holding up the drain
    until hypercorn's graceful timeout."""
    if trigger is None:
        return None
    closing = app.extensions.setdefault("tuspluggy.closing", trio.Event())

    async def wait() -> None:
        await trigger()
        closing.set()

    return wait


async def serve(config: Config, pm: PluginManager, registry: Registry, *, sockets=None, announce: bool = True,
                shutdown_trigger=shutdown_signal, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve until `shutdown_trigger` returns (SIGINT/SIGTERM by default) or the task is cancelled."""
    async with running(config, pm, registry) as server:
        hc = hypercorn_config(config)
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(worker_serve, wrap_app(RequestObserver(server.app, server.service.metrics), hc.wsgi_max_body_size, None),
                        hc, sockets=sockets,
                        shutdown_trigger=_telling_streams(shutdown_trigger, server.app))
            )
            if announce:
                for bind in binds:
                    print(f"tuspluggy listening on {bind}{'/' + config.url.strip('/')}/", flush=True)
            task_status.started(binds)


def _worker_main(values: dict, disabled: list[str], sockets, log_level: str) -> None:
    from .logs import setup_logging
    from . import tuning

    setup_logging(log_level, values.get("log_format", "text"))
    tuning.apply()
    pm, registry = load_plugins(disabled)
    config = Config(values, registry.options)
    setup_sentry(config)
    trio.run(partial(serve, config, pm, registry, sockets=sockets, announce=False))


def serve_forever(config: Config, pm: PluginManager, registry: Registry) -> None:
    from . import tuning

    tuning.apply()
    if config.workers <= 1:
        setup_sentry(config)
        trio.run(serve, config, pm, registry)
        return
    hc = hypercorn_config(config)
    sockets = hc.create_sockets()
    for sock in sockets.insecure_sockets:
        sock.listen(hc.backlog)
        host, port = sock.getsockname()[:2]
        print(f"tuspluggy listening on http://{host}:{port}/{config.url.strip('/')}/ with {config.workers} workers", flush=True)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_worker_main,
            args=(config.as_dict(), list(config.disable_plugins), sockets, config.log_level),
            daemon=False,
        )
        for _ in range(config.workers)
    ]
    for process in processes:
        process.start()

    def forward(signum, _frame):
        for process in processes:
            if process.pid:
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for process in processes:
        process.join()
    sys.exit(max((p.exitcode or 0) for p in processes))
