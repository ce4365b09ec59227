"""The event loop of every fixmesh process: one ``zmq.Poller``, one thread.

A FIX actor waits on a few TCP sockets (its FIX connection, a listener) and
a few ZeroMQ sockets (the bus) at once; ``zmq.Poller`` polls both kinds in
one call. The wait is bounded by the earliest deadline of the registered
timer sources (sessions, connectors, bus heartbeats), so the order of work
(read, process, persist, write) stays explicit and nothing sleeps. The one
call that would block it, a host name's lookup, runs on a thread that only
hands its answer back through a socket the loop watches (``name_lookup``).
"""

from __future__ import annotations

import errno
import math
from collections.abc import Callable
from typing import Any, Protocol

import zmq

from actors.shell.clock import monotonic_s

# Plain ints: ``int & zmq.POLLIN`` goes through the enum machinery and builds a flag object, twice in
# every ready socket of every turn.
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)


class TimerSource(Protocol):
    def next_deadline(self) -> float | None: ...

    def on_timer(self) -> None: ...


Callback = Callable[[], None]


class Loop:
    def __init__(self) -> None:
        self._poller = zmq.Poller()
        self._handlers: dict[Any, tuple[Callback | None, Callback | None]] = {}
        self._keys: dict[Any, Any] = {}
        self._timers: set[TimerSource] = set()
        self._soon: list[Callback] = []
        self._turn_end: list[Callback] = []
        self._stopping = False

    # ---------------------------------------------------------- registration

    def add_reader(self, sock: Any, callback: Callback) -> None:
        self._update(sock, read=callback)

    def add_writer(self, sock: Any, callback: Callback) -> None:
        self._update(sock, write=callback)

    def remove_writer(self, sock: Any) -> None:
        self._update(sock, write=None)

    def forget(self, sock: Any) -> None:
        """Stop watching ``sock`` (before it is closed)."""
        key = self._keys.pop(sock, None)
        if key is not None:
            del self._handlers[key]
            self._poller.unregister(key)

    _KEEP: Any = object()

    def _update(self, sock: Any, read: Any = _KEEP, write: Any = _KEEP) -> None:
        # zmq.Poller reports ZeroMQ sockets as themselves and anything else
        # by file descriptor, so plain sockets are registered by their fd.
        key = self._keys.get(sock)
        if key is None:
            key = sock if isinstance(sock, zmq.Socket) else sock.fileno()
        cur_read, cur_write = self._handlers.get(key, (None, None))
        new_read = cur_read if read is Loop._KEEP else read
        new_write = cur_write if write is Loop._KEEP else write
        flags = (zmq.POLLIN if new_read else 0) | (zmq.POLLOUT if new_write else 0)
        if flags:
            self._keys[sock] = key
            self._handlers[key] = (new_read, new_write)
            self._poller.register(key, flags)
        else:
            self.forget(sock)

    def call_soon(self, callback: Callback) -> None:
        """Run ``callback`` at the end of this turn of the loop (outside the caller's stack)."""
        self._soon.append(callback)

    def at_turn_end(self, callback: Callback) -> None:
        """Run ``callback`` at the end of every turn, after the ``call_soon`` callbacks: what a turn's work
        gathered (the bus's delivers) leaves once, before the loop waits again."""
        self._turn_end.append(callback)

    def add_timer_source(self, source: TimerSource) -> None:
        self._timers.add(source)

    def remove_timer_source(self, source: TimerSource) -> None:
        self._timers.discard(source)

    # --------------------------------------------------------------- running

    def stop(self) -> None:
        self._stopping = True

    def run(self, max_wait_s: float = 1.0) -> None:
        while not self._stopping:
            self.run_once(max_wait_s)

    def run_once(self, max_wait_s: float = 1.0) -> None:
        timeout = 0.0 if self._soon else max_wait_s
        now = monotonic_s()
        for source in list(self._timers):
            deadline = source.next_deadline()
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - now))
        try:
            events = self._poller.poll(math.ceil(timeout * 1000.0))
        except zmq.ZMQError as exc:
            if exc.errno != errno.EINTR:
                raise
            events = []
        for sock, mask in events:
            handlers = self._handlers.get(sock)
            if handlers is None:
                continue
            if mask & _POLLIN and handlers[0]:
                handlers[0]()
            if mask & _POLLOUT:
                current = self._handlers.get(sock)
                if current is not None and current[1]:
                    current[1]()
        now = monotonic_s()
        for source in list(self._timers):
            deadline = source.next_deadline()
            if deadline is not None and deadline <= now:
                source.on_timer()
        while self._soon:
            soon, self._soon = self._soon, []
            for callback in soon:
                callback()
        for callback in self._turn_end:
            callback()

    def close(self) -> None:
        for sock in list(self._keys):
            self.forget(sock)
