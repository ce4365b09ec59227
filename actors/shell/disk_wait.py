"""A starting session waits for its store's file system to take writes (full, over quota, read-only).

A session whose store cannot be written must not trade: it would send what
it cannot keep. A failed write stops the program (``StoreWriteError``);
supervisord starts it again, and here it waits, in the process, until the
file system takes writes again. Waiting rather than exiting matters twice:
supervisord gives up on a program that keeps failing at start (FATAL after
a few tries: an operator would have to start it by hand once the disk has
room), and the session goes on by itself once space is freed, with nothing
lost (the store's recovery cuts a torn tail, the sender's bus outbox still
holds every forward not acknowledged).

Two things make it wait: an open that fails for the file system's state
(``actors.store.file_system_trouble``: full, over quota, read-only, I/O
error), and a file system with less than ``MIN_FREE_BYTES`` left, which
would let the store open and the first Logon fail, over and over. A
configuration error (a path that is a file, no permission) is not waited
for: it stops the start with its message at once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from actors.shell import clock
from actors.store import StoreError, file_system_trouble

log = logging.getLogger("fixmesh.store")

#: Less free space than this on the store's file system and a session does not start.
MIN_FREE_BYTES = 1 << 20
#: How often a waiting session looks again.
RETRY_S = 5.0
#: How often the log says again that it waits.
REPEAT_S = 60.0

T = TypeVar("T")


def nearest_existing(directory: Path) -> Path:
    """``directory`` itself, or its nearest parent that exists (a store's folder is made at its first open)."""
    path = directory.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system of ``directory`` (or of its nearest parent)."""
    stats = os.statvfs(nearest_existing(directory))
    return stats.f_bavail * stats.f_frsize


def open_when_writable(
    open_: Callable[[], T],
    directory: Path,
    name: str,
    *,
    min_free: int = MIN_FREE_BYTES,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = clock.monotonic_s,
) -> T:
    """``open_()`` once ``directory``'s file system has room and the open does not fail for its state.

    Logs an error when it starts waiting and every ``REPEAT_S`` after, and a line when it goes on.
    """
    since: float | None = None
    next_log = 0.0
    while True:
        free = free_bytes(directory)
        if free < min_free:
            problem = (f"the file system of {directory} has {free:,} bytes free, at least {min_free:,} are needed "
                       f"to start: free space on it")
        else:
            try:
                opened = open_()
            except StoreError as exc:
                if not file_system_trouble(exc):
                    raise
                problem = str(exc)
            else:
                if since is not None:
                    log.warning("%s: the store's file system takes writes again after %.0f s of waiting; starting",
                                name, monotonic() - since)
                return opened
        now = monotonic()
        if since is None:
            since = now
        if now >= next_log:
            log.error("%s: not starting: %s (looking again every %.0f s; nothing is sent meanwhile)",
                      name, problem, RETRY_S)
            next_log = now + REPEAT_S
        sleep(RETRY_S)
