"""One listening port for many acceptor sessions.

A new connection is not bound to a session until its first message has been
read: that message must be a well-formed Logon whose BeginString,
SenderCompID, TargetCompID (and session qualifier, when sessions use one)
name a configured session that is not already connected. Anything else is
closed with nothing sent, as the FIX session test cases 1b, 1c, 1d and 1e
require; the log line says why.

With TLS (an ``ssl.SSLContext`` from ``actors.shell.tls``) a connection first
completes its handshake, within the same logon timeout, and the Logon is read
from the plaintext; the session's driver then takes over the same transport,
TLS state and the plaintext already read included.

Before ``take``, the target may refuse the peer's address (``refusal_for``):
the seam for an address policy; by default everyone is admitted.

Limits, so that a crowd of connections that never log on cannot take the
process down or lock the traders out (docs/security.md, "Connection limits"):

* at most ``max_pending_connections`` connections wait for their Logon at a
  time; one more closes the one that has waited longest, since a trader sends
  its Logon right after connecting, so the oldest waiting connection is the
  least likely to be one;
* a waiting connection is closed after ``logon_timeout_s``;
* when the process is out of file descriptors (accept fails with EMFILE or
  ENFILE, ENOBUFS or ENOMEM; or the new descriptor leaves fewer than
  ``fd_reserve`` below the limit, kept for the session's own files) the
  listener rests for ``FD_BACKOFF_S`` and then accepts again; the process
  never dies of it.

Each kind of warning is logged at most once per ``WARNING_INTERVAL_S``, with
the number of the others since the last line.
"""

from __future__ import annotations

import errno
import logging
import math
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from actors.fix import tags as T
from actors.fix.codec import Framer, GarbledMessage, parse
from actors.fix.config import DEFAULT_QUALIFIER_TAG
from actors.shell import clock
from actors.shell.driver import SessionDriver
from actors.shell.loop import Loop
from actors.shell.transport import SocketTransport

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("fixmesh.acceptor")

#: A connection may send this much before its Logon is complete; a Logon is a few hundred bytes, and
#: reading more from a peer that has not said who it is only lets it fill this process's memory.
MAX_BYTES_BEFORE_LOGON = 16384
#: Connections waiting for their Logon at once, per listening port, unless the settings say otherwise.
DEFAULT_MAX_PENDING_CONNECTIONS: Final = 256
#: File descriptors kept free for the sessions' own needs (a store reset at a Logon opens files).
FD_RESERVE: Final = 16
#: How long the listener rests when the process is out of file descriptors.
FD_BACKOFF_S: Final = 0.1
#: At most one warning of a kind per this many seconds.
WARNING_INTERVAL_S: Final = 5.0
#: Connections accepted per wake-up at most, so a flood does not keep the loop from its sessions.
ACCEPT_BURST: Final = 64
LISTEN_BACKLOG: Final = 64
#: accept's errors that mean "no descriptor (or memory) for one more connection".
OUT_OF_DESCRIPTORS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

#: ``admit(peer_ip)``: None to admit the connection, or the reason it is refused.
AddressCheck = Callable[[str], str | None]


class Target(Protocol):
    """Where an identified connection goes: a session in this process, or in another one."""

    name: str

    @property
    def connected(self) -> bool: ...

    def refusal_for(self, peer_ip: str) -> str | None:
        """Why a connection from ``peer_ip`` may not have this session; None admits it."""

    def take(self, transport: SocketTransport, data: bytes) -> None:
        """Own the connection from now on; ``data`` is the plaintext read from it so far."""


class DriverTarget:
    """A session driven in this process; ``admit`` decides who may connect to it (default: everyone)."""

    def __init__(self, loop: Loop, driver: SessionDriver, admit: AddressCheck | None = None) -> None:
        self.loop = loop
        self.driver = driver
        self.name = driver.name
        self._admit = admit

    @property
    def connected(self) -> bool:
        return self.driver.connected

    def refusal_for(self, peer_ip: str) -> str | None:
        return self._admit(peer_ip) if self._admit is not None else None

    def take(self, transport: SocketTransport, data: bytes) -> None:
        transport.rebind(self.driver.feed, self.driver.connection_lost)
        self.driver.attach(transport, data, remote_address=transport.remote_address)


@dataclass(frozen=True, slots=True)
class SessionKey:
    """Identity of an acceptor session as seen in an incoming Logon."""

    begin_string: str
    our_comp_id: str
    their_comp_id: str
    qualifier: str | None = None


class Throttle:
    """At most one log line per interval; ``due`` says how many were held back since the last line."""

    def __init__(self, interval_s: float = WARNING_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._next_s = -math.inf
        self._held = 0

    def due(self, now_s: float) -> int | None:
        """None: hold this one back; otherwise log it, with the count returned of those held back."""
        if now_s < self._next_s:
            self._held += 1
            return None
        held, self._held = self._held, 0
        self._next_s = now_s + self.interval_s
        return held


def _more(held: int) -> str:
    return f" (and {held} more since the last warning)" if held else ""


def descriptor_limit() -> int | None:
    """The process's soft RLIMIT_NOFILE, None when unlimited."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft < 0 or soft == resource.RLIM_INFINITY else soft


class ListenerRest:
    """Out of file descriptors: stop reading a listening socket for a moment, say so, then read it again.

    accept needs a descriptor for the new connection; without one the
    connection stays in the kernel's queue and the listener stays readable,
    so reading it again at once would spin. The rest is a deadline on the loop
    (this object is one of its timer sources).
    """

    def __init__(self, loop: Loop, listener: socket.socket, on_readable: Callable[[], None], where: str,
                 now: Callable[[], float] = clock.monotonic_s) -> None:
        self.loop = loop
        self.listener = listener
        self.where = where
        self._on_readable = on_readable
        self._now = now
        self._resume_at: float | None = None
        self._warning = Throttle()
        loop.add_timer_source(self)

    @property
    def resting(self) -> bool:
        return self._resume_at is not None

    def begin(self, why: str, detail: str = "") -> None:
        now = self._now()
        if self._resume_at is None:
            self.loop.forget(self.listener)
        self._resume_at = now + FD_BACKOFF_S
        held = self._warning.due(now)
        if held is not None:
            log.warning("%s: out of file descriptors (%s): refusing new connections for %g s%s%s",
                        self.where, why, FD_BACKOFF_S, detail, _more(held))

    def next_deadline(self) -> float | None:
        return self._resume_at

    def on_timer(self) -> None:
        if self._resume_at is not None and self._now() >= self._resume_at:
            self._resume_at = None
            self.loop.add_reader(self.listener, self._on_readable)

    def close(self) -> None:
        self._resume_at = None
        self.loop.remove_timer_source(self)


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
        max_pending_connections: int = DEFAULT_MAX_PENDING_CONNECTIONS,
        tls: ssl.SSLContext | None = None,
        fd_reserve: int = FD_RESERVE,
        now: Callable[[], float] = clock.monotonic_s,
    ) -> None:
        if max_pending_connections < 1:
            raise ValueError("max_pending_connections must be 1 or more")
        self.loop = loop
        self.tls = tls
        self.logon_timeout_s = logon_timeout_s
        self.max_pending_connections = max_pending_connections
        self.fd_reserve = fd_reserve
        self._lookup = lookup
        self._qualifier_tag = qualifier_tag
        self._now = now
        #: Connections waiting for their Logon, oldest first (so also by deadline: the timeout is one for all).
        self._pending: dict[_Pending, None] = {}
        self._limit_warning = Throttle()
        self._timeout_warning = Throttle()
        self.listener = socket.create_server((host, port), reuse_port=False, backlog=LISTEN_BACKLOG)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.where = f"{host}:{self.port}"
        self._rest = ListenerRest(loop, self.listener, self._accept, self.where, now)
        loop.add_reader(self.listener, self._accept)
        loop.add_timer_source(self)
        log.info("listening on %s%s", self.where, " (TLS)" if tls is not None else "")

    @property
    def pending(self) -> int:
        """Connections waiting for their Logon."""
        return len(self._pending)

    @property
    def resting(self) -> bool:
        """The listener is not read for a moment: the process was out of file descriptors."""
        return self._rest.resting

    def close(self) -> None:
        """Stop listening; connections still waiting for their Logon are closed."""
        self._rest.close()
        self.loop.remove_timer_source(self)
        self.loop.forget(self.listener)
        self.listener.close()
        for pending in list(self._pending):
            pending.reject("the acceptor is closing", quiet=True)

    # ------------------------------------------------------------ timer source

    def next_deadline(self) -> float | None:
        for pending in self._pending:
            return pending.deadline
        return None

    def on_timer(self) -> None:
        now = self._now()
        while self._pending:
            oldest = next(iter(self._pending))
            if oldest.deadline > now:
                return
            held = self._timeout_warning.due(now)
            oldest.reject(oldest.timeout_reason() + ("" if held is None else _more(held)), quiet=held is None)

    # --------------------------------------------------------------- accepting

    def _accept(self) -> None:
        for _ in range(ACCEPT_BURST):
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in OUT_OF_DESCRIPTORS:
                    self._rest.begin(f"{exc.strerror or exc}; limit {descriptor_limit() or 'none'}", self._waiting())
                else:  # a connection that ended while in the kernel's queue, say
                    log.warning("%s: accept failed: %s", self.where, exc)
                return
            # Descriptors are handed out lowest first: a number this high means few are left below the limit.
            limit, fd = descriptor_limit(), sock.fileno()
            if limit is not None and fd >= limit - self.fd_reserve:
                sock.close()
                self._rest.begin(f"descriptor {fd} of at most {limit}, {self.fd_reserve} kept in reserve",
                                 self._waiting())
                return
            self._admit(sock, address)

    def _waiting(self) -> str:
        return f"; {len(self._pending)} connections waiting for their Logon"

    def _admit(self, sock: socket.socket, address: Any) -> None:
        now = self._now()
        if len(self._pending) >= self.max_pending_connections:
            oldest = next(iter(self._pending))
            held = self._limit_warning.due(now)
            if held is not None:
                log.warning("%s: %d connections are waiting for their Logon (max_pending_connections): closing "
                            "the one waiting longest, %s, after %.1f s%s", self.where, len(self._pending),
                            oldest.peer, now - oldest.since, _more(held))
            oldest.reject("max_pending_connections reached", quiet=True)
        pending = _Pending(self, sock, address, now)
        if pending.transport.sock is not None:
            self._pending[pending] = None

    def _forget(self, pending: _Pending) -> None:
        self._pending.pop(pending, None)

    def bind(self, pending: _Pending, data: bytes) -> None:
        """Find the session the first message names, or close the connection."""
        framer = Framer()
        framer.feed(data)
        frame = framer.next_frame()
        while frame is not None and not frame.data:  # bytes before the first '8='
            frame = framer.next_frame()
        if frame is None:
            return
        self._forget(pending)
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
        refusal = target.refusal_for(pending.ip)
        if refusal is not None:
            pending.reject(f"refused for session {target.name}: {refusal}")
            return
        tls = pending.transport.tls
        log.info("connection %s bound to session %s%s", pending.peer, target.name,
                 f" over {tls.describe()}" if tls is not None else "")
        warning = tls.peer_expiry_warning() if tls is not None else None
        if warning is not None:
            log.warning("connection %s of session %s: %s", pending.peer, target.name, warning)
        target.take(pending.transport, data)


class _Pending:
    """A connection whose first message has not arrived yet (with TLS: maybe not even its handshake)."""

    __slots__ = ("acceptor", "ip", "peer", "buf", "since", "deadline", "transport")

    def __init__(self, acceptor: Acceptor, sock: socket.socket, address: Any, now_s: float) -> None:
        self.acceptor = acceptor
        self.ip = str(address[0])
        self.peer = f"{address[0]}:{address[1]}"
        self.buf = bytearray()
        self.since = now_s
        self.deadline = now_s + acceptor.logon_timeout_s
        tls = None
        if acceptor.tls is not None:
            from actors.shell.tls import TlsLayer  # ``ssl`` only where TLS is spoken

            tls = TlsLayer(acceptor.tls, server_side=True)
        self.transport = SocketTransport(acceptor.loop, sock, self._received, self._lost, tls=tls)

    def _received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > MAX_BYTES_BEFORE_LOGON:
            self.reject(f"{len(self.buf)} bytes without a complete Logon (at most {MAX_BYTES_BEFORE_LOGON})")
            return
        self.acceptor.bind(self, bytes(self.buf))

    def _lost(self, reason: str) -> None:
        """The connection ended before it was bound: the peer closed it, or TLS failed (worth a warning)."""
        self.acceptor._forget(self)
        if reason == "connection closed by the counterparty":
            reason = "closed before sending a Logon"
        (log.warning if self.transport.tls_failed else log.debug)("closing connection %s: %s", self.peer, reason)

    def timeout_reason(self) -> str:
        tls = self.transport.tls
        if tls is not None and not tls.secure:
            return f"no TLS handshake within {self.acceptor.logon_timeout_s:g} s"
        return f"no Logon within {self.acceptor.logon_timeout_s:g} s"

    def reject(self, reason: str, quiet: bool = False) -> None:
        self.acceptor._forget(self)
        (log.debug if quiet else log.warning)("closing connection %s: %s", self.peer, reason)
        self.transport.abort()
