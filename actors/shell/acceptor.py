"""One listening port for many acceptor sessions.

A new connection is not bound to a session until its first message has been
read: that message must be a well-formed Logon whose BeginString,
SenderCompID, TargetCompID (and session qualifier, when sessions use one)
name a configured session that is not already connected. Anything else is
closed with nothing sent, as the FIX session test cases 1b, 1c, 1d and 1e
require; the log line says why.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from actors.fix import tags as T
from actors.fix.codec import Framer, GarbledMessage, parse
from actors.fix.config import DEFAULT_QUALIFIER_TAG
from actors.shell import clock
from actors.shell.driver import SessionDriver
from actors.shell.loop import Loop
from actors.shell.transport import SocketTransport

log = logging.getLogger("fixmesh.acceptor")

#: A connection may send this much before its Logon is complete; a Logon is a few hundred bytes, and
#: reading more from a peer that has not said who it is only lets it fill this process's memory.
MAX_BYTES_BEFORE_LOGON = 16384


class Target(Protocol):
    """Where an identified connection goes: a session in this process, or in another one."""

    name: str

    @property
    def connected(self) -> bool: ...

    def take(self, sock: socket.socket, data: bytes) -> None:
        """Own the connection from now on; ``data`` is what was read from it so far."""


class DriverTarget:
    """A session driven in this process."""

    def __init__(self, loop: Loop, driver: SessionDriver) -> None:
        self.loop = loop
        self.driver = driver
        self.name = driver.name

    @property
    def connected(self) -> bool:
        return self.driver.connected

    def take(self, sock: socket.socket, data: bytes) -> None:
        transport = SocketTransport(self.loop, sock, self.driver.feed, self.driver.connection_lost)
        self.driver.attach(transport, data)


@dataclass(frozen=True, slots=True)
class SessionKey:
    """Identity of an acceptor session as seen in an incoming Logon."""

    begin_string: str
    our_comp_id: str
    their_comp_id: str
    qualifier: str | None = None


class Acceptor:
    def __init__(
        self,
        loop: Loop,
        host: str,
        port: int,
        lookup: Callable[[SessionKey], Target | None],
        *,
        qualifier_tag: int = DEFAULT_QUALIFIER_TAG,
        logon_timeout_s: float = 10.0,
    ) -> None:
        self.loop = loop
        self._lookup = lookup
        self._qualifier_tag = qualifier_tag
        self._logon_timeout_s = logon_timeout_s
        self.listener = socket.create_server((host, port), reuse_port=False, backlog=64)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        loop.add_reader(self.listener, self._accept)
        log.info("listening on %s:%d", host, self.port)

    def close(self) -> None:
        self.loop.forget(self.listener)
        self.listener.close()

    def _accept(self) -> None:
        try:
            sock, addr = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        _Pending(self, sock, f"{addr[0]}:{addr[1]}")

    def bind(self, pending: _Pending, data: bytes) -> None:
        """Find the session the first message names, or close the connection."""
        framer = Framer()
        framer.feed(data)
        frame = framer.next_frame()
        while frame is not None and not frame.data:  # bytes before the first '8='
            frame = framer.next_frame()
        if frame is None:
            return
        pending.done()
        if frame.error is not None:
            pending.reject(f"first message is garbled: {frame.error}")
            return
        try:
            msg = parse(frame.data)
        except GarbledMessage as exc:
            pending.reject(f"first message is garbled: {exc}")
            return
        if msg.msg_type != "A":
            pending.reject(f"first message is MsgType {msg.msg_type!r}, not a Logon")
            return
        qualifier = msg.get_str(self._qualifier_tag)
        key = SessionKey(
            msg.begin_string, msg.get_str(T.TARGET_COMP_ID) or "", msg.get_str(T.SENDER_COMP_ID) or "", qualifier
        )
        target = self._lookup(key)
        if target is None:
            pending.reject(f"no session {key.begin_string} {key.our_comp_id}<-{key.their_comp_id}"
                           + (f" qualifier {qualifier}" if qualifier else ""))
            return
        if target.connected:
            pending.reject(f"session {target.name} is already connected")
            return
        log.info("connection %s bound to session %s", pending.peer, target.name)
        self.loop.forget(pending.sock)
        target.take(pending.sock, data)


class _Pending:
    """A connection whose first message has not arrived yet."""

    def __init__(self, acceptor: Acceptor, sock: socket.socket, peer: str) -> None:
        self.acceptor = acceptor
        self.sock = sock
        self.peer = peer
        self.buf = bytearray()
        self.deadline = clock.monotonic_s() + acceptor._logon_timeout_s
        acceptor.loop.add_reader(sock, self._readable)
        acceptor.loop.add_timer_source(self)

    def _readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.reject(f"read failed: {exc}", quiet=True)
            return
        if not data:
            self.reject("closed before sending a Logon", quiet=True)
            return
        self.buf += data
        if len(self.buf) > MAX_BYTES_BEFORE_LOGON:
            self.reject(f"{len(self.buf)} bytes without a complete Logon (at most {MAX_BYTES_BEFORE_LOGON})")
            return
        self.acceptor.bind(self, bytes(self.buf))

    def next_deadline(self) -> float | None:
        return self.deadline

    def on_timer(self) -> None:
        self.reject(f"no Logon within {self.acceptor._logon_timeout_s:g} s")

    def done(self) -> None:
        self.acceptor.loop.remove_timer_source(self)

    def reject(self, reason: str, quiet: bool = False) -> None:
        self.done()
        (log.debug if quiet else log.warning)("closing connection %s: %s", self.peer, reason)
        self.acceptor.loop.forget(self.sock)
        with contextlib.suppress(OSError):
            self.sock.close()
