"""The broker process: one ZeroMQ poll loop over the business and event planes.

The broker routes envelopes by ``dst`` and tracks who is alive; it reads only
``v``, ``kind``, ``src`` and ``dst`` and never looks at a body it forwards, so
it knows nothing of FIX. Everything it decides about routing and liveness is
in ``RoutingTable``; this module owns the sockets, the clock and the signals.

It holds nothing that matters across its own restart: actors say hello again
(on ``broker.started``, on a new ``instance`` in ``broker.heartbeat``, or
because their heartbeat is answered with a ``welcome``) and senders resend
what was not acknowledged. That is why a ``kill -9`` needs no recovery here.

No threads: one ``zmq.Poller`` whose timeout is the next deadline (the next
``broker.heartbeat`` or the next actor that would go silent). SIGTERM and
SIGINT wake the poll through a self-pipe, so stopping is prompt even though
pyzmq resumes a poll that a signal interrupted.

With a ``Policy`` (a bus with keys, ``broker/auth.py``) every socket is a
CURVE server, the ZAP handler is polled in the same loop, and each envelope
and event is checked against its key's rights. Without one, nothing of that
runs: the path of an envelope is the same as it always was, and the broker
warns at start that the bus is open to any local process.

With a ``PairLink`` the broker is one of a pair, primary or backup
(``broker/pair.py`` decides which one serves): it binds a PUB for its own
state and connects a SUB to its peer's (with keys: CURVE with the broker's
own key pair on both ends, so only the other broker is heard), tells its
state every ``HEARTBEAT_INTERVAL_S`` and at each change, and serves clients
only while it is active. Not active, it answers ``hello``, ``heartbeat``,
``deliver`` and ``command`` with ``passive`` (a hello may first make it
active: the client vote), drops everything else and passes no event on.
When it stops being active it sends ``passive`` to every actor it served
and forgets them. Each change is logged and published as ``broker.switch``.

``Leases`` (``broker/routing.py``): an actor that asks for a lease in its
hello (the coordinator) may send commands only while it holds it; a command
from a candidate without the lease is answered ``undeliverable`` with reason
``standby``. The lease passes to the next candidate when its holder goes
down, and the broker tells the new holder with a ``welcome``.
"""

from __future__ import annotations

import errno
import gc
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import zmq

from broker import protocol
from broker.auth import (
    DOMAIN_BUSINESS,
    DOMAIN_PEER,
    DOMAIN_PUBLISH,
    DOMAIN_SUBSCRIBE,
    REFUSED_COMMAND,
    REFUSED_DESTINATION,
    REFUSED_NAME,
    REFUSED_TOPIC,
    Policy,
    Refusal,
    Throttle,
    ZapHandler,
    command_audit,
    curve_server,
)
from broker.pair import Change, PairState, Role, State
from broker.protocol import Envelope, PeerState, Principal, ProtocolError
from broker.routing import Leases, RoutingTable

log = logging.getLogger("fixmesh.broker")

#: Kinds forwarded to ``dst`` unchanged.
FORWARDED = frozenset({protocol.DELIVER, protocol.ACK, protocol.COMMAND, protocol.REPLY})
#: Of those, the ones whose sender is told ``undeliverable`` when they cannot be forwarded. An ``ack``
#: or ``reply`` that cannot be forwarded is dropped: the original's sender retransmits or times out.
REFUSABLE = frozenset({protocol.DELIVER, protocol.COMMAND})

#: Frames queued per peer (and per subscriber) before ZeroMQ refuses more. On the ROUTER a full
#: queue makes a ``deliver`` or ``command`` undeliverable (``busy``); on the XPUB events are dropped,
#: because events are a live view, not a record.
QUEUE_FRAMES = 10_000
#: Messages taken from one socket per wake-up, so neither plane can starve the other or the timers.
MAX_BATCH = 1000
#: At stop, how long queued frames may still be written before the sockets are closed.
LINGER_MS = 100
#: Peer states queued on the pair's link: only the latest matters, a few cover a slow moment.
PEER_QUEUE_FRAMES = 16
#: The XSUB's subscription to every topic (ZeroMQ's subscribe message: 1, then the empty prefix).
SUBSCRIBE_ALL = b"\x01"
_IDENTITY_LOG_BYTES = 64

OPEN_BUS_WARNING = (
    "NO KEYS: this bus is open. Any process that can reach %s, %s or %s can read every event, command every "
    "session and send as any actor. Run without keys only for a demo on one host; give the topology a "
    "bus: {keys_dir: ...} section (docs/bus.md) for anything else.")


class InsecureEndpoint(ValueError):
    """A broker without keys asked to bind where other hosts can reach it."""


def check_open_endpoints(endpoints: Endpoints, pair: PairLink | None = None) -> None:
    """Without keys the broker binds loopback, ``ipc://`` or ``inproc://`` only; else ``InsecureEndpoint``."""
    planes = [("--router", endpoints.router), ("--xsub", endpoints.xsub), ("--xpub", endpoints.xpub)]
    if pair is not None:
        planes += [("--peer-bind", pair.bind), ("--peer-connect", pair.connect)]
    for plane, endpoint in planes:
        if not protocol.is_loopback_endpoint(endpoint):
            raise InsecureEndpoint(
                f"{plane} {endpoint} is reachable from other hosts, and a bus without keys refuses to start "
                "there; bind 127.0.0.1, or give the broker keys (--policy, written by `fixmesh broker --config "
                "TOPOLOGY` from the topology's bus: section; docs/bus.md)")


@dataclass(frozen=True, slots=True)
class Endpoints:
    router: str = protocol.DEFAULT_ROUTER_ENDPOINT
    xsub: str = protocol.DEFAULT_XSUB_ENDPOINT
    xpub: str = protocol.DEFAULT_XPUB_ENDPOINT


@dataclass(frozen=True, slots=True)
class PairLink:
    """One broker of a pair: its role, where it tells its state (bound) and where its peer tells its own."""

    role: Role
    bind: str
    connect: str


def new_instance() -> str:
    """A token new at every start: a client that sees it change knows the broker restarted."""
    return os.urandom(8).hex()


class Broker:
    """The ROUTER for envelopes, the XSUB/XPUB proxy for events, and the broker's own events."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
        instance: str | None = None,
        policy: Policy | None = None,
        pair: PairLink | None = None,
    ) -> None:
        """``policy``: the keys and rights of a bus with keys; None runs the bus open (loopback only).
        ``pair``: this broker is one of a pair (primary or backup); None: the only broker, always active."""
        if policy is None:
            check_open_endpoints(endpoints, pair)
        self.endpoints = endpoints
        self.instance = instance or new_instance()
        self.table = RoutingTable()
        self.leases = Leases()
        self.policy = policy
        self.link = pair
        self.pair = PairState(pair.role, monotonic(), self.instance) if pair is not None else None
        #: Whether clients are served: always without a pair, while active with one (read per frame).
        self._serving = self.pair is None
        self._monotonic = monotonic
        self._wall_ns = wall_ns
        self._stop_reason: str | None = None
        self._next_heartbeat_s = monotonic()
        self._context = zmq.Context()
        self._throttle = Throttle()
        self._zap: ZapHandler | None = None
        if policy is not None:
            # Bound before any socket: ZeroMQ lets a CURVE connection in when no ZAP handler is there.
            self._zap = ZapHandler(self._context, policy, self._refused)
            self._zap.start()
        self.router = self._socket(zmq.ROUTER)
        # Without MANDATORY a frame for a vanished identity is silently dropped; with it the
        # broker learns and can answer ``undeliverable``.
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # A restarted actor reconnects with the same name before the old connection is noticed
        # dead; the new connection must take the name over. With keys the clients set no identity
        # (the ROUTER makes a new one per connection) and nobody may take over another's.
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 0 if policy is not None else 1)
        self.router.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
        self.xsub = self._socket(zmq.XSUB)
        # Every topic, sent to each publisher as it attaches: an actor holds its events until it has seen this
        # (``actors.gateway.publisher``), so none is lost while its connection forms. Filtering is the XPUB's.
        self.xsub.send(SUBSCRIBE_ALL)
        self.xpub = self._socket(zmq.XPUB)
        if policy is not None:
            curve_server(self.router, policy, DOMAIN_BUSINESS)
            curve_server(self.xsub, policy, DOMAIN_PUBLISH)
            curve_server(self.xpub, policy, DOMAIN_SUBSCRIBE)
        self._poller = zmq.Poller()
        for sock in (self.router, self.xsub, self.xpub):
            self._poller.register(sock, zmq.POLLIN)
        if self._zap is not None:
            self._poller.register(self._zap.zap_socket, zmq.POLLIN)
        self.peer_pub: zmq.Socket[bytes] | None = None
        self.peer_sub: zmq.Socket[bytes] | None = None
        if pair is not None:
            # An XPUB, so that the peer's (re)connection is seen (its subscription) and answered with the state
            # at once, rather than up to an interval later.
            self.peer_pub = self._socket(zmq.XPUB)
            self.peer_pub.setsockopt(zmq.XPUB_VERBOSE, 1)
            self.peer_pub.setsockopt(zmq.SNDHWM, PEER_QUEUE_FRAMES)
            self.peer_sub = self._socket(zmq.SUB)
            self.peer_sub.setsockopt(zmq.RCVHWM, PEER_QUEUE_FRAMES)
            self.peer_sub.setsockopt(zmq.SUBSCRIBE, b"")
            if policy is not None:
                # Both brokers have the broker's key pair: the peer's PUB admits only that key, and the SUB
                # talks only to a server that holds it.
                curve_server(self.peer_pub, policy, DOMAIN_PEER)
                self.peer_sub.setsockopt(zmq.CURVE_SERVERKEY, policy.public_key)
                self.peer_sub.setsockopt(zmq.CURVE_PUBLICKEY, policy.public_key)
                self.peer_sub.setsockopt(zmq.CURVE_SECRETKEY, policy.secret_key)
            self._poller.register(self.peer_sub, zmq.POLLIN)
            self._poller.register(self.peer_pub, zmq.POLLIN)
        self._wake_fd: int | None = None
        self._refused_told: Throttle = Throttle()

    def _socket(self, kind: int) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = self._context.socket(kind)
        sock.setsockopt(zmq.LINGER, LINGER_MS)
        sock.setsockopt(zmq.SNDHWM, QUEUE_FRAMES)
        sock.setsockopt(zmq.RCVHWM, QUEUE_FRAMES)
        return sock

    # ----------------------------------------------------------------- lifecycle

    def bind(self) -> None:
        self.router.bind(self.endpoints.router)
        self.xsub.bind(self.endpoints.xsub)
        self.xpub.bind(self.endpoints.xpub)
        log.info("broker %s listening: router %s, xsub %s, xpub %s", self.instance,
                 self.endpoints.router, self.endpoints.xsub, self.endpoints.xpub)
        if self.link is not None and self.peer_pub is not None and self.peer_sub is not None:
            self.peer_pub.bind(self.link.bind)
            self.peer_sub.connect(self.link.connect)
            log.info("broker %s is the %s of a pair: its state on %s, its peer's from %s; starting, it serves "
                     "nobody until it has heard its peer or its peer has been silent %.1f s and a client comes",
                     self.instance, self.link.role.value, self.link.bind, self.link.connect,
                     self.pair.peer_silence_s if self.pair is not None else 0.0)
        if self.policy is None:
            log.warning(OPEN_BUS_WARNING, self.endpoints.router, self.endpoints.xsub, self.endpoints.xpub)
        else:
            log.info("bus with keys: broker key %s; %d principals: %s",
                     protocol.key_fingerprint(self.policy.public_key), len(self.policy.principals),
                     "; ".join(_rights_text(p) for p in self.policy.principals))

    def wake_on(self, fd: int) -> None:
        """Also wake the poll when ``fd`` is readable (the signal self-pipe)."""
        self._wake_fd = fd
        self._poller.register(fd, zmq.POLLIN)

    def stop(self, reason: str) -> None:
        """Ask the loop to return after the current wake-up; only sets a field, so a signal handler may call it."""
        self._stop_reason = reason

    def close(self) -> None:
        for sock in (self.router, self.xsub, self.xpub, self.peer_pub, self.peer_sub):
            if sock is not None:
                sock.close(linger=LINGER_MS)
        if self._zap is not None:
            self._zap.stop()
        self._context.term()

    def run(self) -> None:
        """Serve until ``stop``; announces ``broker.started`` first so that actors say hello again."""
        self._publish(protocol.broker_topic("started"), self._broker_event())
        while self._stop_reason is None:
            self.poll_once()
        log.info("broker %s stopping (%s); actors up: %s", self.instance, self._stop_reason,
                 ", ".join(self.table.up_names()) or "none")

    def poll_once(self) -> None:
        now_s = self._monotonic()
        self._on_timers(now_s)
        wait_ms = max(0, math.ceil((self._next_deadline() - now_s) * 1000))
        ready = dict(self._poller.poll(wait_ms))
        if self._zap is not None and self._zap.zap_socket in ready:
            self._zap.handle_ready()
        if self.router in ready:
            if self.policy is None:
                self._drain(self.router, self._on_business)
            else:
                self._drain_keyed(self.router, self._on_business_keyed)
        if self.xsub in ready:
            if self.policy is None:
                self._drain(self.xsub, self._on_event)
            else:
                self._drain_keyed(self.xsub, self._on_event_keyed)
        if self.xpub in ready:
            self._drain(self.xpub, self._on_subscription)
        if self.peer_sub is not None and self.peer_sub in ready:
            self._drain(self.peer_sub, self._on_peer)
        if self.peer_pub is not None and self.peer_pub in ready:
            self._drain(self.peer_pub, self._on_peer_joined)
        if self._wake_fd is not None and self._wake_fd in ready:
            _read_all(self._wake_fd)

    # ----------------------------------------------------------------- timers

    def _next_deadline(self) -> float:
        deadline = self._next_heartbeat_s
        expiry = self.table.next_deadline()
        if expiry is not None:
            deadline = min(deadline, expiry)
        if self.pair is not None:
            peer = self.pair.peer_deadline()
            if peer is not None:
                deadline = min(deadline, peer)
        return deadline

    def _on_timers(self, now_s: float) -> None:
        if now_s >= self._next_heartbeat_s:
            self._publish(protocol.broker_topic("heartbeat"),
                          {**self._broker_event(), "actors_up": len(self.table.up_names())})
            self._tell_peer()
            self._next_heartbeat_s = now_s + protocol.HEARTBEAT_INTERVAL_S
        down = self.table.expire(now_s)
        for name in down:
            log.warning("actor %s is down: silent for %.1f s", name, self.table.silence_limit_s)
            self._publish(protocol.actor_topic(name, "down"), self._actor_event(name))
        if down:
            for heir, lease in self.leases.on_down(down, self.table.is_up):
                self._grant(heir, lease, "its holder went down")
        if self.pair is not None and self.pair.peer_lost(now_s):
            log.warning("the %s broker's peer is silent (%.1f s without its state)%s", self.pair.role.value,
                        self.pair.peer_silence_s, "" if self._serving else
                        ": the next client's hello makes this broker active")

    # ----------------------------------------------------------------- the pair

    def _on_peer(self, frames: list[bytes]) -> None:
        pair = self.pair
        assert pair is not None
        if len(frames) != 1:
            log.warning("dropped a %d-frame message on the pair's link: expected one peer state", len(frames))
            return
        try:
            peer = PeerState.decode(frames[0])
        except ProtocolError as exc:
            log.warning("dropped a message on the pair's link: %s", exc)
            return
        role, now_s = Role(peer.role), self._monotonic()
        if role is pair.role:
            if self._refused_told.report(("same role", peer.instance), now_s) is not None:
                log.error("the peer on %s says it is the %s too (instance %s): one broker of a pair is the primary, "
                          "the other the backup (fixmesh broker --config T [--backup]); ignored",
                          self.link.connect if self.link else "?", role.value, peer.instance)
            return
        new_peer = peer.instance != pair.peer_instance
        change = pair.on_peer(role, State(peer.state), now_s, peer.instance, peer.heard or None)
        if change is not None:
            self._changed(change, f"peer {peer.instance} is {peer.state}")
        elif new_peer:
            self._tell_peer()  # a new peer process waits for us to name it before it decides: no need to wait

    def _on_peer_joined(self, frames: list[bytes]) -> None:
        """A subscription on the pair's link: the peer (re)connected; tell it the state now."""
        if frames and frames[0][:1] == b"\x01":
            log.info("the peer connected to the pair's link")
            self._tell_peer()

    def _tell_peer(self) -> None:
        if self.pair is None or self.peer_pub is None:
            return
        state = PeerState(self.pair.role.value, self.pair.state.value, self.instance,
                          self.pair.heard(self._monotonic()) or "").encode()
        try:
            self.peer_pub.send(state, _NOBLOCK)
        except zmq.Again:
            log.debug("the pair's link is full: a peer state dropped")

    def _changed(self, change: Change, cause: str) -> None:
        """A new pair state: log, tell the peer, publish ``broker.switch``; stop serving when no longer active."""
        assert self.pair is not None
        role = self.pair.role.value
        level = logging.WARNING if change.new is State.ACTIVE or change.old is State.ACTIVE else logging.INFO
        log.log(level, "%s broker %s: %s -> %s: %s (%s)", role, self.instance, change.old.value, change.new.value,
                change.why, cause)
        was_serving = self._serving
        self._serving = change.new is State.ACTIVE
        self._tell_peer()
        self._publish(protocol.broker_topic("switch"), {**self._broker_event(), "from": change.old.value,
                                                        "to": change.new.value, "why": change.why})
        if was_serving and not self._serving:
            self._stop_serving()

    def _stop_serving(self) -> None:
        """Every actor served until now is told ``passive`` (go to the other broker) and forgotten."""
        assert self.pair is not None
        names = self.table.up_names()
        for name in names:
            identity = self.table.route(name)
            if identity is None:
                continue
            self._send(identity, protocol.passive(name, corr="", instance=self.instance, role=self.pair.role.value,
                                                  state=self.pair.state.value).encode())
        log.warning("%s broker %s no longer serves: %d actor(s) told to go to the other broker: %s",
                    self.pair.role.value, self.instance, len(names), ", ".join(names) or "none")
        self.table = RoutingTable()
        self.leases.clear()

    def _unserved(self, env: Envelope, identity: bytes, now_s: float) -> bool:
        """A frame while this broker of a pair is not active: True when it is answered ``passive`` or dropped.

        A hello is the client vote: with the peer silent it makes this broker active, and is then served.
        """
        pair = self.pair
        assert pair is not None
        kind = env.kind
        if kind == protocol.HELLO:
            accepted, change = pair.on_client(now_s)
            if change is not None:
                self._changed(change, f"hello from {env.src}")
            if accepted:
                return False
        if kind in _ANSWERED_PASSIVE:
            if self._refused_told.report(("passive", env.src), now_s) is not None:
                log.info("%s broker %s (%s) refused %s from %s: passive, the peer serves", pair.role.value,
                         self.instance, pair.state.value, kind, env.src)
            reason = self._send(identity, protocol.passive(env.src, corr=env.id, instance=self.instance,
                                                           role=pair.role.value, state=pair.state.value).encode())
            if reason is not None:
                log.debug("could not tell %s that this broker is passive: %s", env.src, reason)
        return True

    def _grant(self, name: str, lease: str, why: str) -> None:
        """Tell ``name`` it holds ``lease`` now: a ``welcome`` with ``lease_held``."""
        identity = self.table.route(name)
        log.warning("lease %s passed to %s (%s)", lease, name, why)
        if identity is not None:
            self._send(identity, protocol.welcome(name, corr="", instance=self.instance, lease_held=True).encode())

    def _standby(self, env: Envelope, identity: bytes) -> bool:
        """A command from an actor that asked for a lease and does not hold it (or not on this connection):
        answered ``undeliverable`` (``standby``); True then."""
        leases = self.leases
        if leases.may_command(env.src) and (not leases.holds(env.src) or self.table.route(env.src) == identity):
            return False
        lease = leases.asked(env.src) or ""
        log.warning("refused a command from %s to %s: it does not hold its lease %s (%s holds it)", env.src, env.dst,
                    lease, leases.holder(lease) or "nobody")
        back = self._send(identity, protocol.undeliverable(env, protocol.REASON_STANDBY).encode())
        if back is not None:
            log.debug("could not tell %s that its command was refused: %s", env.src, back)
        return True

    # ----------------------------------------------------------------- business plane

    def _drain(self, sock: zmq.Socket[bytes], handle: Callable[[list[bytes]], None]) -> None:
        for _ in range(MAX_BATCH):
            try:
                frames = _recv_frames(sock)
            except zmq.Again:
                return
            handle(frames)

    def _on_business(self, frames: list[bytes]) -> None:
        if len(frames) != 2:
            log.warning("dropped a %d-frame message from %s: expected one envelope", len(frames) - 1,
                        _identity_text(frames[0]))
            return
        identity, payload = frames
        try:
            env = protocol.decode(payload)
        except ProtocolError as exc:
            log.warning("dropped a frame from %s: %s", _identity_text(identity), exc)
            return
        if env.src.encode("utf-8") != identity:
            log.warning("dropped a %s from %s claiming src %r: src must be the sender's identity",
                        env.kind, _identity_text(identity), env.src)
            return
        if env.src == protocol.BROKER:
            log.warning("dropped a %s from %s: the name is reserved for the broker", env.kind, _identity_text(identity))
            return
        now_s = self._monotonic()
        if not self._serving and self._unserved(env, identity, now_s):
            return
        if env.kind == protocol.HELLO:
            self._admit(env, identity, now_s, "hello")
        elif env.kind == protocol.HEARTBEAT:
            if not self.table.on_seen(env.src, now_s):
                # The sender thinks it is registered but this broker does not know it (a broker
                # restart, or the actor was silent too long): a heartbeat counts as a hello.
                self._admit(env, identity, now_s, "heartbeat from an actor not up")
            else:
                self._send(identity, protocol.broker_heartbeat(env.src, self._broker_event()).encode())
        elif env.kind in FORWARDED:
            if env.kind == protocol.COMMAND and self._standby(env, identity):
                return
            self.table.on_seen(env.src, now_s)
            self._forward(env, payload, identity)
        else:
            log.warning("dropped a %s from %s: only the broker sends that kind", env.kind, _identity_text(identity))

    def _drain_keyed(self, sock: zmq.Socket[bytes], handle: Callable[[list[bytes], str | None], None]) -> None:
        """As ``_drain``, with the ``User-Id`` ZeroMQ attached to the message: the name of the sender's key."""
        for _ in range(MAX_BATCH):
            try:
                first = sock.recv(_NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                user = first.get("User-Id")
            except zmq.ZMQError:
                user = None
            frames = [first.bytes]
            while sock.getsockopt(zmq.RCVMORE):
                frames.append(sock.recv(_NOBLOCK))
            handle(frames, user if isinstance(user, str) else None)

    def _on_business_keyed(self, frames: list[bytes], user: str | None) -> None:
        """``_on_business`` on a bus with keys: the key's principal, not the routing identity, says who sends.

        Per envelope, read once from the connection's ``User-Id``: never cached by routing identity, which a
        later connection could present again once the first has gone.
        """
        identity = frames[0]
        assert self.policy is not None
        principal = None if user is None else self.policy.by_name(user)
        if principal is None:
            log.warning("dropped a message from %s: no key known for the connection (User-Id %r)",
                        _identity_text(identity), user)
            return
        if len(frames) != 2:
            log.warning("dropped a %d-frame message from key %s: expected one envelope", len(frames) - 1, user)
            return
        payload = frames[1]
        try:
            env = protocol.decode(payload)
        except ProtocolError as exc:
            log.warning("dropped a frame from key %s: %s", user, exc)
            return
        kind = env.kind
        if not principal.may_use(env.src):
            self._refuse(env, identity, Refusal(
                REFUSED_NAME, f"key {principal.name} may not act as {env.src!r}: {kind} to {env.dst} refused",
                principal=principal.name, key=protocol.key_fingerprint(principal.public_key), kind=kind,
                src=env.src, dst=env.dst, command=_command_name(env)))
            return
        now_s = self._monotonic()
        if not self._serving and self._unserved(env, identity, now_s):
            return
        if kind == protocol.HELLO:
            self._admit(env, identity, now_s, "hello")
        elif kind == protocol.HEARTBEAT:
            known = self.table.route(env.src)
            if known is not None and known != identity:
                # With keys every connection has an identity of its own. An actor whose connection died and
                # came back (a cut link healed) while it stayed up here says no hello: it never knew it was
                # gone. Its heartbeat binds the name to the new connection, or whatever is routed to it would go
                # to the dead one for good; its ``up`` makes its peers resend what the old one may have lost.
                self._admit(env, identity, now_s, "heartbeat on a new connection")
            elif not self.table.on_seen(env.src, now_s):
                self._admit(env, identity, now_s, "heartbeat from an actor not up")
        elif kind in FORWARDED:
            refusal = self._judge(principal, env)
            if refusal is not None:
                self._refuse(env, identity, refusal)
                return
            if kind == protocol.COMMAND and self._standby(env, identity):
                return
            self.table.on_seen(env.src, now_s)
            reason = self._forward(env, payload, identity)
            if kind == protocol.COMMAND and principal.audit:
                outcome = "forwarded" if reason is None else reason
                log.info("audit: key %s as %s commanded %s: %s (%s)", principal.name, env.src, env.dst,
                         _command_name(env) or "?", outcome)
                self._publish(protocol.audit_topic("command"),
                              {**self._broker_event(), **command_audit(principal, env, outcome)})
        else:
            log.warning("dropped a %s from key %s: only the broker sends that kind", kind, principal.name)

    def _judge(self, principal: Principal, env: Envelope) -> Refusal | None:
        """Whether the key may send this forwarded kind to ``env.dst``; the refusal when not."""
        kind = env.kind
        if kind == protocol.COMMAND:
            if principal.may_command(env.dst):
                return None
            reason, text = REFUSED_COMMAND, f"key {principal.name} may not command {env.dst}"
        elif kind == protocol.REPLY or principal.may_deliver(env.dst):
            return None
        else:
            reason, text = REFUSED_DESTINATION, f"key {principal.name} may not send a {kind} to {env.dst}"
        return Refusal(reason, f"{text}: {kind} from {env.src} refused", principal=principal.name,
                       key=protocol.key_fingerprint(principal.public_key), kind=kind, src=env.src, dst=env.dst,
                       command=_command_name(env))

    def _refuse(self, env: Envelope, identity: bytes, refusal: Refusal) -> None:
        """Tell the sender (``undeliverable``, ``forbidden``) when its kind expects an answer; report the refusal."""
        if env.kind in REFUSABLE or env.kind == protocol.HELLO:
            back = self._send(identity, protocol.undeliverable(env, protocol.REASON_FORBIDDEN).encode())
            if back is not None:
                log.debug("could not tell key %s that its %s was refused: %s", refusal.principal, env.kind, back)
        self._refused(refusal)

    def _refused(self, refusal: Refusal) -> None:
        """Log and publish ``audit.refused``: the first of a kind at once, then once a minute with the count."""
        held = self._throttle.report(refusal.throttle_key(), self._monotonic())
        if held is None:
            return
        more = f" ({held} more like it since the last report)" if held else ""
        log.warning("refused: %s%s", refusal.text, more)
        body = {**self._broker_event(), **refusal.body()}
        if held:
            body["repeated"] = held
        self._publish(protocol.audit_topic("refused"), body)

    def _admit(self, env: Envelope, identity: bytes, now_s: float, why: str) -> None:
        returned = self.table.on_hello(env.src, identity, now_s)
        lease = protocol.lease_asked(env)
        held: bool | None = None
        if lease is not None:
            held = self.leases.ask(env.src, lease, self.table.is_up)
        log.info("actor %s is up (%s%s)%s", env.src, why, "" if returned else ", already up: a restart",
                 "" if lease is None else f"; lease {lease} held by {self.leases.holder(lease)}")
        reason = self._send(identity, protocol.welcome(env.src, corr=env.id, instance=self.instance,
                                                       lease_held=held).encode())
        if reason is not None:
            log.warning("could not welcome %s: %s", env.src, reason)
        self._publish(protocol.actor_topic(env.src, "up"), self._actor_event(env.src))

    def _forward(self, env: Envelope, payload: bytes, sender: bytes) -> str | None:
        """Pass ``payload`` to ``env.dst``; None when queued, else the reason (the sender told when it expects that)."""
        identity = self.table.route(env.dst)
        reason = protocol.REASON_DOWN if identity is None else self._send(identity, payload)
        if reason is None:
            return None
        if env.kind in REFUSABLE:
            log.debug("%s %s from %s to %s undeliverable: %s", env.kind, env.id, env.src, env.dst, reason)
            back = self._send(sender, protocol.undeliverable(env, reason).encode())
            if back is not None:
                log.warning("could not tell %s that %s %s is undeliverable: %s", env.src, env.kind, env.id, back)
        else:
            log.debug("dropped %s %s from %s to %s: %s", env.kind, env.corr, env.src, env.dst, reason)
        return reason

    def _send(self, identity: bytes, payload: bytes) -> str | None:
        """Queue one envelope for a peer; None when queued, else the ``undeliverable`` reason."""
        try:
            _send_frames(self.router, (identity, payload))
        except zmq.Again:
            return protocol.REASON_BUSY
        except zmq.ZMQError as exc:
            if exc.errno == errno.EHOSTUNREACH:
                return protocol.REASON_DOWN
            raise
        return None

    # ----------------------------------------------------------------- event plane

    def _on_event(self, frames: list[bytes]) -> None:
        """Publisher -> subscribers, unread: only the two-frame shape is checked, to spare subscribers."""
        if not self._serving:
            return  # a publisher that has not moved to the active broker yet: its subscribers are not here
        if len(frames) != 2:
            log.warning("dropped a %d-frame event: expected topic and body", len(frames))
            return
        self._send_event(frames)

    def _on_event_keyed(self, frames: list[bytes], user: str | None) -> None:
        """``_on_event`` on a bus with keys: only a topic the publishing key may publish is passed on."""
        assert self.policy is not None
        if not self._serving:
            return
        principal = None if user is None else self.policy.by_name(user)
        if principal is None:
            log.warning("dropped an event: no key known for the connection (User-Id %r)", user)
            return
        if len(frames) != 2:
            log.warning("dropped a %d-frame event from key %s: expected topic and body", len(frames), user)
            return
        try:
            topic = frames[0].decode("utf-8")
        except UnicodeDecodeError:
            log.warning("dropped an event from key %s: its topic is not UTF-8", user)
            return
        if not principal.may_publish(topic):
            self._refused(Refusal(REFUSED_TOPIC, f"key {principal.name} may not publish {topic!r}: event dropped",
                                  principal=principal.name, key=protocol.key_fingerprint(principal.public_key),
                                  topic=topic))
            return
        self._send_event(frames)

    def _on_subscription(self, frames: list[bytes]) -> None:
        """Subscriber -> broker: read and let go. The XPUB filters by itself, and the XSUB takes every topic."""

    def _publish(self, topic: str, event: dict[str, Any]) -> None:
        self._send_event(protocol.encode_event(topic, event))

    def _send_event(self, frames: list[bytes]) -> None:
        try:
            _send_frames(self.xpub, frames)
        except zmq.Again:
            log.debug("dropped an event: subscribers' queues are full")

    def _broker_event(self) -> dict[str, Any]:
        event: dict[str, Any] = {"time_ns": self._wall_ns(), "actor": protocol.BROKER, "instance": self.instance}
        if self.pair is not None:
            event["role"] = self.pair.role.value
            event["state"] = self.pair.state.value
        return event

    def _actor_event(self, name: str) -> dict[str, Any]:
        """``actor`` is the subject of the event; the broker, its publisher, is named by ``instance``."""
        return {"time_ns": self._wall_ns(), "actor": name, "instance": self.instance}


#: What a broker of a pair that is not active answers ``passive``; acks, replies and the rest it drops.
_ANSWERED_PASSIVE = frozenset({protocol.HELLO, protocol.HEARTBEAT, protocol.DELIVER, protocol.COMMAND})

#: Plain-int flags: pyzmq's ``send_multipart``/``recv_multipart`` combine enum flags on every
#: call, which costs the broker more than the copying of a small frame (3 us per envelope).
_NOBLOCK = int(zmq.NOBLOCK)
_MORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)


def _recv_frames(sock: zmq.Socket[bytes]) -> list[bytes]:
    """All frames of the next message; raises ``zmq.Again`` when none is waiting."""
    frames = [sock.recv(_NOBLOCK)]
    while sock.getsockopt(zmq.RCVMORE):
        frames.append(sock.recv(_NOBLOCK))
    return frames


def _send_frames(sock: zmq.Socket[bytes], frames: Sequence[bytes]) -> None:
    """One message of ``frames``; raises ``zmq.Again`` (nothing sent) when the peer's queue is full.

    ZeroMQ queues a multipart message atomically: once the first frame is taken, the rest are too.
    """
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        sock.send(frame, _MORE_NOBLOCK if i < last else _NOBLOCK)


def _identity_text(identity: bytes) -> str:
    return repr(identity[:_IDENTITY_LOG_BYTES])


def _command_name(env: Envelope) -> str:
    """The ``cmd`` of a command's body, for logs and audit events; empty for any other kind."""
    if env.kind != protocol.COMMAND or not isinstance(env.body, dict):
        return ""
    name = env.body.get("cmd")
    return name if isinstance(name, str) else ""


def _rights_text(p: Principal) -> str:
    """One principal's rights in a few words, for the broker's start-up log."""
    parts = [", ".join([*sorted(p.names), *(f"{prefix}*" for prefix in p.name_prefixes)]) or "no name"]
    if p.deliver_to:
        parts.append("delivers to " + ", ".join(sorted(p.deliver_to)))
    if p.command_to:
        parts.append("commands " + ", ".join(sorted(p.command_to)) + (" (audited)" if p.audit else ""))
    if p.publish:
        parts.append("publishes " + ", ".join(f"{t}*" for t in p.publish))
    if p.subscribe:
        parts.append("subscribes")
    return f"{p.name} as {' / '.join(parts)}"


def _read_all(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def serve(endpoints: Endpoints, policy: Policy | None = None, pair: PairLink | None = None) -> None:
    """Bind, serve until SIGTERM or SIGINT, close. Raises if an endpoint cannot be bound."""
    broker = Broker(endpoints, policy=policy, pair=pair)
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        broker.stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous_fd = signal.set_wakeup_fd(write_fd)
    try:
        broker.wake_on(read_fd)
        broker.bind()
        gc.freeze()  # what start-up built stays; full collections walk only what routing allocates
        broker.run()
    finally:
        signal.set_wakeup_fd(previous_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        broker.close()
        os.close(read_fd)
        os.close(write_fd)
