"""File and directory hooks: run an executable for each event.

- ``--hooks-file PATH``: ``PATH <hook-name> <json>``.
- ``--hooks-dir DIR``: ``DIR/<hook-name> <json>``; a missing file for an enabled event is
  an error (logged at start-up; a failed delivery, retried, when the event happens).

Exit status 0 accepts. For a blocking event (pre-*), another status rejects the request
with 400 and the hook's stderr (trimmed) as the message. A JSON object printed on stdout
by a pre-create hook may change the new upload's id and metadata (docs/hooks.md).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess

import trio

from tuspluggy import hookimpl
from tuspluggy.errors import TusError
from tuspluggy.hook_formats import BLOCKING_EVENTS
from tuspluggy.interfaces import HookCall, HookReply, PluginContext

log = logging.getLogger("tuspluggy.hooks.file")

MESSAGE_LIMIT = 500  # characters of stderr shown to the client


class ScriptHookNotifier:
    """Runs one executable per event; `command(call)` says which and with what arguments."""

    can_reject = True

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout

    def command(self, call: HookCall) -> list[str]:
        raise NotImplementedError

    async def notify(self, call: HookCall) -> HookReply | None:
        command = self.command(call)
        if not os.path.isfile(command[0]):
            raise FileNotFoundError(f"hook file {command[0]} not found")
        try:
            with trio.fail_after(self.timeout):
                done = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False,
                                              stdin=subprocess.DEVNULL)
        except trio.TooSlowError:
            raise TimeoutError(f"{command[0]} did not exit within {self.timeout:g}s") from None
        stderr = done.stderr.decode("utf-8", "replace").strip()
        if done.returncode != 0:
            if stderr:
                log.info("hook %s %s exited with %d: %s", self.name, call.event, done.returncode, stderr)
            message = stderr[:MESSAGE_LIMIT] or f"{call.event} hook {os.path.basename(command[0])} exited with status {done.returncode}"
            raise TusError(400, message)
        return _reply(done.stdout, call.event)


def _reply(stdout: bytes, event: str) -> HookReply | None:
    """stdout that is a JSON object (or null) is an answer; anything else is just output."""
    text = stdout.decode("utf-8", "replace").strip()
    if not text or event not in BLOCKING_EVENTS:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        log.debug("hook %s printed non-JSON output; ignored", event)
        return None
    return HookReply(data=data)


class FileHookNotifier(ScriptHookNotifier):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("file", timeout)
        self.path = os.path.abspath(path)

    def command(self, call: HookCall) -> list[str]:
        return [self.path, call.event, call.body]


class DirHookNotifier(ScriptHookNotifier):
    def __init__(self, directory: str, timeout: float) -> None:
        super().__init__("dir", timeout)
        self.directory = os.path.abspath(directory)

    def command(self, call: HookCall) -> list[str]:
        return [os.path.join(self.directory, call.event), call.body]

    def missing(self, events) -> list[str]:
        return [e for e in events if not os.access(os.path.join(self.directory, e), os.X_OK)]


@hookimpl
def tus_add_options(add_option):
    add_option("hooks-file", default="", help="Executable run for every event as `FILE <hook-name> <json>`.")
    add_option("hooks-dir", default="", help="Directory of executables named after events, run as `DIR/<hook-name> <json>`.")
    add_option("hooks-file-timeout", default=30.0, type=float,
               help="Seconds a file or dir hook may run before it counts as failed (a pre-* event then gets 504).")


@hookimpl
def tus_register_notifiers(register):
    def file_factory(ctx: PluginContext):
        path = ctx.config.get("hooks_file")
        return FileHookNotifier(path, ctx.config.get("hooks_file_timeout", 30.0)) if path else None

    def dir_factory(ctx: PluginContext):
        directory = ctx.config.get("hooks_dir")
        if not directory:
            return None
        notifier = DirHookNotifier(directory, ctx.config.get("hooks_file_timeout", 30.0))
        missing = notifier.missing(ctx.config.get("hooks") or [])
        if missing:
            log.error("--hooks-dir %s has no executable for enabled event(s): %s; those events will fail",
                      notifier.directory, ", ".join(missing))
        return notifier

    register("file", file_factory)
    register("dir", dir_factory)
