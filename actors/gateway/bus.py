"""The actor's end of the bus: one client per actor process, driven by the actor's own poll loop.

Two halves (STYLE principles 1-3, and the uvicorn-over-h11 shape):

* ``actors.gateway.outbox.Outbox``, pure: the outbox of un-acked delivers and
  its retransmission, owed acks, hello/welcome and broker-restart detection,
  heartbeat timing, and what ``actor.<peer>.up`` / ``actor.<self>.down`` and
  ``broker.*`` events mean. Time is its argument; it returns the frames to
  send and what arrived as values. Its "Rules" header is the protocol.
* ``BusClient``, here: the three ZeroMQ sockets and the ``now`` callable. It
  reads the clock, feeds received frames into the outbox, writes the frames
  the outbox returns, and tells it when the DEALER refused one (a NOBLOCK
  send can), so the outbox plans the retry. It makes no protocol decision.
  What reading makes due (resends after a peer's ``up`` or a new broker's
  ``welcome``, a hello after this actor was reported down) leaves at the end
  of the same ``handle_readable``, after the whole batch was taken in.

An actor owns its loop (STYLE principle 3), so ``BusClient`` never blocks and
never starts a thread: the actor polls ``sockets`` with its other sockets,
calls ``handle_readable(sock)`` when one is readable and ``on_timer()`` at
``next_deadline()``. Time comes from the ``now`` callable, so tests step it.

Sockets, all connected to the broker:

* DEALER (identity = the actor's name) to the ROUTER: envelopes both ways.
* XPUB to the XSUB: the actor's events, ``actor.<name>.heartbeat`` among them, held until the broker's
  subscription has reached the socket (``actors.gateway.publisher``: a plain PUB lost the first ones).
* SUB to the XPUB (``actor.`` and ``broker.``): how the client learns that a
  peer came up or that the broker restarted.

Reliability of ``deliver`` (the outbox's rules): every un-acked deliver stays
in a bounded in-memory outbox and is sent again when its peer comes up
(``actor.<dst>.up``), when the broker restarted (a ``welcome`` with a new
``instance``), and when no ack came within the retransmit timeout (doubling
per attempt, capped). The client does not persist: after the actor's own
restart its FIX store is the durable copy and the actor delivers again.
Duplicates are expected; receivers dedupe by ``(src, id)``. ``command`` and
``reply`` are not retransmitted: the caller owns their timeouts.

Acks may be delayed (``ack_delay_s``, the outbox's rules): an ack owed to a
peer rides on the next ``deliver`` to that peer, and what is still owed after
the delay, or more than ``MAX_ACKS_PER_ENVELOPE`` of them, leaves in one
``ack`` envelope. In a gateway pair the ExecutionReport going back carries
the ack of its order, so an order costs two envelopes through the broker
instead of four. An ack only lets the sender forget a deliver it would
otherwise retransmit, so a delay of milliseconds against a retransmit timeout
of seconds costs nothing but a little outbox room.

A pair of brokers (``backup``, ``docs/bus.md``): the client knows both
brokers' endpoints and talks to one at a time, the primary first. When the
outbox says so (``Outbox.switch``: a welcomed client heard nothing of its
broker for ``BROKER_SILENCE_S``, an unwelcomed one had no welcome within
``SEEK_S``, or the broker answered ``passive``) the shell moves all three
sockets to the other broker's endpoints (``disconnect`` and ``connect`` on
the same sockets, so the actor's poller needs no change; ZeroMQ discards
what was queued for or from the old connection) and says hello there. The
other broker's welcome carries another ``instance``, so every un-acked
deliver goes again and receivers dedupe as after a broker restart.

Keys (``CurveKeys``, ``docs/bus.md``): given the actor's key pair and the
broker's public key, every socket is a CURVE client, so the broker knows which
key speaks and the traffic is encrypted. The DEALER then sets no routing
identity: the broker binds the actor's name to the connection at its hello,
after checking that the key may use the name.

Bounded queues and their policy: the outbox holds ``max_outbox`` delivers and
then refuses (``Outcome.FULL``) until acks drain it; the DEALER (here) queues
at most ``max_outbox`` plus ``CONTROL_HEADROOM`` frames and only while
connected (``IMMEDIATE``), so nothing piles up for a dead broker: a frame it
cannot take is retried (deliver, hello: the outbox waits ``LINK_RETRY_S``) or
reported as not sent (the other kinds).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from actors.fix.timefmt import Instant
from actors.gateway.outbox import (
    DEFAULT_MAX_OUTBOX,
    DEFAULT_RETRANSMIT_AFTER_S,
    LINK_RETRY_S,
    MAX_ACKS_PER_ENVELOPE,
    MAX_RETRANSMIT_AFTER_S,
    Outbox,
    Outcome,
    Received,
)
from actors.gateway.publisher import Publisher
from actors.shell import clock
from broker import protocol
from broker.protocol import Envelope, IdSource

log = logging.getLogger("fixmesh.bus")

# The outbox's constants and Outcome are part of this module's API, as they were before the split.
__all__ = [
    "CONTROL_HEADROOM", "DEFAULT_MAX_OUTBOX", "DEFAULT_RETRANSMIT_AFTER_S", "LINK_RETRY_S", "MAX_ACKS_PER_ENVELOPE",
    "MAX_BATCH", "MAX_RETRANSMIT_AFTER_S", "RECEIVE_QUEUE_FRAMES", "BrokerAddress", "BusClient", "CurveKeys",
    "KeyFileError", "Outcome", "load_curve_keys", "load_public_key",
]

#: DEALER queue room beyond the outbox, for hellos, heartbeats, acks, commands and replies.
CONTROL_HEADROOM = 1000
#: Frames read from one socket per ``handle_readable`` call, so one busy socket cannot starve the loop.
MAX_BATCH = 1000
#: Incoming frames queued per socket before ZeroMQ stops reading from the broker.
RECEIVE_QUEUE_FRAMES = 10_000
_MAX_IDENTITY_BYTES = 255
_KEY_FIX = "create it with `fixmesh keys create NAME --dir DIR` and copy it here (docs/bus.md)"


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """One broker's endpoints as a client connects to them: ROUTER, XSUB and (for a SUB) XPUB."""

    router: str
    xsub: str
    xpub: str | None = None


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class CurveKeys:
    """What a bus client needs on a bus with keys: its own key pair and the broker's public key (Z85)."""

    #: The key's name: the broker's principal, named in its logs and audit events.
    principal: str
    public_key: bytes
    secret_key: bytes = field(repr=False)
    #: The broker's public key: the client talks to no one else.
    server_key: bytes

    def apply(self, sock: zmq.Socket[bytes]) -> None:
        """Make ``sock`` a CURVE client of the broker; before ``connect``."""
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public_key)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret_key)


def load_curve_keys(principal: str, secret_file: Path, server_file: Path) -> CurveKeys:
    """The key pair in ``secret_file`` (``<principal>.key_secret``) and the broker's public key in ``server_file``.

    ``KeyFileError`` when a file is missing or unreadable, holds no key, or the secret is readable by others.
    """
    try:
        mode = os.stat(secret_file).st_mode
        public_key, secret_key = _load_certificate(secret_file)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read the secret key of {principal!r} in {secret_file} ({_why(exc)}); "
                           f"{_KEY_FIX}") from None
    if secret_key is None:
        raise KeyFileError(f"{secret_file} holds no secret key (is it the public .key file?); give "
                           f"{principal}.key_secret")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{secret_file}: other users may read this secret key (mode {stat.S_IMODE(mode):04o}); "
                           f"chmod 600 {secret_file}")
    try:
        server_key, _ = _load_certificate(server_file)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read the broker's public key in {server_file} ({_why(exc)}); copy the broker's "
                           ".key file there (made by `fixmesh keys create broker --dir DIR`)") from None
    return CurveKeys(principal, public_key, secret_key, server_key)


def load_public_key(principal: str, public_file: Path) -> bytes:
    """The public key (Z85) in ``public_file`` (``<principal>.key``); ``KeyFileError`` names the file and the fix."""
    try:
        public_key, _ = _load_certificate(public_file)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read the public key of {principal!r} in {public_file} ({_why(exc)}); "
                           f"{_KEY_FIX}") from None
    return public_key


def _load_certificate(path: Path) -> tuple[bytes, bytes | None]:
    """pyzmq's key-file reader, imported by a bus with keys only: ``zmq.auth`` costs every actor 0.7 MB resident."""
    from zmq.auth import load_certificate

    return load_certificate(path)


def _why(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _subscriptions(name: str, watch: Iterable[str] | None) -> list[str]:
    """The event topics (prefixes) a client subscribes to: everything, or what a watching outbox acts on."""
    if watch is None:
        return [protocol.ACTOR_TOPICS, protocol.BROKER_TOPICS]
    peers = sorted(set(watch) - {name})
    return [protocol.actor_topic(name, "down"), *(protocol.actor_topic(peer, "up") for peer in peers),
            protocol.broker_topic("started"), protocol.broker_topic("switch")]


class BusClient:
    """Envelopes, events, liveness and retransmission for one actor: ZeroMQ around an ``Outbox``."""

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
        curve: CurveKeys | None = None,
        backup: BrokerAddress | None = None,
        lease: str | None = None,
    ) -> None:
        """Connect and say hello.

        ``xpub_endpoint`` enables the SUB socket; without it the client still
        recovers (its heartbeat is answered with a ``welcome`` by a restarted
        broker, and retransmits are timed) but learns of peers and restarts later.
        ``ack_delay_s`` > 0 holds acks back that long for a deliver to carry them.
        ``watch`` names the peers this client delivers to; None means every actor and every event.
        A watching client subscribes to no heartbeat at all, only to what its outbox acts on: its
        peers' ``up`` (resend to them), its own ``down`` (say hello again) and the broker's ``started``
        and ``switch``; the broker's liveness and instance come in its answer to each of the client's
        own heartbeats. An actor that heard every other actor's heartbeat paid for the whole deployment
        (with 100 actors, 10,000 events a second in all), and one that heard ``broker.heartbeat`` woke
        with every other actor of its broker, in the same millisecond, every second.
        ``curve``: the keys of a bus with keys (all three sockets become CURVE clients); None: an open bus.
        ``backup``: the other broker of a pair (the endpoints above are the primary's); the client moves
        between them (see the module's header). ``lease``: the lease the client asks the broker for (the
        coordinator's); ``lease_held`` says whether it holds it.
        """
        identity = name.encode("utf-8")
        if not name or name == protocol.BROKER or len(identity) > _MAX_IDENTITY_BYTES or identity[0] == 0:
            raise ValueError(f"invalid actor name {name!r}: it is the ZeroMQ routing identity")
        if backup is not None and (backup.xpub is None) != (xpub_endpoint is None):
            raise ValueError("the backup broker's xpub must be given exactly when the primary's is")
        self.name = name
        self._now = now
        start_s = now().mono_s
        #: The brokers' endpoints: the primary's (index 0) and, with a pair, the backup's.
        self.addresses: tuple[BrokerAddress, ...] = (BrokerAddress(router_endpoint, xsub_endpoint, xpub_endpoint),
                          *((backup,) if backup is not None else ()))
        # Built before any socket: it rejects bad numbers, and nothing is left open when it does.
        self._core = Outbox(name, start_s, max_outbox=max_outbox, retransmit_after_s=retransmit_after_s,
                            ack_delay_s=ack_delay_s, ids=ids, brokers=len(self.addresses),
                            watches_broker=xpub_endpoint is not None, lease=lease)
        self._on_undeliverable = on_undeliverable
        self._on_event = on_event
        self._on_ack = on_ack
        #: Reused for every batch; only its ``for_actor`` list is new each time (it goes to the caller).
        self._received = Received()

        self._context = zmq.Context()
        self.curve = curve
        self.dealer: zmq.Socket[bytes] = self._context.socket(zmq.DEALER)
        if curve is None:
            self.dealer.setsockopt(zmq.ROUTING_ID, identity)
        else:
            # The broker gives the connection an identity of its own and binds the name at the hello.
            curve.apply(self.dealer)
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
        self.pub: zmq.Socket[bytes] = self._context.socket(zmq.XPUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(self.pub)
        self._publisher = Publisher(self.pub, name, xsub_endpoint)
        self.pub.connect(xsub_endpoint)
        self.sub: zmq.Socket[bytes] | None = None
        if xpub_endpoint is not None:
            self.sub = self._context.socket(zmq.SUB)
            self.sub.setsockopt(zmq.LINGER, 0)
            if curve is not None:
                curve.apply(self.sub)
            self.sub.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE_FRAMES)
            self.sub.connect(xpub_endpoint)
            for prefix in _subscriptions(name, watch):
                self.subscribe(prefix)

        self._send_hello(start_s)

    # ----------------------------------------------------------------- the outbox's state

    @property
    def max_outbox(self) -> int:
        return self._core.max_outbox

    @property
    def retransmit_after_s(self) -> float:
        return self._core.retransmit_after_s

    @property
    def ack_delay_s(self) -> float:
        return self._core.ack_delay_s

    @property
    def welcomed(self) -> bool:
        """True once the broker answered a hello, until it reports this actor down or restarts."""
        return self._core.welcomed

    @property
    def broker_instance(self) -> str | None:
        """The broker instance of the last welcome; None until the first."""
        return self._core.broker_instance

    @property
    def pending(self) -> int:
        """Delivers not yet acked."""
        return self._core.pending

    @property
    def lease_held(self) -> bool:
        """True while the broker says this client holds its lease (``lease``)."""
        return self._core.lease_held

    @property
    def broker_index(self) -> int:
        """The broker the client talks to: 0 the primary (or the only one), 1 the backup."""
        return self._core.broker_index

    @property
    def broker(self) -> BrokerAddress:
        """The endpoints of the broker the client talks to."""
        return self.addresses[self._core.broker_index]

    def is_pending(self, id: str) -> bool:
        return self._core.is_pending(id)

    # ----------------------------------------------------------------- the actor's loop

    @property
    def sockets(self) -> tuple[zmq.Socket[bytes], ...]:
        """The sockets to poll for reading; call ``handle_readable`` with the one that is readable."""
        return (self.dealer,) if self.sub is None else (self.dealer, self.sub)

    def next_deadline(self) -> float:
        """Monotonic seconds of the next hello, heartbeat, ack flush or retransmit (or look for the broker's
        subscription, while events wait for it)."""
        deadline = self._core.next_deadline()
        if not self._publisher.held:
            return deadline
        look_s = self._publisher.next_look_s(self._now().mono_s)
        return deadline if look_s is None else min(deadline, look_s)

    @property
    def events_held(self) -> int:
        """Events published before any broker subscribed, waiting for one (``actors.gateway.publisher``)."""
        return self._publisher.held

    def on_timer(self) -> None:
        now = self._now()
        now_s = now.mono_s
        core = self._core
        self._maybe_switch(now_s)
        if not core.welcomed:
            self._send_hello(now_s)
        beat = core.heartbeat(now)
        if beat is not None:
            if beat.frame is not None:
                self._send(beat.frame)
            self._publisher.poll(now_s)  # once a beat: what the brokers said of their subscriptions
            self._publisher.publish(beat.event, now_s)
        elif not self._publisher.live:
            self._publisher.poll(now_s)
        if core.acks_due(now_s):
            self.flush_acks()
        self._retransmit(now_s)

    def handle_readable(self, sock: zmq.Socket[bytes] | None = None) -> list[Envelope]:
        """Process what arrived; returns the ``deliver``, ``command`` and ``reply`` envelopes for the actor,
        and the ``undeliverable`` answers to its commands. Delivers must be acked (``ack``) once persisted.

        ``sock``: the one of ``sockets`` the loop found readable, the only one read; None reads both.
        Reading a socket ends with a receive that finds nothing, a raised ``zmq.Again`` and a system
        call in libzmq: an actor's SUB socket rarely has an event, and is not read at every deliver.
        """
        now_s = self._now().mono_s
        core = self._core
        received = self._received
        for_actor: list[Envelope] = []
        received.for_actor = for_actor
        heard = False
        if sock is None or sock is self.dealer:
            recv = self.dealer.recv
            for _ in range(MAX_BATCH):
                try:
                    frame = recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                heard = True
                core.receive(frame, now_s, received)
        if received.acked:
            try:
                if self._on_ack is not None:
                    for id in received.acked:
                        self._on_ack(id)
            finally:
                received.acked.clear()  # the outbox forgot them already: never reported twice
        if received.undeliverable:
            try:
                if self._on_undeliverable is not None:
                    for env in received.undeliverable:
                        self._on_undeliverable(env)
            finally:
                received.undeliverable.clear()
        if self.sub is not None and (sock is None or sock is self.sub):
            for _ in range(MAX_BATCH):
                try:
                    frames = self.sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                heard = True
                event = core.receive_event(frames, now_s)
                if event is not None and self._on_event is not None:
                    self._on_event(*event)
        if heard:
            core.heard(now_s)
        if not core.welcomed:
            # A frame or an event may have asked for a hello (this actor reported down, a new broker) or for
            # the other broker of a pair (this one answered ``passive``).
            self._maybe_switch(now_s)
            self._send_hello(now_s)
        # A welcome from a new broker or a peer's ``up`` made delivers due now.
        self._retransmit(now_s)
        return for_actor

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
        now_s = self._now().mono_s
        frame = self._core.deliver(dst, id, body, now_s)
        if frame is Outcome.FULL:
            return Outcome.FULL
        if self._send(frame):
            return Outcome.SENT
        self._core.refused(now_s)
        return Outcome.QUEUED

    def gather(self, dst: str, id: str, body: Any) -> Outcome:
        """As ``deliver``, but the frame leaves at ``send_gathered``, with the other delivers to ``dst`` gathered
        by then: the owner calls it at the end of each turn of its loop (``Loop.at_turn_end``)."""
        if not self._core.gather(dst, id, body, self._now().mono_s):
            return Outcome.FULL
        return Outcome.QUEUED

    def send_gathered(self) -> None:
        """Send what ``gather`` kept, a frame per peer (``more``); a frame the link refuses is tried again soon."""
        groups = self._core.groups()
        if not groups:
            return
        refused_s: float | None = None
        for frame, entries in groups:
            if not self._send(frame):
                refused_s = self._now().mono_s if refused_s is None else refused_s
                self._core.refused_group(entries, refused_s)

    def ack(self, envelope: Envelope) -> bool:
        """Acknowledge a received deliver (after persisting it); False when the link could not take it,
        in which case the sender retransmits and the actor acks the duplicate. With ``ack_delay_s`` the
        ack is owed and sent later (always True here; a later send the link refuses is the same case)."""
        core = self._core
        frame = core.ack(envelope.src, envelope.id, self._now().mono_s if core.ack_starts_delay else None)
        if frame is None:
            return True
        sent = self._send(frame)
        return sent or core.ack_delay_s > 0

    def flush_acks(self) -> None:
        """Send every owed ack now, one envelope per peer."""
        for frame in self._core.flush_acks():
            self._send(frame)

    def command(self, dst: str, body: Any) -> str | None:
        """Send a command; its id (the ``corr`` of the reply), or None when the link could not take it."""
        id, frame = self._core.command(dst, body)
        return id if self._send(frame) else None

    def reply(self, envelope: Envelope, body: Any) -> bool:
        """Answer a command; False when the link could not take it."""
        return self._send(self._core.reply(envelope, body))

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        """Publish an event, stamped with ``actor`` and (unless given) ``time_ns``. Events are a live view:
        with no subscriber, or a slow one, they are dropped; until the broker has subscribed they are held."""
        now = self._now()
        self._publisher.publish(self._core.event(topic, event, now.utc_ns), now.mono_s)

    def subscribe(self, prefix: str) -> None:
        """Also receive events whose topic starts with ``prefix`` (passed to ``on_event``)."""
        if self.sub is None:
            raise RuntimeError("this client has no SUB socket: pass xpub_endpoint")
        self.sub.setsockopt(zmq.SUBSCRIBE, prefix.encode("utf-8"))

    # ----------------------------------------------------------------- writing what the outbox returns

    def _maybe_switch(self, now_s: float) -> None:
        """Move the three sockets to the other broker of a pair when the outbox says so."""
        index = self._core.switch(now_s)
        if index is None:
            return
        old, new = self.addresses[1 - index], self.addresses[index]
        moves: list[tuple[zmq.Socket[bytes] | None, str | None, str | None]] = [
            (self.dealer, old.router, new.router), (self.pub, old.xsub, new.xsub), (self.sub, old.xpub, new.xpub)]
        for sock, before, after in moves:
            if sock is None or before is None or after is None:
                continue
            with contextlib.suppress(zmq.ZMQError):  # never connected there: nothing to undo
                sock.disconnect(before)
            sock.connect(after)
        self._publisher.moved(new.xsub)

    def _send_hello(self, now_s: float) -> None:
        frame = self._core.hello(now_s)
        if frame is not None and not self._send(frame):
            self._core.refused(now_s)

    def _retransmit(self, now_s: float) -> None:
        core = self._core
        while (frame := core.retransmit(now_s)) is not None:
            if not self._send(frame):
                core.refused(now_s)
                return

    def _send(self, frame: bytes) -> bool:
        """One frame to the DEALER without blocking; False when ZeroMQ would not take it now.

        A frame past the broker's limit is not sent: the broker would drop this actor's connection for it,
        and again at every retransmit. It is said instead (``MAX_FRAME_BYTES`` is set so that no forward of
        a FIX message a session takes can reach it).
        """
        if len(frame) > protocol.MAX_FRAME_BYTES:
            log.error("%s: a frame of %d bytes is past the bus's limit of %d and cannot be delivered: %r...",
                      self.name, len(frame), protocol.MAX_FRAME_BYTES, frame[:120])
            return True
        try:
            self.dealer.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True
