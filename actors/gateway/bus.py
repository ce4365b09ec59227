"""The actor's end of the bus: one client per actor process, driven by the actor's own poll loop.

An actor owns its loop (STYLE principle 3), so ``BusClient`` never blocks and
never starts a thread: the actor polls ``sockets`` with its other sockets,
calls ``handle_readable()`` when one is readable and ``on_timer()`` at
``next_deadline()``. Time comes from the ``now`` callable, so tests step it.

Sockets, all connected to the broker:

* DEALER (identity = the actor's name) to the ROUTER: envelopes both ways.
* PUB to the XSUB: the actor's events, ``actor.<name>.heartbeat`` among them.
* SUB to the XPUB (``actor.`` and ``broker.``): how the client learns that a
  peer came up or that the broker restarted.

Reliability of ``deliver``: every un-acked deliver stays in a bounded
in-memory outbox and is sent again when its peer comes up
(``actor.<dst>.up``), when the broker restarted (a ``welcome`` with a new
``instance``), and when no ack came within the retransmit timeout (doubling
per attempt, capped). The client does not persist: after the actor's own
restart its FIX store is the durable copy and the actor delivers again.
Duplicates are expected; receivers dedupe by ``(src, id)``. ``command`` and
``reply`` are not retransmitted: the caller owns their timeouts.

Acks may be delayed (``ack_delay_s``): an ack owed to a peer rides on the
next ``deliver`` to that peer, and what is still owed after the delay, or
more than ``MAX_ACKS_PER_ENVELOPE`` of them, leaves in one ``ack`` envelope.
In a gateway pair the ExecutionReport going back carries the ack of its
order, so an order costs two envelopes through the broker instead of four.
An ack only lets the sender forget a deliver it would otherwise retransmit,
so a delay of milliseconds against a retransmit timeout of seconds costs
nothing but a little outbox room.

Bounded queues and their policy: the outbox holds ``max_outbox`` delivers and
then refuses (``Outcome.FULL``) until acks drain it; the DEALER queues at most
``max_outbox`` plus ``CONTROL_HEADROOM`` frames and only while connected
(``IMMEDIATE``), so nothing piles up for a dead broker: a frame it cannot take
is retried (deliver) or reported as not sent (the other kinds).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import zmq

from actors.fix.timefmt import Instant
from actors.shell import clock
from broker import protocol
from broker.protocol import Envelope, IdSource, ProtocolError

log = logging.getLogger("fixmesh.bus")

DEFAULT_MAX_OUTBOX = 10_000
DEFAULT_RETRANSMIT_AFTER_S = 2.0
#: Upper bound of the doubling retransmit interval, so a peer that is down for long costs little.
MAX_RETRANSMIT_AFTER_S = 30.0
#: How soon to try again when the DEALER could not take a frame (no connection yet, or queue full).
LINK_RETRY_S = 0.1
#: DEALER queue room beyond the outbox, for hellos, heartbeats, acks, commands and replies.
CONTROL_HEADROOM = 1000
#: Frames read from one socket per ``handle_readable`` call, so one busy socket cannot starve the loop.
MAX_BATCH = 1000
#: Incoming frames queued per socket before ZeroMQ stops reading from the broker.
RECEIVE_QUEUE_FRAMES = 10_000
#: Acks owed to one peer that make it worth an envelope of their own before the delay is up.
MAX_ACKS_PER_ENVELOPE = 256
_MAX_IDENTITY_BYTES = 255


class Outcome(Enum):
    """What became of a ``deliver``: back pressure is a value, never an exception."""

    #: Handed to ZeroMQ; kept in the outbox until acked.
    SENT = "sent"
    #: Kept in the outbox, not sent yet (no connection or the link is full); retried soon.
    QUEUED = "queued"
    #: Refused: the outbox is full. Keep the message and try again after acks have drained it.
    FULL = "full"


@dataclass(slots=True)
class _Pending:
    dst: str
    id: str
    frame: bytes
    due_s: float = 0.0
    attempts: int = 0
    refused: str = ""


class BusClient:
    """Envelopes, events, liveness and retransmission for one actor."""

    def __init__(
        self,
        name: str,
        router_endpoint: str,
        xsub_endpoint: str,
        *,
        xpub_endpoint: str | None = None,
        now: Callable[[], Instant] = clock.now,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        retransmit_after_s: float = DEFAULT_RETRANSMIT_AFTER_S,
        on_undeliverable: Callable[[Envelope], None] | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        on_ack: Callable[[str], None] | None = None,
        ids: IdSource | None = None,
        ack_delay_s: float = 0.0,
        watch: Iterable[str] | None = None,
    ) -> None:
        """Connect and say hello.

        ``xpub_endpoint`` enables the SUB socket; without it the client still
        recovers (its heartbeat is answered with a ``welcome`` by a restarted
        broker, and retransmits are timed) but learns of peers and restarts later.
        ``ack_delay_s`` > 0 holds acks back that long for a deliver to carry them.
        ``watch`` names the actors whose ``actor.<name>.*`` events this client needs (the peers it
        delivers to); None means every actor. An actor that hears every other actor's heartbeat
        pays for the whole deployment: with 100 actors that is 10,000 events a second in all.
        """
        identity = name.encode("utf-8")
        if not name or name == protocol.BROKER or len(identity) > _MAX_IDENTITY_BYTES or identity[0] == 0:
            raise ValueError(f"invalid actor name {name!r}: it is the ZeroMQ routing identity")
        if max_outbox < 1 or retransmit_after_s <= 0 or ack_delay_s < 0:
            raise ValueError("max_outbox must be at least 1, retransmit_after_s positive, ack_delay_s not negative")
        self.name = name
        self.max_outbox = max_outbox
        self.retransmit_after_s = retransmit_after_s
        self._now = now
        self._on_undeliverable = on_undeliverable
        self._on_event = on_event
        self._on_ack = on_ack
        self._ids = ids or IdSource()
        self._outbox: dict[str, _Pending] = {}
        self._due: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self.ack_delay_s = ack_delay_s
        #: Ids acknowledged but not sent yet, by the peer they go to.
        self._owed: dict[str, list[str]] = {}
        self._owed_due_s: float | None = None
        #: The broker instance of the last welcome; None until the first.
        self.broker_instance: str | None = None
        self.welcomed = False

        self._context = zmq.Context()
        self.dealer: zmq.Socket[bytes] = self._context.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.ROUTING_ID, identity)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.setsockopt(zmq.IMMEDIATE, 1)
        self.dealer.setsockopt(zmq.SNDHWM, max_outbox + CONTROL_HEADROOM)
        self.dealer.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE_FRAMES)
        self.dealer.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
        # ZMTP heartbeats notice a broker host that vanished without closing TCP, on the bus's own timing.
        interval_ms = int(protocol.HEARTBEAT_INTERVAL_S * 1000)
        self.dealer.setsockopt(zmq.HEARTBEAT_IVL, interval_ms)
        self.dealer.setsockopt(zmq.HEARTBEAT_TIMEOUT, interval_ms * protocol.LIVENESS)
        self.dealer.connect(router_endpoint)
        self.pub: zmq.Socket[bytes] = self._context.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.connect(xsub_endpoint)
        self.sub: zmq.Socket[bytes] | None = None
        if xpub_endpoint is not None:
            self.sub = self._context.socket(zmq.SUB)
            self.sub.setsockopt(zmq.LINGER, 0)
            self.sub.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE_FRAMES)
            self.sub.connect(xpub_endpoint)
            actors = [protocol.ACTOR_TOPICS] if watch is None else \
                [protocol.actor_topic(n, "") for n in sorted({name, *watch})]
            for prefix in (*actors, protocol.BROKER_TOPICS):
                self.subscribe(prefix)

        start = now().mono_s
        self._hello_due_s = start
        self._heartbeat_due_s = start + protocol.HEARTBEAT_INTERVAL_S
        self._hello(start)

    # ----------------------------------------------------------------- the actor's loop

    @property
    def sockets(self) -> tuple[zmq.Socket[bytes], ...]:
        """The sockets to poll for reading; call ``handle_readable`` when any is readable."""
        return (self.dealer,) if self.sub is None else (self.dealer, self.sub)

    def next_deadline(self) -> float:
        """Monotonic seconds of the next hello, heartbeat or retransmit."""
        deadline = self._heartbeat_due_s
        if not self.welcomed:
            deadline = min(deadline, self._hello_due_s)
        if self._due:
            deadline = min(deadline, self._due[0][0])
        if self._owed_due_s is not None:
            deadline = min(deadline, self._owed_due_s)
        return deadline

    def on_timer(self) -> None:
        now = self._now()
        if not self.welcomed and now.mono_s >= self._hello_due_s:
            self._hello(now.mono_s)
        if now.mono_s >= self._heartbeat_due_s:
            self._heartbeat(now)
        if self._owed_due_s is not None and now.mono_s >= self._owed_due_s:
            self.flush_acks()
        self._retransmit_due(now.mono_s)

    def handle_readable(self) -> list[Envelope]:
        """Process what arrived; returns the ``deliver``, ``command`` and ``reply`` envelopes for the actor,
        and the ``undeliverable`` answers to its commands. Delivers must be acked (``ack``) once persisted."""
        now_s = self._now().mono_s
        received: list[Envelope] = []
        for _ in range(MAX_BATCH):
            try:
                frame = self.dealer.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            self._on_envelope(frame, now_s, received)
        if self.sub is not None:
            for _ in range(MAX_BATCH):
                try:
                    frames = self.sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_event_frames(frames, now_s)
        self._retransmit_due(now_s)
        return received

    def close(self) -> None:
        self.flush_acks()
        for sock in (self.dealer, self.pub, self.sub):
            if sock is not None:
                sock.close(linger=0)
        self._context.term()

    def __enter__(self) -> BusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- sending

    def deliver(self, dst: str, id: str, body: Any) -> Outcome:
        """Send ``body`` to ``dst`` until it is acked. ``id`` is unique per sender; delivering an id that is
        still pending replaces it and sends it again."""
        if id not in self._outbox and len(self._outbox) >= self.max_outbox:
            return Outcome.FULL
        acks = self._take_owed(dst)
        entry = _Pending(dst, id, Envelope(kind=protocol.DELIVER, src=self.name, dst=dst, id=id, body=body,
                                           acks=acks).encode())
        self._outbox[id] = entry
        now_s = self._now().mono_s
        if self._send(entry.frame):
            entry.attempts = 1
            self._schedule(entry, now_s + self._backoff_s(entry.attempts))
            return Outcome.SENT
        self._schedule(entry, now_s + LINK_RETRY_S)
        return Outcome.QUEUED

    def ack(self, envelope: Envelope) -> bool:
        """Acknowledge a received deliver (after persisting it); False when the link could not take it,
        in which case the sender retransmits and the actor acks the duplicate. With ``ack_delay_s`` the
        ack is owed and sent later (always True here; a later send the link refuses is the same case)."""
        if self.ack_delay_s <= 0:
            return self._send_acks(envelope.src, (envelope.id,))
        owed = self._owed.setdefault(envelope.src, [])
        owed.append(envelope.id)
        if self._owed_due_s is None:
            self._owed_due_s = self._now().mono_s + self.ack_delay_s
        if len(owed) >= MAX_ACKS_PER_ENVELOPE:
            self._send_acks(envelope.src, self._take_owed(envelope.src))
        return True

    def flush_acks(self) -> None:
        """Send every owed ack now, one envelope per peer."""
        for dst in list(self._owed):
            self._send_acks(dst, self._take_owed(dst))

    def _take_owed(self, dst: str) -> tuple[str, ...]:
        owed = self._owed.pop(dst, None)
        if not self._owed:
            self._owed_due_s = None
        return tuple(owed) if owed else ()

    def _send_acks(self, dst: str, ids: tuple[str, ...]) -> bool:
        if not ids:
            return True
        return self._send(Envelope(kind=protocol.ACK, src=self.name, dst=dst, corr=ids[0], acks=ids[1:]).encode())

    def command(self, dst: str, body: Any) -> str | None:
        """Send a command; its id (the ``corr`` of the reply), or None when the link could not take it."""
        id = self._ids.next()
        sent = self._send(Envelope(kind=protocol.COMMAND, src=self.name, dst=dst, id=id, body=body).encode())
        return id if sent else None

    def reply(self, envelope: Envelope, body: Any) -> bool:
        """Answer a command; False when the link could not take it."""
        return self._send(Envelope(kind=protocol.REPLY, src=self.name, dst=envelope.src, id=self._ids.next(),
                                   corr=envelope.id, body=body).encode())

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        """Publish an event, stamped with ``actor`` and (unless given) ``time_ns``. Events are a live view:
        with no subscriber, or a slow one, they are dropped."""
        stamped = {"time_ns": self._now().utc_ns, **event, "actor": self.name}
        self.pub.send_multipart(protocol.encode_event(topic, stamped), zmq.NOBLOCK)

    def subscribe(self, prefix: str) -> None:
        """Also receive events whose topic starts with ``prefix`` (passed to ``on_event``)."""
        if self.sub is None:
            raise RuntimeError("this client has no SUB socket: pass xpub_endpoint")
        self.sub.setsockopt(zmq.SUBSCRIBE, prefix.encode("utf-8"))

    @property
    def pending(self) -> int:
        """Delivers not yet acked."""
        return len(self._outbox)

    def is_pending(self, id: str) -> bool:
        return id in self._outbox

    # ----------------------------------------------------------------- receiving

    def _on_envelope(self, frame: bytes, now_s: float, received: list[Envelope]) -> None:
        try:
            env = protocol.decode(frame)
        except ProtocolError as exc:
            log.warning("%s dropped a frame from the broker: %s", self.name, exc)
            return
        if env.dst != self.name:
            log.warning("%s dropped a %s addressed to %r", self.name, env.kind, env.dst)
        elif env.kind == protocol.WELCOME:
            self._on_welcome(env, now_s)
        elif env.kind == protocol.ACK:
            self._on_acks(env)
        elif env.kind == protocol.UNDELIVERABLE:
            self._on_refused(env, received)
        elif env.kind in (protocol.DELIVER, protocol.COMMAND, protocol.REPLY):
            if env.acks:
                self._on_acks(env)
            received.append(env)
        else:
            log.warning("%s dropped a %s from %s: not a kind the broker sends to actors", self.name, env.kind, env.src)

    def _on_acks(self, env: Envelope) -> None:
        for id in env.acknowledged():
            entry = self._outbox.get(id)
            if entry is None or entry.dst != env.src:
                continue
            del self._outbox[id]
            if self._on_ack is not None:
                self._on_ack(id)
        if not self._outbox:
            self._due.clear()

    def _on_welcome(self, env: Envelope, now_s: float) -> None:
        body = env.body if isinstance(env.body, dict) else {}
        instance = body.get("instance")
        instance = instance if isinstance(instance, str) else ""
        restarted = self.broker_instance is not None and instance != self.broker_instance
        if not self.welcomed or restarted:
            log.info("%s welcomed by broker %s%s", self.name, instance, " (restarted)" if restarted else "")
        self.welcomed = True
        self.broker_instance = instance
        if restarted:
            # Whatever was in flight through the old broker may be lost, acks included.
            self._resend(self._outbox.values(), now_s)

    def _on_refused(self, env: Envelope, received: list[Envelope]) -> None:
        entry = self._outbox.get(env.corr)
        if entry is None:
            received.append(env)  # a command's, or a deliver acked meanwhile (the caller ignores it)
            return
        body = env.body if isinstance(env.body, dict) else {}
        entry.refused = str(body.get("reason", ""))
        log.debug("%s: deliver %s to %s undeliverable (%s); kept for %s's return",
                  self.name, entry.id, entry.dst, entry.refused, entry.dst)
        if self._on_undeliverable is not None:
            self._on_undeliverable(env)

    def _on_event_frames(self, frames: list[bytes], now_s: float) -> None:
        try:
            topic, event = protocol.decode_event(frames)
        except ProtocolError as exc:
            log.debug("%s dropped an event: %s", self.name, exc)
            return
        actor = protocol.parse_actor_topic(topic)
        if actor is not None:
            name, what = actor
            if what == "up" and name != self.name:
                self._resend((e for e in self._outbox.values() if e.dst == name), now_s)
            elif what == "down" and name == self.name and self.welcomed:
                log.warning("%s: the broker reported this actor down; saying hello again", self.name)
                self._need_hello(now_s)
        elif topic.startswith(protocol.BROKER_TOPICS):
            instance = event.get("instance")
            if self.broker_instance is not None and isinstance(instance, str) and instance != self.broker_instance \
                    and self.welcomed:
                log.info("%s: broker restarted (instance %s, was %s); saying hello again",
                         self.name, instance, self.broker_instance)
                self._need_hello(now_s)
        if self._on_event is not None:
            self._on_event(topic, event)

    # ----------------------------------------------------------------- hello, heartbeat, retransmit

    def _need_hello(self, now_s: float) -> None:
        self.welcomed = False
        self._hello(now_s)

    def _hello(self, now_s: float) -> None:
        hello = Envelope(kind=protocol.HELLO, src=self.name, dst=protocol.BROKER, id=self._ids.next())
        sent = self._send(hello.encode())
        # Sent but unanswered: the broker may be restarting; not sent: no connection yet, retry soon.
        self._hello_due_s = now_s + (protocol.HEARTBEAT_INTERVAL_S if sent else LINK_RETRY_S)

    def _heartbeat(self, now: Instant) -> None:
        if self.welcomed:
            self._send(Envelope(kind=protocol.HEARTBEAT, src=self.name, dst=protocol.BROKER).encode())
        self.publish(protocol.actor_topic(self.name, "heartbeat"), {"time_ns": now.utc_ns})
        self._heartbeat_due_s = now.mono_s + protocol.HEARTBEAT_INTERVAL_S

    def _backoff_s(self, attempts: int) -> float:
        return min(self.retransmit_after_s * 2.0 ** max(0, attempts - 1), MAX_RETRANSMIT_AFTER_S)

    def _schedule(self, entry: _Pending, due_s: float) -> None:
        entry.due_s = due_s
        heapq.heappush(self._due, (due_s, next(self._order), entry.id))
        if len(self._due) > 4 * len(self._outbox) + 64:
            # Rescheduling leaves stale heap items behind; rebuild before they outnumber the outbox.
            self._due = [(e.due_s, next(self._order), e.id) for e in self._outbox.values()]
            heapq.heapify(self._due)

    def _resend(self, entries: Any, now_s: float) -> None:
        """Make entries due now, with a fresh backoff: something changed that makes success likely."""
        for entry in list(entries):
            entry.attempts = 0
            self._schedule(entry, now_s)
        self._retransmit_due(now_s)

    def _retransmit_due(self, now_s: float) -> None:
        while self._due and self._due[0][0] <= now_s:
            due_s, _, id = heapq.heappop(self._due)
            entry = self._outbox.get(id)
            if entry is None or entry.due_s != due_s:
                continue
            if not self._send(entry.frame):
                self._defer_due(entry, now_s)
                return
            entry.attempts += 1
            self._schedule(entry, now_s + self._backoff_s(entry.attempts))

    def _defer_due(self, first: _Pending, now_s: float) -> None:
        """The link took nothing: every entry due now waits ``LINK_RETRY_S``, so the loop does not spin."""
        later_s = now_s + LINK_RETRY_S
        waiting = [first]
        while self._due and self._due[0][0] <= now_s:
            due_s, _, id = heapq.heappop(self._due)
            entry = self._outbox.get(id)
            if entry is not None and entry.due_s == due_s:
                waiting.append(entry)
        for entry in waiting:
            self._schedule(entry, later_s)

    def _send(self, frame: bytes) -> bool:
        try:
            self.dealer.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True
