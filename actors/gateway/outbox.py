"""The bus client's protocol half: outbox, acks, hello and heartbeats, with no socket and no clock.

``BusClient`` (``actors.gateway.bus``) owns the ZeroMQ sockets and reads the
clock; everything it decides (what to send, when, and what an arriving frame
means) is here, so it is tested by stepping plain numbers, never by sleeping
(STYLE principles 1, 2 and 12; ``broker/routing.py`` is the model). The class
never sends: it returns encoded frames for the DEALER and event frames for
the PUB, and is told when the link refused one. It logs what it drops or
decides through ``logging``, whose handlers are the process's.

Rules (the whole of it):

* Frames. A frame returned by ``hello``, ``deliver`` or ``retransmit`` counts
  as taken by the link unless the caller calls ``refused(now_s)`` straight
  after. A refused hello or deliver is tried again ``LINK_RETRY_S`` later,
  the refused attempt not counted; a refused retransmit makes every deliver
  due by then wait ``LINK_RETRY_S`` too (the link is full: trying the rest
  now would spin).
  Frames from ``ack``, ``flush_acks``, ``heartbeat``, ``command`` and ``reply``
  are never retried: the caller tells its own caller they were not sent.
* Outbox. ``deliver`` keeps each deliver until its ``dst`` acknowledges the id
  (an ack from any other actor is ignored), at most ``max_outbox`` of them:
  one more is refused with ``Outcome.FULL``; delivering a pending id replaces
  it. A deliver the link took is due again ``retransmit_after_s`` later,
  doubling per attempt, at most ``MAX_RETRANSMIT_AFTER_S``.
* Resend. ``actor.<dst>.up`` makes every deliver to ``dst`` due at once, and a
  ``welcome`` with a new broker ``instance`` makes all of them due (whatever
  was in flight through the old broker may be lost, acks included); both
  start the back-off afresh.
* Acks. With ``ack_delay_s`` 0 an ack's frame is returned at once. Otherwise
  the ack is owed: it rides in the ``acks`` of the next deliver to its peer;
  ``MAX_ACKS_PER_ENVELOPE`` owed to one peer leave together at once; and from
  ``ack_delay_s`` after the first owed ack ``acks_due`` is True and
  ``flush_acks`` makes one ``ack`` envelope per peer.
* Hello. A hello is due at start and, until a ``welcome``, again every
  ``HEARTBEAT_INTERVAL_S``. Once welcomed, an ``actor.<self>.down`` event or a
  broker event with another ``instance`` makes the client unwelcomed with a
  hello due at once.
* Heartbeat. Every ``HEARTBEAT_INTERVAL_S``: a ``heartbeat`` envelope while
  welcomed (until then the hello retries speak for the client) and the
  ``actor.<self>.heartbeat`` event always.
* Receiving. ``receive`` sorts one frame into ``Received``: for the actor go
  delivers, commands, replies and the undeliverables of anything not pending;
  acks (also those riding on a deliver) forget their delivers; an
  undeliverable of a pending deliver is reported and the deliver kept for its
  peer's return. Malformed or misaddressed frames are logged and dropped. An
  undeliverable with reason ``forbidden`` (a bus with keys: this actor's key
  may not do that) is logged as an error, the first one only.
* A pair of brokers (``brokers=2``: the primary, index 0, first). The client
  talks to one broker at a time and ``switch`` says when to move to the
  other: welcomed, when nothing came from the broker (any frame or event,
  ``heard``) for ``BROKER_SILENCE_S`` (only a client that hears the broker's
  events can tell: ``watches_broker``); not welcomed, when no welcome came
  within ``SEEK_S`` of the last switch or hello; at once when the broker
  answered ``passive`` (or a ``broker.*`` event of the broker that welcomed
  the client says it is passive now), but never sooner than
  ``MIN_SWITCH_S`` after the last switch, so two refusing brokers cost four
  hellos a second, not a spin. A switch leaves the client unwelcomed with a
  hello due at once; the welcome of the other broker has another
  ``instance``, so every un-acked deliver goes again (Resend, above).
  ``passive`` with a single broker: a hello again an interval later.
* Lease (``lease=NAME``: the coordinator). The hello and heartbeat ask the
  broker for the lease; ``lease_held`` is what the last ``welcome`` said
  (a later welcome may grant it), and becomes False when the client is not
  welcomed or a command of its was refused ``standby``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from actors.fix.timefmt import Instant
from broker import protocol
from broker.protocol import Envelope, IdSource, ProtocolError

log = logging.getLogger("fixmesh.bus")

DEFAULT_MAX_OUTBOX = 10_000
DEFAULT_RETRANSMIT_AFTER_S = 2.0
#: Upper bound of the doubling retransmit interval, so a peer that is down for long costs little.
MAX_RETRANSMIT_AFTER_S = 30.0
#: How soon to try again when the link could not take a frame (no connection yet, or queue full).
LINK_RETRY_S = 0.1
#: Acks owed to one peer that make it worth an envelope of their own before the delay is up.
MAX_ACKS_PER_ENVELOPE = 256
#: Most delivers one frame of ``groups`` carries, and the size past which a frame is split (well under the
#: broker's ``MAX_FRAME_BYTES``): a receiver stores and syncs a frame's delivers together.
MAX_GROUP = 64
MAX_GROUP_BYTES = 256 * 1024
#: A welcomed client that hears nothing of its broker this long moves to the other one of a pair: the
#: broker's own liveness rule, and longer than a broker waits for its peer (``PEER_LIVENESS`` intervals).
BROKER_SILENCE_S = protocol.HEARTBEAT_INTERVAL_S * protocol.LIVENESS
#: An unwelcomed client of a pair tries the other broker after this long without a welcome.
SEEK_S = 2 * protocol.HEARTBEAT_INTERVAL_S
#: Two switches are at least this far apart, however fast the brokers refuse.
MIN_SWITCH_S = 0.25

#: Kinds the broker forwards from other actors; the actor itself handles them.
_FOR_ACTOR = frozenset({protocol.DELIVER, protocol.COMMAND, protocol.REPLY})

_WHICH = ("primary", "backup")
#: Broker states in which it serves nobody (``broker.pair``).
_NOT_SERVING = frozenset({protocol.STATE_PASSIVE, protocol.STATE_STARTING})

# What the last frame handed out was, for ``refused``: plain ints, cheaper than an Enum on every frame.
_NOTHING_TO_RETRY = 0
_HELLO = 1
_DELIVER = 2
_RETRANSMIT = 3


class Outcome(Enum):
    """What became of a ``deliver``: back pressure is a value, never an exception."""

    #: Handed to ZeroMQ; kept in the outbox until acked.
    SENT = "sent"
    #: Kept in the outbox, not sent yet: no connection or the link is full (retried soon), or gathered
    #: (``gather``: sent at the end of the turn).
    QUEUED = "queued"
    #: Refused: the outbox is full. Keep the message and try again after acks have drained it.
    FULL = "full"


@dataclass(slots=True)
class Received:
    """What frames from the broker amounted to: ``Outbox.receive`` appends, the caller acts and empties.

    One accumulator serves a whole batch, so its lists are paid for per batch, not per frame.
    """

    #: Delivers, commands and replies for the actor, and undeliverables of its commands.
    for_actor: list[Envelope] = field(default_factory=list)
    #: Ids of delivers their peer acknowledged, already forgotten by the outbox.
    acked: list[str] = field(default_factory=list)
    #: Undeliverables of pending delivers: kept, and sent again when their peer is up.
    undeliverable: list[Envelope] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The client's sign of life, once per interval."""

    #: The ``heartbeat`` envelope for the broker; None while not welcomed (the hello retries speak then).
    frame: bytes | None
    #: The ``actor.<name>.heartbeat`` event, topic and body, for the event plane.
    event: list[bytes]


@dataclass(slots=True)
class _Pending:
    dst: str
    id: str
    body: Any
    #: Its own frame, encoded once for the first retransmission (a gathered deliver first left in a group)
    #: and sent as it is at every one after.
    frame: bytes | None
    due_s: float = 0.0
    attempts: int = 0


class Outbox:
    """One actor's side of the bus protocol: its un-acked delivers, owed acks, hello and heartbeat timing."""

    def __init__(
        self,
        name: str,
        now_s: float,
        *,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        retransmit_after_s: float = DEFAULT_RETRANSMIT_AFTER_S,
        ack_delay_s: float = 0.0,
        ids: IdSource | None = None,
        brokers: int = 1,
        watches_broker: bool = False,
        lease: str | None = None,
    ) -> None:
        """``now_s`` is the start: the first hello is due then, the first heartbeat an interval later.

        ``brokers``: 2 for a pair of brokers (primary first), 1 for one. ``watches_broker``: the caller hears
        the broker's events (``receive_event``), so a welcomed client can tell a silent broker. ``lease``:
        the lease the hello asks for (see the rules).
        """
        if max_outbox < 1 or retransmit_after_s <= 0 or ack_delay_s < 0 or brokers not in (1, 2):
            raise ValueError("max_outbox must be at least 1, retransmit_after_s positive, ack_delay_s not negative, "
                             "brokers 1 or 2")
        self.name = name
        self.max_outbox = max_outbox
        self.retransmit_after_s = retransmit_after_s
        self.ack_delay_s = ack_delay_s
        self._ids = ids or IdSource()
        self._outbox: dict[str, _Pending] = {}
        #: Delivers kept by ``gather`` and not yet handed out by ``groups``, in order.
        self._gathered: list[_Pending] = []
        #: (due_s, tie-break, id); rescheduling leaves stale items, skipped when their due_s is not the entry's.
        self._due: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        #: Ids acknowledged but not sent yet, by the peer they go to.
        self._owed: dict[str, list[str]] = {}
        #: When owed acks must leave; None exactly when none is owed.
        self._owed_due_s: float | None = None
        #: True when the next ``ack`` starts the ack delay and so needs the time. A plain attribute kept
        #: up to date, because the caller reads it before every ack to skip a clock read it does not need.
        self.ack_starts_delay = ack_delay_s > 0
        #: The broker instance of the last welcome; None until the first.
        self.broker_instance: str | None = None
        self.welcomed = False
        self._hello_due_s = now_s
        self._heartbeat_due_s = now_s + protocol.HEARTBEAT_INTERVAL_S
        self.lease = lease
        #: Whether this client holds its lease, as the broker said last (always False without a lease).
        self.lease_held = False
        self._hello_body: dict[str, str] | None = {protocol.LEASE: lease} if lease else None
        #: Which broker of a pair the client talks to: 0 the primary, 1 the backup.
        self.broker_index = 0
        self.brokers = brokers
        self.watches_broker = watches_broker
        self._last_heard_s = now_s
        self._switched_s = now_s
        #: The state of the broker that refused this client (``passive``) since the last switch or welcome.
        self._refused_by: str | None = None
        #: While not welcomed: when to try the other broker of a pair.
        self._seek_until_s = now_s + SEEK_S
        # The heartbeat envelope never changes; encode it once.
        self._heartbeat_frame = Envelope(kind=protocol.HEARTBEAT, src=name, dst=protocol.BROKER,
                                         body=self._hello_body).encode()
        self._heartbeat_topic = protocol.actor_topic(name, "heartbeat")
        #: The process's incarnation (its ids' prefix, new at every start): a monitor tells a restart by it,
        #: even one faster than its silence limit.
        self._heartbeat_body = {"incarnation": self._ids.prefix}
        self._last_kind = _NOTHING_TO_RETRY
        self._last: _Pending | None = None
        #: A ``forbidden`` refusal is logged as an error once; its repeats (each hello) at debug level.
        self._forbidden_told = False

    # ----------------------------------------------------------------- state

    @property
    def pending(self) -> int:
        """Delivers not yet acked."""
        return len(self._outbox)

    def is_pending(self, id: str) -> bool:
        return id in self._outbox

    def next_deadline(self) -> float:
        """Monotonic seconds of the next hello, heartbeat, ack flush, retransmit or switch of brokers."""
        deadline = self._heartbeat_due_s
        if not self.welcomed:
            deadline = min(deadline, self._hello_due_s)
        if self.brokers > 1:
            switch_s = self._switch_due_s()
            if switch_s is not None:
                deadline = min(deadline, switch_s)
        if self._due:
            deadline = min(deadline, self._due[0][0])
        if self._owed_due_s is not None:
            deadline = min(deadline, self._owed_due_s)
        return deadline

    # ----------------------------------------------------------------- frames retried when refused

    def hello(self, now_s: float) -> bytes | None:
        """The hello frame when one is due, else None."""
        if self.welcomed or now_s < self._hello_due_s:
            self._last_kind = _NOTHING_TO_RETRY
            return None
        # Taken but unanswered: the broker may be restarting, so ask again an interval later.
        self._hello_due_s = now_s + protocol.HEARTBEAT_INTERVAL_S
        self._last_kind = _HELLO
        return Envelope(kind=protocol.HELLO, src=self.name, dst=protocol.BROKER, id=self._ids.next(),
                        body=self._hello_body).encode()

    def deliver(self, dst: str, id: str, body: Any, now_s: float) -> bytes | Literal[Outcome.FULL]:
        """The frame carrying ``body`` to ``dst`` (and the acks owed to ``dst``), kept until acked;
        ``Outcome.FULL`` when the outbox has no room for a new id."""
        if not self._has_room(id):
            self._last_kind = _NOTHING_TO_RETRY
            return Outcome.FULL
        frame = self._deliver_frame(dst, id, body, self._take_owed(dst) if self._owed else ())
        entry = self._keep(dst, id, body, frame, now_s)
        self._last_kind = _DELIVER
        self._last = entry
        return frame

    def gather(self, dst: str, id: str, body: Any, now_s: float) -> bool:
        """Keep a deliver like ``deliver`` but send it later, in a group (``groups``); False when the outbox
        is full (``Outcome.FULL``)."""
        if not self._has_room(id):
            return False
        self._gathered.append(self._keep(dst, id, body, None, now_s))
        return True

    def _has_room(self, id: str) -> bool:
        """Whether the outbox takes ``id``: it has room, or ``id`` is pending and is replaced."""
        return len(self._outbox) < self.max_outbox or id in self._outbox

    def _keep(self, dst: str, id: str, body: Any, frame: bytes | None, now_s: float) -> _Pending:
        """A new deliver in the outbox, due again a retransmit timeout after ``now_s``."""
        entry = _Pending(dst, id, body, frame, attempts=1)
        self._outbox[id] = entry
        self._schedule(entry, now_s + self._backoff_s(1))
        return entry

    def _deliver_frame(self, dst: str, id: str, body: Any, acks: tuple[str, ...] = (),
                       more: tuple[tuple[str, Any], ...] = ()) -> bytes:
        """The frame of a deliver from this client: alone, with the acks owed to ``dst``, or a group (``more``)."""
        return Envelope(kind=protocol.DELIVER, src=self.name, dst=dst, id=id, body=body, acks=acks,
                        more=more).encode()

    def groups(self) -> list[tuple[bytes, list[_Pending]]]:
        """The gathered delivers as frames, one per peer (``more``) and at most ``MAX_GROUP`` delivers or
        ``MAX_GROUP_BYTES`` each, with the acks owed to the peer; each frame with the delivers it carries,
        for ``refused_group``. Nothing is gathered afterwards."""
        if not self._gathered:
            return []
        gathered, self._gathered = self._gathered, []
        self._last_kind = _NOTHING_TO_RETRY
        outbox = self._outbox
        by_peer: dict[str, list[_Pending]] = {}
        for entry in gathered:
            if outbox.get(entry.id) is entry:  # not acked or replaced meanwhile
                by_peer.setdefault(entry.dst, []).append(entry)
        frames: list[tuple[bytes, list[_Pending]]] = []
        for dst, entries in by_peer.items():
            for start in range(0, len(entries), MAX_GROUP):
                self._group_frames(dst, entries[start:start + MAX_GROUP], frames)
        return frames

    def refused_group(self, entries: list[_Pending], now_s: float) -> None:
        """The link did not take a frame of ``groups``: its delivers are tried again ``LINK_RETRY_S`` later."""
        for entry in entries:
            if self._outbox.get(entry.id) is entry:
                entry.attempts -= 1
                self._schedule(entry, now_s + LINK_RETRY_S)

    def _group_frames(self, dst: str, entries: list[_Pending], frames: list[tuple[bytes, list[_Pending]]]) -> None:
        """One frame for ``entries``, or halves of them while it is larger than ``MAX_GROUP_BYTES``."""
        first = entries[0]
        owed = self._owed.get(dst) if self._owed else None
        frame = self._deliver_frame(dst, first.id, first.body, tuple(owed) if owed else (),
                                    tuple((e.id, e.body) for e in entries[1:]))
        if len(frame) > MAX_GROUP_BYTES and len(entries) > 1:
            half = len(entries) // 2
            self._group_frames(dst, entries[:half], frames)
            self._group_frames(dst, entries[half:], frames)
            return
        if owed:
            self._take_owed(dst)
        frames.append((frame, entries))

    def retransmit(self, now_s: float) -> bytes | None:
        """The frame of the next deliver due by ``now_s``, or None; call until None (or a refusal)."""
        due = self._due
        while due and due[0][0] <= now_s:
            due_s, _, id = heapq.heappop(due)
            entry = self._outbox.get(id)
            if entry is None or entry.due_s != due_s:
                continue
            entry.attempts += 1
            self._schedule(entry, now_s + self._backoff_s(entry.attempts))
            self._last_kind = _RETRANSMIT
            self._last = entry
            if entry.frame is None:
                entry.frame = self._deliver_frame(entry.dst, entry.id, entry.body)
            return entry.frame
        self._last_kind = _NOTHING_TO_RETRY
        return None

    def refused(self, now_s: float) -> None:
        """The link did not take the frame the last call returned: plan its retry (see the rules)."""
        kind, entry = self._last_kind, self._last
        self._last_kind, self._last = _NOTHING_TO_RETRY, None
        if kind == _HELLO:
            self._hello_due_s = now_s + LINK_RETRY_S
        elif entry is None or self._outbox.get(entry.id) is not entry:
            return  # nothing to retry, or acked meanwhile
        elif kind == _DELIVER:
            entry.attempts -= 1
            self._schedule(entry, now_s + LINK_RETRY_S)
        elif kind == _RETRANSMIT:
            entry.attempts -= 1
            self._defer_due(entry, now_s)

    # ----------------------------------------------------------------- frames never retried

    def ack(self, src: str, id: str, now_s: float | None) -> bytes | None:
        """Acknowledge deliver ``id`` from ``src``: the frame to send now, or None while the ack is owed.
        ``now_s`` may be None unless ``ack_starts_delay``."""
        if self.ack_delay_s <= 0:
            self._last_kind = _NOTHING_TO_RETRY
            return self._ack_frame(src, (id,))
        if self._owed_due_s is None:
            if now_s is None:
                raise ValueError("the first owed ack starts the delay: pass now_s")
            self._owed_due_s = now_s + self.ack_delay_s
            self.ack_starts_delay = False
        owed = self._owed.get(src)
        if owed is None:
            owed = self._owed[src] = []
        elif id in owed:
            return None  # a retransmit of a deliver whose ack is still owed: one ack answers both
        owed.append(id)
        if len(owed) >= MAX_ACKS_PER_ENVELOPE:
            self._last_kind = _NOTHING_TO_RETRY
            return self._ack_frame(src, self._take_owed(src))
        return None

    def acks_due(self, now_s: float) -> bool:
        """True when owed acks have waited ``ack_delay_s``: time for ``flush_acks``."""
        return self._owed_due_s is not None and now_s >= self._owed_due_s

    def flush_acks(self) -> list[bytes]:
        """Every owed ack, one frame per peer; nothing is owed afterwards."""
        frames = [self._ack_frame(dst, tuple(ids)) for dst, ids in self._owed.items()]
        self._owed.clear()
        self._no_acks_owed()
        self._last_kind = _NOTHING_TO_RETRY
        return frames

    def heartbeat(self, now: Instant) -> Heartbeat | None:
        """The heartbeat when one is due, else None; ``now.utc_ns`` stamps its event."""
        if now.mono_s < self._heartbeat_due_s:
            return None
        self._heartbeat_due_s = now.mono_s + protocol.HEARTBEAT_INTERVAL_S
        self._last_kind = _NOTHING_TO_RETRY
        return Heartbeat(self._heartbeat_frame if self.welcomed else None,
                         self.event(self._heartbeat_topic, self._heartbeat_body, now.utc_ns))

    def command(self, dst: str, body: Any) -> tuple[str, bytes]:
        """A new command's id (the ``corr`` of its reply) and frame."""
        id = self._ids.next()
        self._last_kind = _NOTHING_TO_RETRY
        return id, Envelope(kind=protocol.COMMAND, src=self.name, dst=dst, id=id, body=body).encode()

    def reply(self, envelope: Envelope, body: Any) -> bytes:
        """The frame answering the command ``envelope``."""
        self._last_kind = _NOTHING_TO_RETRY
        return Envelope(kind=protocol.REPLY, src=self.name, dst=envelope.src, id=self._ids.next(),
                        corr=envelope.id, body=body).encode()

    def event(self, topic: str, event: dict[str, Any], utc_ns: int) -> list[bytes]:
        """An event's frames, stamped with ``actor`` and, unless the event has one, ``time_ns``."""
        return protocol.encode_event(topic, {"time_ns": utc_ns, **event, "actor": self.name})

    # ----------------------------------------------------------------- a pair of brokers

    def heard(self, now_s: float) -> None:
        """Something came from the broker (a frame on the business plane or an event): it is alive."""
        self._last_heard_s = now_s

    def switch(self, now_s: float) -> int | None:
        """The index of the broker to move to now (the caller moves its sockets there), or None to stay."""
        due_s = self._switch_due_s() if self.brokers > 1 else None
        if due_s is None or now_s < due_s:
            return None
        old, new = self.broker_index, 1 - self.broker_index
        if self.welcomed:
            log.warning("%s: nothing from the %s broker for %.1f s; moving to the %s", self.name, _WHICH[old],
                        now_s - self._last_heard_s, _WHICH[new])
        elif self._refused_by is not None:
            log.info("%s: the %s broker is %s; trying the %s", self.name, _WHICH[old], self._refused_by, _WHICH[new])
        else:
            log.info("%s: no welcome from the %s broker; trying the %s", self.name, _WHICH[old], _WHICH[new])
        self.broker_index = new
        self._unwelcome(now_s)
        self._switched_s = now_s
        return new

    def _switch_due_s(self) -> float | None:
        if not self.welcomed:
            return self._seek_until_s
        return self._last_heard_s + BROKER_SILENCE_S if self.watches_broker else None

    def _unwelcome(self, now_s: float) -> None:
        """Not welcomed any more: a hello is due now, and with a pair the other broker after ``SEEK_S``."""
        self._refused_by = None
        self.welcomed = False
        self.lease_held = False
        self._hello_due_s = now_s
        self._seek_until_s = now_s + SEEK_S
        self._last_heard_s = now_s

    def _on_passive(self, body: Any, now_s: float) -> None:
        """The broker refused this client: it does not serve now (one of a pair, passive or starting)."""
        body = body if isinstance(body, dict) else {}
        role, state = body.get("role", "?"), body.get("state", "?")
        if self.brokers < 2:
            level = logging.DEBUG if self._refused_by is not None else logging.ERROR
            log.log(level, "%s: the broker (%s, %s) does not serve now and this client knows no other; give it the "
                    "topology's broker.backup (docs/bus.md)", self.name, role, state)
            self._unwelcome(now_s)
            self._refused_by = str(state)
            self._hello_due_s = now_s + protocol.HEARTBEAT_INTERVAL_S
            return
        if self._refused_by is not None:
            return  # the answers to frames sent before the first refusal: the move is planned already
        self._unwelcome(now_s)
        self._refused_by = str(state)
        self._seek_until_s = max(now_s, self._switched_s + MIN_SWITCH_S)

    # ----------------------------------------------------------------- receiving

    def receive(self, frame: bytes, now_s: float, into: Received) -> None:
        """Take in one frame from the broker; what it means for the actor is appended to ``into``."""
        try:
            env = protocol.decode(frame)
        except ProtocolError as exc:
            log.warning("%s dropped a frame from the broker: %s", self.name, exc)
            return
        kind = env.kind
        if env.dst != self.name:
            log.warning("%s dropped a %s addressed to %r", self.name, kind, env.dst)
        elif kind in _FOR_ACTOR:
            if env.acks:
                self._forget(env.src, env.acks, into.acked)
            if env.more:
                into.for_actor += env.delivers()
            else:
                into.for_actor.append(env)
        elif kind == protocol.ACK:
            if env.corr:
                self._forget(env.src, (env.corr,), into.acked)
            if env.acks:
                self._forget(env.src, env.acks, into.acked)
        elif kind == protocol.WELCOME:
            self._on_welcome(env, now_s)
        elif kind == protocol.UNDELIVERABLE:
            self._on_undeliverable(env, into)
        elif kind == protocol.PASSIVE:
            self._on_passive(env.body, now_s)
        elif kind == protocol.HEARTBEAT and env.src == protocol.BROKER:
            self._on_broker_news(env.body if isinstance(env.body, dict) else {}, now_s)
        else:
            log.warning("%s dropped a %s from %s: not a kind the broker sends to actors", self.name, kind, env.src)

    def receive_event(self, frames: list[bytes], now_s: float) -> tuple[str, dict[str, Any]] | None:
        """Take in one event; its topic and body for the actor, or None when it was malformed."""
        try:
            decoded = protocol.decode_event(frames)
        except ProtocolError as exc:
            log.debug("%s dropped an event: %s", self.name, exc)
            return None
        topic, event = decoded
        actor = protocol.parse_actor_topic(topic)
        if actor is not None:
            name, what = actor
            if what == "up" and name != self.name:
                self._resend((e for e in self._outbox.values() if e.dst == name), now_s)
            elif what == "down" and name == self.name and self.welcomed:
                log.warning("%s: the broker reported this actor down; saying hello again", self.name)
                self._need_hello(now_s)
        elif topic.startswith(protocol.BROKER_TOPICS):
            self._on_broker_news(event, now_s)
        return decoded

    def _on_broker_news(self, event: dict[str, Any], now_s: float) -> None:
        """A ``broker.*`` event or the broker's answer to a heartbeat: a new instance, or one that stopped serving."""
        instance = event.get("instance")
        if self.broker_instance is not None and isinstance(instance, str) and instance != self.broker_instance \
                and self.welcomed:
            log.info("%s: broker restarted (instance %s, was %s); saying hello again",
                     self.name, instance, self.broker_instance)
            self._need_hello(now_s)
        elif self.welcomed and instance == self.broker_instance and event.get("state") in _NOT_SERVING:
            self._on_passive(event, now_s)

    def _forget(self, src: str, ids: Iterable[str], acked: list[str]) -> None:
        outbox = self._outbox
        for id in ids:
            entry = outbox.get(id)
            if entry is None or entry.dst != src:
                continue
            del outbox[id]
            acked.append(id)
        if not outbox:
            self._due.clear()

    def _on_welcome(self, env: Envelope, now_s: float) -> None:
        body = env.body if isinstance(env.body, dict) else {}
        instance = body.get("instance")
        instance = instance if isinstance(instance, str) else ""
        restarted = self.broker_instance is not None and instance != self.broker_instance
        if not self.welcomed or restarted:
            log.info("%s welcomed by broker %s%s", self.name, instance, " (restarted)" if restarted else "")
        if self.lease is not None:
            held = body.get(protocol.LEASE_HELD) is True
            if held != self.lease_held or not self.welcomed:
                log.info("%s: lease %s %s", self.name, self.lease, "held" if held else "held by another actor")
            self.lease_held = held
        self.welcomed = True
        self._refused_by = None
        self.broker_instance = instance
        if restarted:
            # Whatever was in flight through the old broker may be lost, acks included.
            self._resend(self._outbox.values(), now_s)

    def _on_undeliverable(self, env: Envelope, into: Received) -> None:
        if isinstance(env.body, dict) and env.body.get("reason") == protocol.REASON_STANDBY and self.lease_held:
            log.warning("%s: the broker refused command %s: lease %s is held by another actor now", self.name,
                        env.corr, self.lease)
            self.lease_held = False
        if isinstance(env.body, dict) and env.body.get("reason") == protocol.REASON_FORBIDDEN:
            level = logging.DEBUG if self._forbidden_told else logging.ERROR
            self._forbidden_told = True
            log.log(level, "%s: the broker refused message %s (to %s): forbidden, this actor's key may not do that; "
                    "the broker's log and its audit.refused event say why (docs/bus.md)",
                    self.name, env.corr, env.body.get("dst", "?"))
        entry = self._outbox.get(env.corr)
        if entry is None:
            into.for_actor.append(env)  # a command's, or a deliver acked meanwhile (the caller ignores it)
            return
        body = env.body if isinstance(env.body, dict) else {}
        log.debug("%s: deliver %s to %s undeliverable (%s); kept for %s's return",
                  self.name, entry.id, entry.dst, body.get("reason", ""), entry.dst)
        into.undeliverable.append(env)

    # ----------------------------------------------------------------- timing

    def _need_hello(self, now_s: float) -> None:
        self._unwelcome(now_s)

    def _take_owed(self, dst: str) -> tuple[str, ...]:
        owed = self._owed.pop(dst, None)
        if not self._owed:
            self._no_acks_owed()
        return tuple(owed) if owed else ()

    def _no_acks_owed(self) -> None:
        self._owed_due_s = None
        self.ack_starts_delay = self.ack_delay_s > 0

    def _ack_frame(self, dst: str, ids: tuple[str, ...]) -> bytes:
        return Envelope(kind=protocol.ACK, src=self.name, dst=dst, corr=ids[0], acks=ids[1:]).encode()

    def _backoff_s(self, attempts: int) -> float:
        return min(self.retransmit_after_s * 2.0 ** max(0, attempts - 1), MAX_RETRANSMIT_AFTER_S)

    def _schedule(self, entry: _Pending, due_s: float) -> None:
        entry.due_s = due_s
        heapq.heappush(self._due, (due_s, next(self._order), entry.id))
        if len(self._due) > 4 * len(self._outbox) + 64:
            # Rescheduling leaves stale heap items behind; rebuild before they outnumber the outbox.
            self._due = [(e.due_s, next(self._order), e.id) for e in self._outbox.values()]
            heapq.heapify(self._due)

    def _resend(self, entries: Iterable[_Pending], now_s: float) -> None:
        """Make entries due now, with a fresh back-off: something changed that makes success likely."""
        for entry in list(entries):
            entry.attempts = 0
            self._schedule(entry, now_s)

    def _defer_due(self, first: _Pending, now_s: float) -> None:
        """The link took nothing: every entry due now waits ``LINK_RETRY_S``, so the loop does not spin."""
        later_s = now_s + LINK_RETRY_S
        waiting = [first]
        while self._due and self._due[0][0] <= now_s:
            due_s, _, id = heapq.heappop(self._due)
            entry = self._outbox.get(id)
            if entry is not None and entry.due_s == due_s and entry is not first:
                waiting.append(entry)
        for entry in waiting:
            self._schedule(entry, later_s)
