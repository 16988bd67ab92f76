"""Empty files made ahead of need, so that a request creates a file by renaming one.

Why: creating a file (allocating an inode) cost 15-140 µs on the project's machines, and a
small upload creates three (its data file and two record versions); with these spares the
request pays for a rename or a link (~5 µs) and a thread on the other core pays for the
creation. Record writes and new data files of the file plugins use them.

Spares are named ``.spare-{pid}-{n}`` in the directory they serve (dot files: no store
lists them). A clean exit removes them; after a crash the next process in the directory
removes those whose process is gone. Taking a spare can fail (another host sharing the
directory removed it): callers then create the file the ordinary way.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import os
import re
import threading

log = logging.getLogger("tuspluggy.spare_files")

PREFIX = ".spare-"
_NAME = re.compile(r"^\.spare-(\d+)-\d+$")
_sequence = itertools.count()


class SpareFiles:
    def __init__(self, directory: str, *, mode: int = 0o644, keep: int = 64) -> None:
        self.directory = directory
        self.mode = mode
        self.keep = keep
        self._ready: collections.deque[str] = collections.deque()
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._making = threading.Lock()  # a file made and listed, or none, when discarding
        self._closed = False

    def take(self) -> str | None:
        """The path of an empty file of our own, or None if none is ready yet."""
        if self._pid != os.getpid():  # first use, or a forked child: its own spares
            self._start()
        try:
            path = self._ready.popleft()
        except IndexError:
            path = None
        if len(self._ready) < self.keep // 2:
            self._wanted.set()
        return path

    def _start(self) -> None:
        self._pid = os.getpid()
        self._ready = collections.deque()
        self._wanted.set()
        self._thread = threading.Thread(target=self._make, name=f"spare files {self.directory}", daemon=True)
        self._thread.start()
        atexit.register(self.discard)

    def _make(self) -> None:
        pid = self._pid
        remove_orphans(self.directory)  # here, not on the request path: the listing may be long
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                while len(self._ready) < self.keep and pid == os.getpid():
                    with self._making:
                        if self._closed:
                            return
                        path = os.path.join(self.directory, f"{PREFIX}{pid}-{next(_sequence)}")
                        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, self.mode))
                        self._ready.append(path)
            except OSError as error:  # full disk, directory gone: requests create their own
                log.debug("no spare files in %s: %s", self.directory, error)

    def discard(self) -> None:
        """Remove the spares not taken, and make no more (at exit)."""
        with self._making:
            self._closed = True
            while self._ready:
                try:
                    os.unlink(self._ready.popleft())
                except (OSError, IndexError):
                    pass
        self._wanted.set()  # let the maker see it is closed


def remove_orphans(directory: str) -> None:
    """Remove spares left by processes of this host that are gone (a crash, SIGKILL)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = _NAME.match(name)
        if match and not _alive(int(match.group(1))):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
