"""Connects an initiator session to its counterparty, and reconnects it.

The connector is a timer source on the ``Loop``: each phase has one
deadline (the connect timeout, the next reconnect attempt) and the TCP
connect itself is non-blocking, so the loop keeps serving other sockets while
a counterparty is slow to answer. It only opens sockets and tells the session
what happened (``start_connecting``, ``connection_failed``,
``start_reconnecting``, ``give_up``); every protocol decision stays in the
session.

A connection that ends abnormally (``DISCONNECTED_ABNORMALLY``: dropped,
timed out, refused by the peer's socket) is retried after
``reconnect_interval_s``; one that ends with a Logout exchange is not, unless
``reconnect_after_logout`` is set, because a counterparty that logs out
usually means it (end of day, maintenance). A gateway's Driven sets it: for
its user a venue Logout is one more way of losing the venue session.

When the tries run out the session goes DISCONNECTED with a reason that ends
in ``"; gave up after N tries"`` (``actors.shell.give_up``): the coordinator reads that
as the end of the venue session.

``start`` on a session whose previous connection has not ended yet (a
connect command that overtook the end of a logout) waits for that end
instead of breaking the session's transition table.

With TLS (a client ``ssl.SSLContext`` from ``actors.shell.tls``) the TLS
handshake follows the TCP connect, within the same ``connect_timeout_s``,
and only then is the session attached (and its Logon sent). The server's
certificate must name ``server_name``, by default the host of the address
being tried (primary or backup). A failed handshake is a failed try like a
refused connect: logged with its reason ("TLS handshake with
127.0.0.1:9877 failed: certificate verify failed: Hostname mismatch, ..."),
then retried or given up.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from actors.fix.states import OFFLINE, SessionState
from actors.fix.timefmt import Instant
from actors.shell import clock
from actors.shell.driver import SessionDriver
from actors.shell.give_up import give_up_reason
from actors.shell.loop import Loop
from actors.shell.name_lookup import Address, Lookup, numeric_address
from actors.shell.transport import SocketTransport

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("fixmesh.initiator")

#: The words that end the reason of a give-up, so that whoever reads the state can tell the end of the
#: tries from a pause between two of them (``gave_up``).
class Phase(Enum):
    IDLE = "idle"
    #: Told to start while the previous connection was still ending: the first try follows its end.
    PENDING = "pending"
    CONNECTING = "connecting"
    ATTACHED = "attached"
    WAITING = "waiting"
    STOPPED = "stopped"


class Initiator:
    """Opens the TCP connection of one ``SessionDriver`` and retries it."""

    def __init__(
        self,
        loop: Loop,
        driver: SessionDriver,
        host: str,
        port: int,
        *,
        connect_timeout_s: float = 5.0,
        reconnect_interval_s: float = 5.0,
        max_tries: int = 0,
        reconnect_after_logout: bool = False,
        backup: tuple[str, int] | None = None,
        auto_switch_to_backup: bool = False,
        cyclic_switch: bool = False,
        on_switch: Callable[[str, str, str], None] | None = None,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
        now: Callable[[], Instant] = clock.now,
    ) -> None:
        """``backup``: a second address; ``auto_switch_to_backup`` moves to it when ``max_tries``
        attempts on the primary failed (FIX Antenna's EnableAutoSwitchToBackupConnection);
        ``cyclic_switch`` keeps alternating after that instead of giving up
        (CyclicSwitchBackupConnection). ``on_switch(from, to, why)`` is told of every switch.
        ``tls``: connect over TLS with this client context; ``server_name``: the name the server's
        certificate must carry (None: the host of the address tried)."""
        if max_tries < 0:
            raise ValueError("max_tries must be >= 0 (0 = unlimited)")
        self.loop = loop
        self.driver = driver
        self.addresses: list[tuple[str, int]] = [(host, port)] + ([backup] if backup else [])
        self.current = 0
        self.auto_switch_to_backup = auto_switch_to_backup and backup is not None
        self.cyclic_switch = cyclic_switch and backup is not None
        self._on_switch = on_switch
        self.connect_timeout_s = connect_timeout_s
        self.reconnect_interval_s = reconnect_interval_s
        self.max_tries = max_tries
        self.reconnect_after_logout = reconnect_after_logout
        self.phase = Phase.IDLE
        #: True once ``max_tries`` attempts in a row failed; the connector has stopped.
        self.gave_up = False
        #: Attempts since the session was last logged on; ``max_tries`` bounds it.
        self.tries = 0
        self._now = now
        self._tls = tls
        self._server_name = server_name
        self._sock: socket.socket | None = None
        #: The connection while its TLS handshake runs (phase CONNECTING).
        self._handshake: SocketTransport | None = None
        #: The lookup of the address's host name (phase CONNECTING, before the socket).
        self._lookup: Lookup | None = None
        self._deadline: float | None = None

    # ------------------------------------------------------------ commands

    def start(self) -> None:
        """Make the first attempt now; the loop must register this as a timer source."""
        if self.phase is not Phase.IDLE:
            return
        if self._may_start():
            self._attempt()
        else:
            self.phase = Phase.PENDING

    def stop(self) -> None:
        """No further attempts; a connection in progress is abandoned, an attached one is left alone.

        A TCP connect in progress has no transport yet, so nothing would ever
        tell the session that it ended: it is told here (CONNECTING ->
        DISCONNECTED_ABNORMALLY), else a disconnect would leave it waiting for
        a socket to close that it never had.
        """
        abandoned = self.phase is Phase.CONNECTING and (
            self._sock is not None or self._handshake is not None or self._lookup is not None)
        self._abandon_socket()
        self._deadline = None
        self.phase = Phase.STOPPED
        if abandoned and self.driver.session.state is SessionState.CONNECTING:
            self.driver.connection_failed("connect abandoned: told to stop connecting")

    def _may_start(self) -> bool:
        """A try may begin: the session has no connection (and is not shut down)."""
        state = self.driver.session.state
        return state in OFFLINE and state is not SessionState.DEAD and not self.driver.connected

    @property
    def address(self) -> tuple[str, int]:
        return self.addresses[self.current]

    @property
    def connection_name(self) -> str:
        return "primary" if self.current == 0 else "backup"

    def switch(self, why: str) -> bool:
        """Move to the other address now (after dropping a connection in progress); False if there is none."""
        if len(self.addresses) < 2:
            return False
        old = f"{self.connection_name} {self.address[0]}:{self.address[1]}"
        self.current = 1 - self.current
        self.tries = 0
        new = f"{self.connection_name} {self.address[0]}:{self.address[1]}"
        log.info("%s: switching from %s to %s: %s", self.driver.name, old, new, why)
        if self._on_switch is not None:
            self._on_switch(old, new, why)
        return True

    def reconnect_now(self) -> None:
        """Start a new attempt at once on the current address (after a commanded switch)."""
        self._abandon_socket()
        self.gave_up = False
        self._attempt()

    # ------------------------------------------------------- timer source

    def next_deadline(self) -> float | None:
        if self.phase is Phase.ATTACHED:
            # The driver drops its transport when the connection ends, by either side.
            return None if self.driver.connected else 0.0
        if self.phase in (Phase.CONNECTING, Phase.WAITING):
            return self._deadline
        if self.phase is Phase.PENDING:
            # The loop asks again after every event, so the end of the old connection is seen at once.
            return 0.0 if self._may_start() else None
        return None

    def on_timer(self) -> None:
        if self.phase is Phase.PENDING:
            if self._may_start():
                self._attempt()
        elif self.phase is Phase.ATTACHED and not self.driver.connected:
            self._after_connection()
        elif self.phase is Phase.CONNECTING:
            if self._handshake is not None:
                host, port = self.address
                self._failed(f"TLS handshake with {host}:{port} not done within {self.connect_timeout_s:g} s")
            elif self._lookup is not None:
                self._failed(f"name lookup of {self.address[0]} not answered within {self.connect_timeout_s:g} s")
            else:
                self._failed(f"no connection within {self.connect_timeout_s:g} s")
        elif self.phase is Phase.WAITING:
            self._attempt()

    # ------------------------------------------------------------ internals

    def _attempt(self) -> None:
        """A try: the address (a name is looked up off the loop, ``actors.shell.name_lookup``), then the connect."""
        self.tries += 1
        host, port = self.address
        self.driver.start_connecting(f"connecting to {host}:{port} (try {self.tries})")
        self._deadline = self._now().mono_s + self.connect_timeout_s  # the lookup's time counts
        self.phase = Phase.CONNECTING
        address = numeric_address(host, port)
        if address is None:
            self._lookup = Lookup(self.loop, host, port, self._looked_up)
        else:
            self._connect(address)

    def _looked_up(self, answer: Address | OSError) -> None:
        self._lookup = None
        if isinstance(answer, OSError):
            self._failed(f"name lookup of {self.address[0]} failed: {answer.strerror or answer}")
        else:
            self._connect(answer)

    def _connect(self, address: Address) -> None:
        family, kind, proto, sockaddr = address
        host, port = self.address
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            self._failed(f"connect to {host}:{port} failed: {exc.strerror or exc}")
            return
        sock.setblocking(False)
        code = sock.connect_ex(sockaddr)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            self._failed(f"connect to {host}:{port} failed: {os.strerror(code)}")
            return
        self._sock = sock
        self.loop.add_writer(sock, self._connect_done)

    def _connect_done(self) -> None:
        """The socket became writable: the connect finished, well or badly."""
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        self.loop.forget(sock)
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code != 0:
            sock.close()
            host, port = self.address
            self._failed(f"connect to {host}:{port} failed: {os.strerror(code)}")
            return
        log.info("%s: connected to %s:%d", self.driver.name, *self.address)
        if self._tls is not None:
            # The session is attached (and its Logon sent) once the handshake has completed (``_secure``).
            from actors.shell.tls import TlsLayer  # ``ssl`` only where TLS is spoken

            host = self.address[0]
            layer = TlsLayer(self._tls, server_side=False, server_name=self._server_name or host)
            self._handshake = SocketTransport(self.loop, sock, self._early_data, self._handshake_failed, tls=layer,
                                              on_secure=self._secure)
            return
        self._attach(SocketTransport(self.loop, sock, self._feed, self.driver.connection_lost))

    def _attach(self, transport: SocketTransport) -> None:
        self.phase = Phase.ATTACHED
        self._deadline = None
        self.driver.attach(transport, remote_address=transport.remote_address)

    def _secure(self) -> None:
        """The TLS handshake has completed: the server's certificate is good; the session may log on."""
        transport = self._handshake
        if transport is None:
            return
        self._handshake = None
        host, port = self.address
        log.info("%s: TLS with %s:%d established: %s", self.driver.name, host, port,
                 transport.tls.describe() if transport.tls is not None else "")
        warning = transport.tls.peer_expiry_warning() if transport.tls is not None else None
        if warning is not None:
            log.warning("%s: %s:%d: %s", self.driver.name, host, port, warning)
        transport.rebind(self._feed, self.driver.connection_lost)
        self._attach(transport)

    def _early_data(self, data: bytes) -> None:
        """Nothing can come before the handshake has completed (``_secure`` rebinds first)."""

    def _handshake_failed(self, reason: str) -> None:
        self._handshake = None
        host, port = self.address
        reason = reason.replace("TLS handshake failed", f"TLS handshake with {host}:{port} failed", 1)
        if not reason.startswith("TLS"):
            reason = f"TLS handshake with {host}:{port} failed: {reason}"
        self._failed(reason)

    def _feed(self, data: bytes) -> None:
        self.driver.feed(data)
        if self.driver.session.is_logged_on:
            self.tries = 0

    def _failed(self, reason: str) -> None:
        self._abandon_socket()
        log.warning("%s: %s", self.driver.name, reason)
        self.driver.connection_failed(reason)
        self._retry_or_give_up(reason)

    def _after_connection(self) -> None:
        """The connection ended; the session's state says how."""
        state = self.driver.session.state
        if state is SessionState.DISCONNECTED_ABNORMALLY:
            self._retry_or_give_up("connection lost")
        elif state is SessionState.DISCONNECTED and self.reconnect_after_logout:
            self._wait("reconnecting after Logout")
        else:
            log.info("%s: not reconnecting (session %s)", self.driver.name, state.value)
            self.phase = Phase.STOPPED

    def _retry_or_give_up(self, reason: str) -> None:
        if self.max_tries and self.tries >= self.max_tries and self._may_switch():
            self.switch(f"{reason}; {self.tries} tries failed")
            self.driver.start_reconnecting(f"{reason}; next try on the {self.connection_name} connection")
            self._wait(reason)
            return
        if self.max_tries and self.tries >= self.max_tries:
            self.driver.give_up(give_up_reason(reason, self.tries))
            self.gave_up = True
            self.phase = Phase.STOPPED
            return
        waiting = f"{reason}; next try in {self.reconnect_interval_s:g} s"
        self.driver.start_reconnecting(waiting)
        self._wait(reason)

    def _may_switch(self) -> bool:
        if self.current == 0:
            return self.auto_switch_to_backup or self.cyclic_switch
        return self.cyclic_switch

    def _wait(self, reason: str) -> None:
        self.phase = Phase.WAITING
        self._deadline = self._now().mono_s + self.reconnect_interval_s
        log.debug("%s: %s; next try in %g s", self.driver.name, reason, self.reconnect_interval_s)

    def _abandon_socket(self) -> None:
        lookup = self._lookup
        if lookup is not None:
            self._lookup = None
            lookup.cancel()
        sock = self._sock
        if sock is not None:
            self._sock = None
            self.loop.forget(sock)
            sock.close()
        handshake = self._handshake
        if handshake is not None:
            self._handshake = None
            handshake.abort()

