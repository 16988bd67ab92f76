"""The one bridge from trio to asyncio-only libraries (aiormq, redis.asyncio, asyncpg...).

An asyncio loop runs in its own thread. trio code sends coroutines to it and waits on a
trio.Event set through the trio token; cancelling the trio side cancels the asyncio
future. Only public APIs are used and nothing is patched process-wide, and a slow
asyncio library stalls its own thread, not the one streaming uploads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import trio

T = TypeVar("T")


class AsyncioPortal:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._background: set[Future] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the asyncio portal is not running")
        return self._loop

    def start(self) -> None:
        if self._thread is not None:
            return

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._started.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="tuspluggy-asyncio", daemon=True)
        self._thread.start()
        self._started.wait()

    async def run(self, make: Callable[[], Coroutine[Any, Any, T]] | Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the asyncio loop and return its result to trio.

        Pass a zero-argument function returning the coroutine (preferred: the coroutine is
        then created on the asyncio thread) or a coroutine object.
        """
        coro = make() if callable(make) else make
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self.loop)
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()
        future.add_done_callback(lambda _: token.run_sync_soon(done.set, idempotent=True))
        try:
            await done.wait()
        except BaseException:
            future.cancel()  # trio cancellation reaches the asyncio side
            raise
        return future.result()

    def start_background(self, coro: Coroutine[Any, Any, Any]) -> Future:
        """A long-lived asyncio task (a reconnect loop, a consumer), cancelled at close()."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        self._background.add(future)
        future.add_done_callback(self._background.discard)
        return future

    async def close(self, cleanups: list[Callable[[], Awaitable[Any]]] = ()) -> None:
        """Run `cleanups` on the loop (closing connections), stop it and join the thread."""
        if self._thread is None:
            return
        for cleanup in cleanups:
            try:
                with trio.move_on_after(5):
                    await self.run(cleanup)
            except Exception:
                pass
        for future in list(self._background):
            future.cancel()
        loop = self.loop
        loop.call_soon_threadsafe(loop.stop)
        await trio.to_thread.run_sync(self._thread.join, 5)
        self._thread = None
        self._loop = None


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
