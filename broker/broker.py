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
from broker.protocol import Envelope, ProtocolError
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
    ) -> None:
        self.endpoints = endpoints
        self.instance = instance or new_instance()
        self.table = RoutingTable()
        self._monotonic = monotonic
        self._wall_ns = wall_ns
        self._stop_reason: str | None = None
        self._next_heartbeat_s = monotonic()
        self._context = zmq.Context()
        self.router = self._socket(zmq.ROUTER)
        # Without MANDATORY a frame for a vanished identity is silently dropped; with it the
        # broker learns and can answer ``undeliverable``.
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # A restarted actor reconnects with the same name before the old connection is noticed
        # dead; the new connection must take the name over.
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.router.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
        self.xsub = self._socket(zmq.XSUB)
        self.xpub = self._socket(zmq.XPUB)
        self._poller = zmq.Poller()
        for sock in (self.router, self.xsub, self.xpub):
            self._poller.register(sock, zmq.POLLIN)
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
        if self.router in ready:
            self._drain(self.router, self._on_business)
        if self.xsub in ready:
            self._drain(self.xsub, self._on_event)
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
            self._forward(env, payload)
        else:
            log.warning("dropped a %s from %s: only the broker sends that kind", env.kind, _identity_text(identity))

    def _admit(self, env: Envelope, identity: bytes, now_s: float, why: str) -> None:
        returned = self.table.on_hello(env.src, identity, now_s)
        log.info("actor %s is up (%s%s)", env.src, why, "" if returned else ", already up: a restart")
        reason = self._send(identity, protocol.welcome(env.src, corr=env.id, instance=self.instance).encode())
        if reason is not None:
            log.warning("could not welcome %s: %s", env.src, reason)
        self._publish(protocol.actor_topic(env.src, "up"), self._actor_event(env.src))

    def _forward(self, env: Envelope, payload: bytes) -> None:
        identity = self.table.route(env.dst)
        reason = protocol.REASON_DOWN if identity is None else self._send(identity, payload)
        if reason is None:
            return
        if env.kind in REFUSABLE:
            log.debug("%s %s from %s to %s undeliverable: %s", env.kind, env.id, env.src, env.dst, reason)
            back = self._send(env.src.encode("utf-8"), protocol.undeliverable(env, reason).encode())
            if back is not None:
                log.warning("could not tell %s that %s %s is undeliverable: %s", env.src, env.kind, env.id, back)
        else:
            log.debug("dropped %s %s from %s to %s: %s", env.kind, env.corr, env.src, env.dst, reason)

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


def _read_all(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def serve(endpoints: Endpoints) -> None:
    """Bind, serve until SIGTERM or SIGINT, close. Raises if an endpoint cannot be bound."""
    broker = Broker(endpoints)
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
