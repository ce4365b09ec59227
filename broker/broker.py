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
"""

from __future__ import annotations

import errno
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
from broker.protocol import Envelope, Principal, ProtocolError
from broker.routing import RoutingTable

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
_IDENTITY_LOG_BYTES = 64

OPEN_BUS_WARNING = (
    "NO KEYS: this bus is open. Any process that can reach %s, %s or %s can read every event, command every "
    "session and send as any actor. Run without keys only for a demo on one host; give the topology a "
    "bus: {keys_dir: ...} section (docs/bus.md) for anything else.")


class InsecureEndpoint(ValueError):
    """A broker without keys asked to bind where other hosts can reach it."""


def check_open_endpoints(endpoints: Endpoints) -> None:
    """Without keys the broker binds loopback, ``ipc://`` or ``inproc://`` only; else ``InsecureEndpoint``."""
    for plane, endpoint in (("--router", endpoints.router), ("--xsub", endpoints.xsub), ("--xpub", endpoints.xpub)):
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
    ) -> None:
        """``policy``: the keys and rights of a bus with keys; None runs the bus open (loopback only)."""
        if policy is None:
            check_open_endpoints(endpoints)
        self.endpoints = endpoints
        self.instance = instance or new_instance()
        self.table = RoutingTable()
        self.policy = policy
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
        self._wake_fd: int | None = None

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
        for sock in (self.router, self.xsub, self.xpub):
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
        if self._wake_fd is not None and self._wake_fd in ready:
            _read_all(self._wake_fd)

    # ----------------------------------------------------------------- timers

    def _next_deadline(self) -> float:
        expiry = self.table.next_deadline()
        return self._next_heartbeat_s if expiry is None else min(self._next_heartbeat_s, expiry)

    def _on_timers(self, now_s: float) -> None:
        if now_s >= self._next_heartbeat_s:
            self._publish(protocol.broker_topic("heartbeat"),
                          {**self._broker_event(), "actors_up": len(self.table.up_names())})
            self._next_heartbeat_s = now_s + protocol.HEARTBEAT_INTERVAL_S
        for name in self.table.expire(now_s):
            log.warning("actor %s is down: silent for %.1f s", name, self.table.silence_limit_s)
            self._publish(protocol.actor_topic(name, "down"), self._actor_event(name))

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
        if env.kind == protocol.HELLO:
            self._admit(env, identity, now_s, "hello")
        elif env.kind == protocol.HEARTBEAT:
            if not self.table.on_seen(env.src, now_s):
                # The sender thinks it is registered but this broker does not know it (a broker
                # restart, or the actor was silent too long): a heartbeat counts as a hello.
                self._admit(env, identity, now_s, "heartbeat from an actor not up")
        elif env.kind in FORWARDED:
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
        if kind == protocol.HELLO:
            self._admit(env, identity, now_s, "hello")
        elif kind == protocol.HEARTBEAT:
            if not self.table.on_seen(env.src, now_s):
                self._admit(env, identity, now_s, "heartbeat from an actor not up")
        elif kind in FORWARDED:
            refusal = self._judge(principal, env)
            if refusal is not None:
                self._refuse(env, identity, refusal)
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
        log.info("actor %s is up (%s%s)", env.src, why, "" if returned else ", already up: a restart")
        reason = self._send(identity, protocol.welcome(env.src, corr=env.id, instance=self.instance).encode())
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
        if len(frames) != 2:
            log.warning("dropped a %d-frame event: expected topic and body", len(frames))
            return
        self._send_event(frames)

    def _on_event_keyed(self, frames: list[bytes], user: str | None) -> None:
        """``_on_event`` on a bus with keys: only a topic the publishing key may publish is passed on."""
        assert self.policy is not None
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
        """Subscriber -> publishers, so that PUB sockets filter at the source."""
        try:
            _send_frames(self.xsub, frames)
        except zmq.Again:
            log.warning("dropped a subscription change: publishers' queues are full")

    def _publish(self, topic: str, event: dict[str, Any]) -> None:
        self._send_event(protocol.encode_event(topic, event))

    def _send_event(self, frames: list[bytes]) -> None:
        try:
            _send_frames(self.xpub, frames)
        except zmq.Again:
            log.debug("dropped an event: subscribers' queues are full")

    def _broker_event(self) -> dict[str, Any]:
        return {"time_ns": self._wall_ns(), "actor": protocol.BROKER, "instance": self.instance}

    def _actor_event(self, name: str) -> dict[str, Any]:
        """``actor`` is the subject of the event; the broker, its publisher, is named by ``instance``."""
        return {"time_ns": self._wall_ns(), "actor": name, "instance": self.instance}


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


def serve(endpoints: Endpoints, policy: Policy | None = None) -> None:
    """Bind, serve until SIGTERM or SIGINT, close. Raises if an endpoint cannot be bound."""
    broker = Broker(endpoints, policy=policy)
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
        broker.run()
    finally:
        signal.set_wakeup_fd(previous_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        broker.close()
        os.close(read_fd)
        os.close(write_fd)
