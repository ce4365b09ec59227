"""One way to host FIX sessions in a process, and one way to stop them.

Every program that runs a FIX session (the gateway's session actor, the
endpoint, the venue simulator, the trader's client, the acceptance server)
needs the same parts wired the same way; this module is that wiring, so that
the order of opening and of closing is written, and fixed, once.

For each session it is given (``add_session``) a host owns:

* the store, opened as its ``StoreSpec`` says (file or memory, durability),
  with the ``SequencePolicy``'s start numbers applied (``open_store``);
* the ``Session`` (config, data dictionaries read through
  ``actors.shell.dictionaries``, the program's hooks) and its
  ``SessionDriver``, a timer source of the loop.

For the process it owns the ``Loop``, how the counterparty is met
(``HostSpec``: an acceptor on its own port, a hand-off receiver when a
listener process owns the port, or an initiator with its reconnect and backup
settings; plain TCP or TLS, whose contexts are built, and their files read,
when the host is built), the ``StopSignals`` and the one graceful stop. On SIGTERM or
SIGINT, or ``stop(reason)``:

1. the program is told (``on_stopping``); reconnecting stops and the
   listening socket closes, so no new connection arrives;
2. every connected session is logged out;
3. the host waits for the Logout answers, at most the longest LogoutTimeout
   plus ``STOP_GRACE_S``: a deadline on the loop, so nothing spins and the
   loop keeps serving the connections that are still finishing;
4. what is still connected is disconnected, every session shut down, the
   program closes its own parts (``on_closed``), then the stores and the
   signals are closed.

Programs keep their application (bus, forwarding, order sender, venue rules,
echo, blotter): it is the driver's ``Application``, the session's hooks,
extra timer sources and readers on ``host.loop``, and the callbacks above
(``on_initiator_done`` tells a program whose initiator stopped for good by
itself, that it may end).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from actors.fix.config import SessionConfig
from actors.fix.hooks import SessionHooks
from actors.fix.session import Session
from actors.fix.timefmt import Instant
from actors.shell import clock
from actors.shell.acceptor import (
    DEFAULT_MAX_PENDING_CONNECTIONS,
    Acceptor,
    AddressCheck,
    DriverTarget,
    SessionKey,
)
from actors.shell.dictionaries import load_dictionary
from actors.shell.driver import Application, SessionDriver
from actors.shell.handoff import HandoffReceiver
from actors.shell.initiator import Initiator, Phase
from actors.shell.loop import Loop
from actors.shell.process import StopSignals
from actors.shell.schedule import Schedule
from actors.shell.seqpolicy import SequencePolicy
from actors.shell.tls_settings import TlsSettings
from actors.store import Durability, MessageStore, StoreError, open_store

if TYPE_CHECKING:
    import ssl

    from actors.shell.certificates import Certificate, ExpiryWatch

log = logging.getLogger("fixmesh.host")

#: How long the Logout exchange may take at a stop beyond the session's LogoutTimeout: the
#: counterparty's answer and our socket's last write need a moment after the session's own timer.
STOP_GRACE_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """Where a session keeps its messages and numbers (``actors.store.open_store``)."""

    kind: str = "memory"
    #: A file store's folder; a memory store ignores it.
    directory: Path | None = None
    durability: Durability = Durability.BATCH
    keep_incoming: bool = False
    #: A file store's archive of ended sequences: None deletes them at a reset; else days kept (0: for ever).
    archive_days: int | None = None


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """One session as the host builds it."""

    #: The store's session id and the driver's name in logs.
    name: str
    config: SessionConfig
    store: StoreSpec = StoreSpec()
    policy: SequencePolicy = SequencePolicy()
    schedule: Schedule | None = None
    app_dictionary: str | Path | None = None
    #: FIXT.1.1's transport dictionary; FIX 4.x uses the application dictionary for both.
    transport_dictionary: str | Path | None = None

    @property
    def key(self) -> SessionKey:
        """The Logon identity that binds an incoming connection to this session (qualifier included)."""
        c = self.config
        return SessionKey(c.begin_string, c.sender_comp_id, c.target_comp_id, c.session_qualifier)


@dataclass(frozen=True, slots=True)
class AcceptorSpec:
    """Acceptor: listen on ``host:port``, or take the connections a listener hands over at ``handoff``."""

    host: str
    port: int
    handoff: Path | None = None
    #: FIX over TLS (``actors.shell.tls``); None: plain TCP. A handed-over connection is always plain TCP.
    tls: TlsSettings | None = None
    #: Connections that may wait for their Logon at once (``actors.shell.acceptor``).
    max_pending_connections: int = DEFAULT_MAX_PENDING_CONNECTIONS

    def __post_init__(self) -> None:
        if self.tls is not None and self.handoff is not None:
            raise ValueError("a connection handed over by a listener is plain TCP: no tls with handoff")
        if self.max_pending_connections < 1:
            raise ValueError("max_pending_connections must be 1 or more")


@dataclass(frozen=True, slots=True)
class InitiatorSpec:
    """Initiator: where to connect and how to retry (``actors.shell.initiator`` explains each)."""

    host: str
    port: int
    connect_timeout_s: float = 5.0
    reconnect_interval_s: float = 5.0
    max_tries: int = 0
    reconnect_after_logout: bool = False
    backup: tuple[str, int] | None = None
    auto_switch_to_backup: bool = False
    cyclic_switch: bool = False
    #: Connect when the host starts; otherwise only when ``connect()`` is called (a paired Driven).
    on_start: bool = True
    #: FIX over TLS (``actors.shell.tls``); None: plain TCP.
    tls: TlsSettings | None = None


@dataclass(frozen=True, slots=True)
class HostSpec:
    """How the process meets its counterparty (exactly one of ``listen`` and ``connect``) and how it stops."""

    listen: AcceptorSpec | None = None
    connect: InitiatorSpec | None = None
    #: The Logout's Text (58) when SIGTERM or SIGINT stops the process.
    stop_text: str = "stopping"
    #: Take SIGTERM and SIGINT; off for a second host in one process (only one can own the signals).
    handle_signals: bool = True

    def __post_init__(self) -> None:
        if (self.listen is None) == (self.connect is None):
            raise ValueError("a host either listens or connects: give exactly one of listen and connect")


class SessionHost:
    """Sessions, their stores and drivers, the connection side, signals and the graceful stop, on one loop.

    Build it, ``add_session`` (after ``open_store`` when the program must look
    at the store first), ``start`` (or let ``run`` start it), ``run`` until
    the stop has finished. The host is itself a timer source of its loop:
    the stop deadline, and the notice that the initiator has stopped.
    """

    def __init__(
        self,
        spec: HostSpec,
        *,
        loop: Loop | None = None,
        now: Callable[[], Instant] = clock.now,
        on_stopping: Callable[[str], None] | None = None,
        on_closed: Callable[[], None] | None = None,
        on_initiator_done: Callable[[bool], None] | None = None,
        on_switch: Callable[[str, str, str], None] | None = None,
    ) -> None:
        """``on_stopping(reason)``: the stop begins; ``on_closed()``: the sessions are down, the stores
        still open; ``on_initiator_done(gave_up)``: the initiator stopped by itself (it gave up, or the
        counterparty logged out) and the session is offline; ``on_switch``: see ``Initiator``.

        TLS files are read here: one that cannot be used raises ``actors.shell.tls.TlsConfigError``."""
        self.spec = spec
        self._tls: ssl.SSLContext | None = None
        tls = None
        if spec.listen is not None and spec.listen.tls is not None:
            from actors.shell.tls import server_context  # ``ssl`` only where TLS is spoken

            tls = spec.listen.tls
            self._tls = server_context(tls)
        elif spec.connect is not None and spec.connect.tls is not None:
            from actors.shell.tls import client_context

            tls = spec.connect.tls
            self._tls = client_context(tls)
        self._certificates: list[Certificate] = []
        if tls is not None:
            from actors.shell.certificates import session_certificates

            self._certificates = session_certificates(tls.cert, tls.ca, tls.crl)
        #: When the TLS certificates end, watched from the start (``actors.shell.certificates``); None without TLS.
        self.certificates: ExpiryWatch | None = None
        self.loop = loop if loop is not None else Loop()
        self.drivers: list[SessionDriver] = []
        self.acceptor: Acceptor | None = None
        self.handoff: HandoffReceiver | None = None
        self.initiator: Initiator | None = None
        self.signals: StopSignals | None = None
        #: Why the stop began; None while running.
        self.stop_reason: str | None = None
        #: Monotonic seconds by which the Logout exchanges must be over (set when the stop begins).
        self.stop_deadline: float | None = None
        self.closed = False
        self._now = now
        self._on_stopping = on_stopping
        self._on_closed = on_closed
        self._on_initiator_done = on_initiator_done
        self._on_switch = on_switch
        self._by_key: dict[SessionKey, SessionDriver] = {}
        self._admit: dict[SessionKey, AddressCheck] = {}
        self._started = False
        self._initiator_reported = False
        self.loop.add_timer_source(self)

    # ------------------------------------------------------------ sessions

    def open_store(self, spec: SessionSpec, *, start_numbers: bool = True) -> MessageStore:
        """Open a session's store and apply its policy's start numbers (``start_numbers``).

        ``add_session`` calls it unless given the store; a program that must
        adjust the store, or read what it holds, before the start numbers
        move it calls it first (``start_numbers=False``, then
        ``apply_start_numbers``).
        """
        s = spec.store
        store = open_store(s.kind, s.directory, spec.name, now_ns=self._now().utc_ns,
                           durability=s.durability, keep_incoming=s.keep_incoming, archive_days=s.archive_days)
        if start_numbers:
            self.apply_start_numbers(spec, store)
        return store

    @staticmethod
    def apply_start_numbers(spec: SessionSpec, store: MessageStore) -> None:
        """The policy's explicit start numbers, written to the store."""
        spec.policy.start_numbers(store)
        log.info("store of %s (%s): next sender seq %d, next target seq %d",
                 spec.name, spec.store.kind, store.next_sender_seq, store.next_target_seq)

    def add_session(
        self,
        spec: SessionSpec,
        app: Application,
        *,
        hooks: SessionHooks | None = None,
        store: MessageStore | None = None,
        admit: AddressCheck | None = None,
    ) -> SessionDriver:
        """Build a session and its driver on the store (opened here unless given); returns the driver.

        The host closes the store when it closes, whoever opened it. ``admit(peer_ip)`` (acceptors)
        returns why a connection from that address may not have the session, or None to admit it;
        without it everyone is admitted. The driver's ``remote_address`` is the peer of the
        connection that is up.
        """
        if self._started:
            raise RuntimeError("add every session before the host starts")
        if self.drivers and (self.spec.connect is not None or self._listen_handoff() is not None):
            raise ValueError("an initiator, or a session taking handed-over connections, is hosted alone")
        if spec.key in self._by_key:
            raise ValueError(f"session {spec.name}: another hosted session has the same identity")
        if store is None:
            store = self.open_store(spec)
        app_dd = load_dictionary(str(spec.app_dictionary)) if spec.app_dictionary else None
        transport_dd = load_dictionary(str(spec.transport_dictionary)) if spec.transport_dictionary else app_dd
        session = Session(spec.config, next_sender=store.next_sender_seq, next_target=store.next_target_seq,
                          transport_dictionary=transport_dd, app_dictionary=app_dd, hooks=hooks)
        driver = SessionDriver(session, store, app, name=spec.name, now=self._now, policy=spec.policy,
                               schedule=spec.schedule)
        self.drivers.append(driver)
        self._by_key[spec.key] = driver
        if admit is not None:
            self._admit[spec.key] = admit
        self.loop.add_timer_source(driver)
        return driver

    @property
    def driver(self) -> SessionDriver:
        """The driver of a host of one session."""
        if len(self.drivers) != 1:
            raise RuntimeError(f"the host has {len(self.drivers)} sessions; use drivers")
        return self.drivers[0]

    @property
    def port(self) -> int | None:
        """The port the acceptor listens on (the one given, or the one picked for port 0)."""
        return self.acceptor.port if self.acceptor is not None else None

    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None

    # ------------------------------------------------------------- running

    def start(self) -> None:
        """Open the connection side (bind the port, or start connecting), then take the stop signals."""
        if self._started:
            return
        if not self.drivers:
            raise RuntimeError("no session to host")
        self._started = True
        if self.stopping:
            return  # stopped before it started: nothing to open
        listen = self.spec.listen
        if listen is not None and listen.handoff is not None:
            admit = next(iter(self._admit.values()), None)  # a session taking handed-over connections is alone
            self.handoff = HandoffReceiver(self.loop, listen.handoff, DriverTarget(self.loop, self.driver, admit))
        elif listen is not None:
            config = self.drivers[0].session.config  # sessions on one port share these
            self.acceptor = Acceptor(self.loop, listen.host, listen.port, self._lookup,
                                     qualifier_tag=config.qualifier_tag, logon_timeout_s=config.logon_timeout_s,
                                     max_pending_connections=listen.max_pending_connections, tls=self._tls)
        tls = listen.tls if listen is not None else None
        if self.acceptor is not None and tls is not None and tls.crl is not None:
            from actors.shell.tls import CrlWatch

            acceptor = self.acceptor
            self.loop.add_timer_source(CrlWatch(self._names(), tls, lambda context: setattr(acceptor, "tls", context)))
        if self._certificates:
            from actors.shell.certificates import ExpiryWatch

            self.certificates = ExpiryWatch(self._names(), self._certificates)
            self.loop.add_timer_source(self.certificates)
            self.certificates.start()
        if self.spec.handle_signals:
            self.signals = StopSignals(self.loop, lambda: self.stop(self.spec.stop_text))
        connect = self.spec.connect
        if connect is not None and connect.on_start:
            self.connect()

    def run(self, max_wait_s: float = 1.0) -> None:
        """Start (if not yet), serve until the stop has finished, then close, also after an error."""
        self.start()
        try:
            self.loop.run(max_wait_s)
        finally:
            self.close()

    def connect(self) -> None:
        """Initiator: start connecting, or again once the previous attempts have stopped; not while stopping."""
        c = self.spec.connect
        if c is None:
            raise RuntimeError("an acceptor host does not connect")
        if self.stopping:
            return
        if self.initiator is not None:
            if self.initiator.phase is not Phase.STOPPED:
                return
            self.loop.remove_timer_source(self.initiator)
        self.initiator = Initiator(
            self.loop, self.driver, c.host, c.port, connect_timeout_s=c.connect_timeout_s,
            reconnect_interval_s=c.reconnect_interval_s, max_tries=c.max_tries,
            reconnect_after_logout=c.reconnect_after_logout, backup=c.backup,
            auto_switch_to_backup=c.auto_switch_to_backup, cyclic_switch=c.cyclic_switch,
            on_switch=self._on_switch, tls=self._tls, server_name=c.tls.server_name if c.tls is not None else None,
            now=self._now,
        )
        self._initiator_reported = False
        self.loop.add_timer_source(self.initiator)
        self.initiator.start()

    def stop_connecting(self) -> None:
        """No further connect attempts; a connection that is up stays up (``on_initiator_done`` is not called)."""
        if self.initiator is not None:
            self.initiator.stop()
            self._initiator_reported = True

    # ------------------------------------------------------------- stopping

    def stop(self, reason: str) -> None:
        """Begin the graceful stop (once): log out, then wait for the answers within the stop deadline."""
        if self.stopping or self.closed:
            return
        self.stop_reason = reason
        log.info("%s: stopping: %s", self._names(), reason)
        if self._on_stopping is not None:
            self._on_stopping(reason)
        self.stop_connecting()
        self._close_listeners()
        logout_timeout_s = max((driver.session.config.logout_timeout_s for driver in self.drivers), default=0.0)
        self.stop_deadline = self._now().mono_s + logout_timeout_s + STOP_GRACE_S
        for driver in self.drivers:
            if driver.connected:
                # Logged on: a Logout, whose answer ends the connection; a Logon still under way is dropped.
                driver.logout(reason)

    def next_deadline(self) -> float | None:
        if self.stop_deadline is not None:
            return self.stop_deadline if self._connected() else 0.0
        return 0.0 if self._initiator_done() else None

    def on_timer(self) -> None:
        if self.stop_deadline is None:
            if self._initiator_done() and self.initiator is not None and self._on_initiator_done is not None:
                self._initiator_reported = True
                self._on_initiator_done(self.initiator.gave_up)
            return
        for driver in self.drivers:
            if driver.connected:
                driver.disconnect("no Logout reply before the stop deadline")
        self.loop.stop()

    def close(self) -> None:
        """End the stop: disconnect, shut the sessions down, let the program close its parts, close the stores."""
        if self.closed:
            return
        self.closed = True
        reason = self.stop_reason or "stopped"
        try:
            self.stop_connecting()
            self._close_listeners()
            for driver in self.drivers:
                if driver.connected:
                    self._unrecorded(driver, driver.disconnect, reason)
            for driver in self.drivers:
                self._unrecorded(driver, driver.shut_down, reason)
            if self._on_closed is not None:
                self._on_closed()
        finally:
            for driver in self.drivers:
                driver.store.close()
            if self.signals is not None:
                self.signals.close()
                self.signals = None

    # ------------------------------------------------------------ internals

    @staticmethod
    def _unrecorded(driver: SessionDriver, step: Callable[[str], None], reason: str) -> None:
        """A step of the close, which a store that failed (most often why the loop stopped) cannot record.

        Its connection is closed and its state published before the numbers are saved; the error that
        stopped the loop is the one the program reports, not this echo of it.
        """
        try:
            step(reason)
        except StoreError as exc:
            log.info("%s: %s not recorded in the store: %s", driver.name, step.__name__.replace("_", " "), exc)

    def _lookup(self, key: SessionKey) -> DriverTarget | None:
        driver = self._by_key.get(key)
        return DriverTarget(self.loop, driver, self._admit.get(key)) if driver is not None else None

    def _listen_handoff(self) -> Path | None:
        return self.spec.listen.handoff if self.spec.listen is not None else None

    def _close_listeners(self) -> None:
        if self.acceptor is not None:
            self.acceptor.close()
            self.acceptor = None
        if self.handoff is not None:
            self.handoff.close()
            self.handoff = None

    def _connected(self) -> bool:
        return any(driver.connected for driver in self.drivers)

    def _initiator_done(self) -> bool:
        """The initiator stopped by itself (not by ``stop_connecting``) and nobody was told yet."""
        return (self._on_initiator_done is not None and not self._initiator_reported and not self.stopping
                and self.initiator is not None and self.initiator.phase is Phase.STOPPED
                and not self._connected())

    def _names(self) -> str:
        return ", ".join(driver.name for driver in self.drivers)
