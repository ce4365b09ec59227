"""A small selector-based event loop: sockets, one deadline per source.

The FIX actors need exactly three things from a loop: readiness of a few
sockets, a wake-up at the earliest session deadline, and a way to stop. A
selector does that with no threads and no hidden scheduling, which keeps the
order of work (read, process, persist, write) explicit.
"""

from __future__ import annotations

import contextlib
import selectors
import time
from collections.abc import Callable
from typing import Protocol


class TimerSource(Protocol):
    def next_deadline(self) -> float | None: ...

    def on_timer(self) -> None: ...


class Loop:
    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._timers: set[TimerSource] = set()
        self._stopping = False

    def add_reader(self, sock: object, callback: Callable[[], None]) -> None:
        self._update(sock, read=callback)

    def remove_reader(self, sock: object) -> None:
        self._update(sock, read=None)

    def add_writer(self, sock: object, callback: Callable[[], None]) -> None:
        self._update(sock, write=callback)

    def remove_writer(self, sock: object) -> None:
        self._update(sock, write=None)

    def forget(self, sock: object) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(sock)  # type: ignore[arg-type]

    _KEEP = object()

    def _update(self, sock: object, read: object = _KEEP, write: object = _KEEP) -> None:
        try:
            key = self._sel.get_key(sock)  # type: ignore[arg-type]
            cur_read, cur_write = key.data
        except (KeyError, ValueError):
            key = None
            cur_read = cur_write = None
        new_read = cur_read if read is Loop._KEEP else read
        new_write = cur_write if write is Loop._KEEP else write
        events = (selectors.EVENT_READ if new_read else 0) | (selectors.EVENT_WRITE if new_write else 0)
        if key is None:
            if events:
                self._sel.register(sock, events, (new_read, new_write))  # type: ignore[arg-type]
        elif not events:
            self._sel.unregister(sock)  # type: ignore[arg-type]
        else:
            self._sel.modify(sock, events, (new_read, new_write))  # type: ignore[arg-type]

    def add_timer_source(self, source: TimerSource) -> None:
        self._timers.add(source)

    def remove_timer_source(self, source: TimerSource) -> None:
        self._timers.discard(source)

    def stop(self) -> None:
        self._stopping = True

    def run(self, max_wait_s: float = 1.0) -> None:
        while not self._stopping:
            self.run_once(max_wait_s)

    def run_once(self, max_wait_s: float = 1.0) -> None:
        now = time.monotonic()
        timeout = max_wait_s
        for source in list(self._timers):
            deadline = source.next_deadline()
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - now))
        for key, mask in self._sel.select(timeout):
            read_cb, write_cb = key.data
            if mask & selectors.EVENT_READ and read_cb:
                read_cb()
            if mask & selectors.EVENT_WRITE and write_cb:
                try:
                    current = self._sel.get_key(key.fileobj)
                except (KeyError, ValueError):
                    continue
                if current.data[1]:
                    current.data[1]()
        now = time.monotonic()
        for source in list(self._timers):
            deadline = source.next_deadline()
            if deadline is not None and deadline <= now:
                source.on_timer()

    def close(self) -> None:
        self._sel.close()
