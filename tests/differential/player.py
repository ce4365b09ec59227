"""Play one scenario against one acceptor over TCP and record what came back.

The side-effect half of the differential test: the sockets and the waits.
Every wait is bounded (``Limits``); a wait that ends with nothing is an
event of the transcript like a message, so a silent acceptor is a visible
difference and never a hang.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.differential import HOST
from tests.differential.scenarios import (
    Burst,
    Connect,
    ExpectClose,
    Scenario,
    Send,
    Step,
    Sync,
    Until,
    Use,
)
from tests.differential.wire import SOH, Context, Event, Kind, fields_of, render, take_message


@dataclass(frozen=True)
class Limits:
    #: A Sync's Heartbeat or an Until's message: the acceptors answer in milliseconds; this bounds a silent one.
    reply_s: float = 3.0
    #: Longer than LogoutTimeout (2 s) and than 2.4 heartbeat intervals of 1 s plus a timer tick.
    close_s: float = 5.0
    connect_s: float = 5.0
    max_message_bytes: int = 1 << 20


DEFAULT_LIMITS = Limits()


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.closed = False

    def send(self, data: bytes) -> bool:
        """False when the acceptor has closed the connection already."""
        if self.closed:
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def next_message(self, deadline: float, limits: Limits) -> bytes | None:
        """The next complete message, or None when the deadline passes or the acceptor closes."""
        while True:
            message = take_message(self.buffer)
            if message is not None:
                return message
            if self.closed:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
            self.buffer += chunk
            if len(self.buffer) > limits.max_message_bytes:
                raise AssertionError(f"no complete message in {len(self.buffer)} bytes")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Player:
    """Carries out a scenario's steps in order; ``events`` is the transcript."""

    def __init__(self, port: int, context: Context, limits: Limits = DEFAULT_LIMITS) -> None:
        self.port = port
        self.context = context
        self.limits = limits
        self.events: list[Event] = []
        #: Open connections by number; ``Use`` picks the one later steps act on.
        self._conns: dict[int, _Connection] = {}
        self._current = 1
        self._next_seq = 1
        self._syncs = 0

    def play(self, scenario: Scenario) -> list[Event]:
        try:
            for index, step in enumerate(scenario.steps):
                self._step(index, step)
        finally:
            for conn in self._conns.values():
                conn.close()
        return self.events

    @property
    def _conn(self) -> _Connection | None:
        return self._conns.get(self._current)

    def _step(self, index: int, step: Step) -> None:
        if isinstance(step, Connect):
            self._connect(index)
        elif isinstance(step, Send):
            self._send(index, step)
        elif isinstance(step, Burst):
            self._write(index, b"".join(self._render(send) for send in step.sends))
        elif isinstance(step, Use):
            self._current = step.number
        elif isinstance(step, Sync):
            self._syncs += 1
            probe = f"SYNC{self._syncs}"
            self._send(index, Send("1", ((112, probe),)))
            self._read_until(index, lambda fields: ("35", "0") in fields and ("112", probe) in fields)
        elif isinstance(step, Until):
            self._read_until(index, lambda fields: ("35", step.msg_type) in fields)
        elif isinstance(step, ExpectClose):
            self._read_until(index, lambda fields: False, wait_s=step.seconds or self.limits.close_s, until_close=True)

    def _connect(self, index: int) -> None:
        old = self._conns.pop(self._current, None)
        if old is not None:
            old.close()
        try:
            sock = socket.create_connection((HOST, self.port), timeout=self.limits.connect_s)
        except OSError:
            self.events.append(Event(Kind.REFUSED, index))
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conns[self._current] = _Connection(sock)

    def _send(self, index: int, send: Send) -> None:
        self._write(index, self._render(send))

    def _render(self, send: Send) -> bytes:
        """The message with its MsgSeqNum; moves the client's counter as ``Send`` describes."""
        seq = self._next_seq if send.seq is None else send.seq
        data = render(send, self.context, seq)
        if send.next_seq is not None:
            self._next_seq = send.next_seq
        else:
            self._next_seq = max(self._next_seq, seq + 1)
        return data

    def _write(self, index: int, data: bytes) -> None:
        conn = self._conn
        if conn is None or not conn.send(data):
            self.events.append(Event(Kind.UNSENT, index, data))

    def _read_until(self, index: int, done: Callable[[set[tuple[str, str]]], bool], wait_s: float | None = None,
                    until_close: bool = False) -> None:
        conn = self._conn
        if conn is None:
            self.events.append(Event(Kind.UNSENT, index))
            return
        deadline = time.monotonic() + (wait_s or self.limits.reply_s)
        while True:
            message = conn.next_message(deadline, self.limits)
            if message is None:
                if conn.closed:
                    self._closed(index)
                else:
                    self.events.append(Event(Kind.STILL_OPEN if until_close else Kind.NO_REPLY, index))
                return
            self.events.append(Event(Kind.MESSAGE, index, message))
            if done(set(fields_of(message))):
                return

    def _closed(self, index: int) -> None:
        """Once per connection: it is forgotten, so later steps on it record that it is gone."""
        conn = self._conns.pop(self._current, None)
        if conn is not None:
            if conn.buffer:
                self.events.append(Event(Kind.MESSAGE, index, bytes(conn.buffer).rstrip(SOH) + SOH))
            conn.close()
        self.events.append(Event(Kind.CLOSED, index))
