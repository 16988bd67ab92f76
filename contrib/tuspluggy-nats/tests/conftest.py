"""A NATS client on its own asyncio thread, for tests that watch or answer hook messages."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable

import pytest

from tuspluggy.testing import require_service

NATS_URL = "nats://127.0.0.1:4222"


class NatsPeer:
    """Records every message on `subject` and, if `answer` is given, replies with
    ``answer(subject, payload_dict, headers) -> bytes``."""

    def __init__(self, subject: str, answer: Callable[[str, dict, dict], bytes] | None = None) -> None:
        self.subject = subject
        self.answer = answer
        self.messages: list[tuple[str, dict, dict]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._client = None

    def _run(self, coro, timeout: float = 15):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> NatsPeer:
        import nats

        self._thread.start()

        async def start():
            self._client = await nats.connect(NATS_URL)

            async def on_message(message):
                payload = json.loads(message.data)
                headers = dict(message.headers or {})
                self.messages.append((message.subject, payload, headers))
                if self.answer is not None and message.reply:
                    await message.respond(self.answer(message.subject, payload, headers))

            await self._client.subscribe(self.subject, cb=on_message)
            await self._client.flush()

        self._run(start())
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._run(self._client.drain())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def events(self) -> list[str]:
        return [subject.rsplit(".", 1)[1] for subject, _, _ in self.messages]


@pytest.fixture
def nats_prefix() -> str:
    require_service("nats")
    # A subject tree of its own, so tests running at the same time never see each other's events.
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def data_dir(tmp_path) -> str:
    path = tmp_path / "data"
    path.mkdir()
    return str(path)
