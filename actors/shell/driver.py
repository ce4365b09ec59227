"""Runs one pure ``Session`` with its store over a transport.

This is the shell around the session core: it feeds the session, executes
its outputs in order and hands bytes to the transport. It owns the rules that
need I/O:

* persist before send: a new outgoing message is appended to the store as
  its ``Send`` output is executed; the batch reaches the transport only after
  ``store.sync_messages()`` (group commit: one fsync per batch in BATCH mode),
  and ``store.sync()`` makes the sequence state durable after the write, so
  that its fsync does not delay the batch: by the driver's timer,
  ``SLOT_SYNC_INTERVAL_S`` after the first batch it has not synced;
* one message at a time: the session stops after each application message
  it delivers (``Session.more_input``), the application sees it and may
  answer, and only then is the next message of the same read handled, so
  replies go out in the order of what they answer;
* store after processing: the next expected incoming number is saved after
  the application has handled each delivered message;
* resend: a ``Resend`` is answered where it stands among the outputs, from
  the store in parts of ``resend_answer_chunk_size`` messages, each part
  written before the next is read; while more than
  ``RESEND_HIGH_WATER_BYTES`` wait in the transport the answer pauses (the
  rest of the batch goes on) until they drain below
  ``RESEND_LOW_WATER_BYTES``. The answer keeps its place in the outgoing
  order: what is sent meanwhile (new
  messages, the answers to later ResendRequests) is numbered and stored as
  usual but written after it (held, at most ``MAX_HELD_BYTES``: a peer that
  lets that much pile up is not reading and is disconnected);
* counting: every new message sent and every application message received,
  by MsgType, resends, gap fills and the store's sync time
  (``actors.shell.traffic``; a dict increment per message).

Callers speak in intents (``send``, ``logout``, ``answer_logon``, ``reset_sequence_numbers``,
``start_connecting`` ...), never in session outputs: each intent asks the
session at once, with the driver's own clock, and executes what it answers.
An intent made while a batch runs (from ``on_message``, or inside
``batch()``) is numbered by the session when it is made but executed, that is
stored and written, after what the batch already holds, in the order of the
calls: the wire carries MsgSeqNums in the order they were given, and ``send``
always knows the number its message goes out with.

The transport is a TCP socket in production (``actors.shell.transport``) and an
in-memory link in tests; the driver cannot tell them apart.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

from actors.fix.codec import serialize
from actors.fix.message import Message
from actors.fix.outputs import (
    Deliver,
    Disconnect,
    Log,
    Output,
    Resend,
    ResetStore,
    Send,
    SessionEvent,
    StateChanged,
)
from actors.fix.session import Session
from actors.fix.timefmt import Instant
from actors.shell import clock
from actors.shell.schedule import Schedule
from actors.shell.seqpolicy import SequencePolicy
from actors.shell.traffic import Traffic
from actors.store import MessageStore

#: A resend answer pauses while more than this many bytes wait in the transport ...
RESEND_HIGH_WATER_BYTES = 4 << 20
#: ... and goes on once they are down to this many.
RESEND_LOW_WATER_BYTES = 1 << 20
#: Bytes of new messages held behind a resend answer, at most; beyond, the peer is not reading what it
#: asked for: it is disconnected, as the transport does at the same bound (its messages are stored).
MAX_HELD_BYTES = 64 << 20
#: The sequence slot (the incoming number) is synced at most this often, not after every batch: the
#: messages are already durable (``sync_messages``), and a slot older than its log only makes the
#: counterparty resend, as PossDup, what arrived in the last interval before a power cut.
SLOT_SYNC_INTERVAL_S = 1.0


class Transport(Protocol):
    def write(self, data: bytes) -> None:
        """Queue bytes for the peer, in order."""

    def close(self) -> None:
        """Flush what is queued (best effort, bounded) and close."""


@runtime_checkable
class BackPressure(Protocol):
    """A transport that tells how much waits unsent and when it has drained (``SocketTransport``).

    A transport without it (an in-memory link) takes everything at once: a resend is then answered
    part by part without pausing.
    """

    @property
    def unsent_bytes(self) -> int: ...

    def when_drained(self, below_bytes: int, callback: Callable[[], None]) -> None: ...


class _Answering:
    """A ``Resend`` being answered: the range, and the next stored number to read."""

    __slots__ = ("resend", "read_from")

    def __init__(self, resend: Resend) -> None:
        self.resend = resend
        self.read_from = resend.begin


class Application(Protocol):
    """What a driver hands up: application messages and session events.

    ``on_message`` returns False when the message is not processed yet (a
    gateway forwards it and waits for the peer's acknowledgement); the
    application then calls ``driver.processed(seq)``. Until then the stored
    next incoming number stays at that message, so that after a crash the
    counterparty is asked for it again.
    """

    def on_message(self, driver: SessionDriver, message: Message) -> bool | None: ...

    def on_output(self, driver: SessionDriver, output: Output) -> None: ...


class SessionDriver:
    """Glue between a Session, a transport, a store and an application."""

    def __init__(
        self,
        session: Session,
        store: MessageStore,
        app: Application,
        *,
        name: str,
        keep_incoming: bool = False,
        now: Callable[[], Instant] = clock.now,
        policy: SequencePolicy | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        self.session = session
        self.policy = policy or SequencePolicy()
        self.schedule = schedule
        self.store = store
        self.app = app
        self.name = name
        self.log = logging.getLogger(f"fixmesh.session.{name}")
        self.transport: Transport | None = None
        #: The counterparty's (address, port) on the connection that is up, when the transport knows it.
        self.remote_address: tuple[str, int] | None = None
        self._now = now
        self._keep_incoming = keep_incoming
        self._pending: list[bytes] = []
        self._unprocessed: set[int] = set()
        self._running = False
        #: Outputs still to execute in this batch, oldest first; calls made meanwhile join the end.
        self._queue: deque[Output] = deque()
        #: The resend being answered, the ones waiting their turn, and what is written after them.
        self._answering: _Answering | None = None
        self._resends: deque[Resend] = deque()
        self._held: list[bytes] = []
        self._held_bytes = 0
        #: The answer waits for the transport to drain (``BackPressure.when_drained``).
        self._paused_for_drain = False
        #: The module's bounds, per driver so that a test can lower them.
        self.resend_high_water_bytes = RESEND_HIGH_WATER_BYTES
        self.resend_low_water_bytes = RESEND_LOW_WATER_BYTES
        self.max_held_bytes = MAX_HELD_BYTES
        self._stored = False
        #: When the sequence slot is to be synced next (monotonic s); None while nothing waits for it.
        self._slot_sync_due_s: float | None = None
        #: Called when a batch's messages are durable, just before they are written (the order trace's
        #: ``fix_out``, ``actors.gateway.trace``); None: nothing to call.
        self.before_write: Callable[[], None] | None = None
        #: Called before a store sync makes the process wait on the disk: what the loop's turn made so far
        #: and need not wait for it leaves first (the session actor's gathered delivers); None: nothing.
        self.before_sync: Callable[[], None] | None = None
        #: Notes to store with messages ``send`` numbered in this batch (MsgSeqNum -> note).
        self._notes: dict[int, bytes] = {}
        #: Messages by MsgType, resends, gap fills and store sync times (``actors.shell.traffic``).
        self.traffic = Traffic()

    # ------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        return self.transport is not None

    def attach(self, transport: Transport, initial: bytes = b"", *,
               remote_address: tuple[str, int] | None = None) -> None:
        """A connection is up (and may already have brought bytes); ``remote_address``: the peer's, if known."""
        self.transport = transport
        self.remote_address = remote_address
        now = self._now()
        window = self.schedule.window_at(now.utc_ns) if self.schedule is not None else None
        reset = self.policy.reset_due(self.store, now.utc_ns, window.start_ns if window else None)
        if reset:
            self.log.info("sequence numbers reset at this Logon (sequence-number policy)")
        self.run(self.session.connection_made(now, reset_seqnums=reset))
        if initial and self.transport is not None:
            self.feed(initial)

    def feed(self, data: bytes) -> None:
        self.traffic.reads += 1
        self.session.receive(data)
        self.run(self.session.process(self._now()))

    def connection_lost(self, reason: str) -> None:
        """The transport reports that the peer closed or the link broke."""
        if self.transport is None:
            return
        self.transport = None
        self.remote_address = None
        self._pending.clear()
        self._drop_resends()
        self.log.info("connection lost: %s", reason)
        self.run(self.session.connection_lost(self._now(), reason))

    def next_deadline(self) -> float | None:
        deadline = self.session.next_deadline()
        due = self._slot_sync_due_s
        if due is not None and (deadline is None or due < deadline):
            return due
        return deadline

    def on_timer(self) -> None:
        now = self._now()
        if self._slot_sync_due_s is not None and now.mono_s >= self._slot_sync_due_s:
            self._sync_slot()
        self.run(self.session.on_timer(now))

    # -------------------------------------------------------------- intents

    def send(
        self, msg_type: str, body: list[tuple[int, bytes]], header: list[tuple[int, bytes]] | None = None,
        note: bytes = b"",
    ) -> int:
        """Send an application message; returns the MsgSeqNum it goes out with.

        Outside a batch the message is stored and written before this returns.
        While a batch runs (from ``on_message``, or inside ``batch()``) it is
        numbered now but stored and written when the batch ends, after what
        the batch numbered before it.

        ``note`` is stored with the message (``MessageStore.save_outgoing``), so
        it is on disk exactly when the message is: the gateway notes which
        forward the message came from, and needs no sync of its own for it.
        """
        seq = self.session.next_sender
        if note:
            self._notes[seq] = note
        self.run(self.session.send(msg_type, body, self._now(), header))
        return seq

    def logout(self, text: str | None = None) -> None:
        """Start a clean Logout (or drop a Logon still in progress)."""
        self.run(self.session.logout(self._now(), text))

    def disconnect(self, reason: str) -> None:
        """Drop the connection without a Logout."""
        self.run(self.session.disconnect(self._now(), reason))

    def answer_logon(self, refusal: str | None = None) -> None:
        """Answer the Logon the application held: accept it (None) or refuse it with a Logout saying ``refusal``."""
        self.run(self.session.answer_logon(self._now(), refusal))

    def reset_sequence_numbers(self, reason: str) -> None:
        """Both sequence numbers back to 1 and the store emptied (operator, switch without connection state)."""
        self.run(self.session.reset_sequence_numbers(self._now(), reason))

    def set_sequence_numbers(self, next_sender: int | None, next_target: int | None) -> None:
        """Operator override of the next outgoing and expected incoming numbers (None keeps one)."""
        self.run(self.session.set_sequence_numbers(self._now(), next_sender, next_target))

    def shut_down(self, reason: str) -> None:
        """The session will not be used again (the process is stopping)."""
        self.run(self.session.shutdown(self._now(), reason))

    def start_connecting(self, reason: str = "connecting") -> None:
        """Initiator: the TCP connection is being opened."""
        self.run(self.session.start_connecting(self._now(), reason))

    def connection_failed(self, reason: str) -> None:
        """Initiator: the TCP connect did not succeed."""
        self.run(self.session.connection_failed(self._now(), reason))

    def start_reconnecting(self, reason: str) -> None:
        """Initiator: waiting for the next connect attempt."""
        self.run(self.session.start_reconnecting(self._now(), reason))

    def give_up(self, reason: str) -> None:
        """Initiator: no more connect attempts."""
        self.run(self.session.give_up(self._now(), reason))

    # ------------------------------------------------------------ execution

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group several calls into one batch: what they send is stored, synced and written once, at the end.

        Each call is numbered when it is made (``send`` returns its MsgSeqNum)
        and executed when the batch ends, in call order.
        """
        if self._running:
            yield
            return
        self._running = True
        try:
            yield
            self._drain()
        finally:
            self._running = False
        self._save_seqnums()
        self._flush()

    def run(self, outputs: list[Output]) -> None:
        """Execute outputs in order, then whatever was asked for meanwhile; then sync and write.

        Called while a batch runs, the outputs join the end of its queue: the
        session numbered them after everything already in it.
        """
        self._queue.extend(outputs)
        if self._running:
            return
        self._running = True
        try:
            self._drain()
        finally:
            self._running = False
        self._save_seqnums()
        self._flush()

    def _drain(self) -> None:
        """Execute the queue; then go on with a resend answer, or with the next message of the read."""
        queue = self._queue
        session = self.session
        while True:
            while queue:
                self._execute(queue.popleft())
            if self._answering is not None and not self._paused_for_drain:
                self._answer_parts()
            elif session.more_input:
                queue.extend(session.process(self._now()))
            else:
                return

    def _execute(self, output: Output) -> None:
        if isinstance(output, Send):
            if output.store:
                data = output.data if output.stored is None else output.stored
                self.store.save_outgoing(output.seq, data, self._notes.pop(output.seq, b"") if self._notes else b"")
                self._stored = True
                sent = self.traffic.sent
                sent[output.msg_type] = sent.get(output.msg_type, 0) + 1
            else:
                self.traffic.repeated(output.msg_type)
            if output.transmit and self.transport is not None:
                if self._answering is None:
                    self._pending.append(output.data)
                else:
                    self._hold(output.data)
        elif isinstance(output, Deliver):
            received = self.traffic.received
            received[output.message.msg_type] = received.get(output.message.msg_type, 0) + 1
            if self.app.on_message(self, output.message) is False:
                self._unprocessed.add(output.seq)
            if self._keep_incoming:
                self.store.save_incoming(output.seq, serialize(output.message))
            # Later outputs of this batch may hold further Delivers the
            # application has not seen yet: persist only up to this one.
            self._save_target(output.seq + 1)
        elif isinstance(output, Resend):
            if not output.as_new:
                self.traffic.resend_requests_answered += 1
            if self.transport is None:
                self.log.info("resend of %d..%d not answered: no connection", output.begin, output.end)
            elif self._answering is None:
                # Answered in its place, before what the batch holds after it, unless the socket is full.
                self._answering = _Answering(output)
                self._answer_parts()
            else:
                self._resends.append(output)
        elif isinstance(output, ResetStore):
            self._unprocessed.clear()
            self._drop_resends("the sequence numbers were reset")
            self.store.reset(output.utc_ns)
        elif isinstance(output, Disconnect):
            self._close(output.reason)
        else:
            self._report(output)

    # ------------------------------------------------------------ resends

    def _answer_parts(self) -> None:
        """Answer part after part until the answers are done or the transport is full."""
        while self._answering is not None and not self._paused_for_drain:
            self._answer_part()

    def _answer_part(self) -> None:
        """Read the next part of the resend from the store, answer it, write it; pause if the peer lags."""
        answering = self._answering
        assert answering is not None
        resend = answering.resend
        size = self.session.config.resend_answer_chunk_size
        stored = self.store.get_outgoing(answering.read_from, resend.end, size)
        through = resend.end if len(stored) < size or stored[-1][0] >= resend.end else stored[-1][0]
        outputs = self.session.answer_resend(resend.begin, resend.end, stored, self._now(), resend.as_new,
                                             through=through)
        del stored
        for output in outputs:
            if isinstance(output, Send):
                self.traffic.repeated(output.msg_type)
                if self.transport is not None:
                    self._pending.append(output.data)
            else:
                self._execute(output)
        del outputs
        if through < resend.end:
            answering.read_from = through + 1
        elif self._resends:
            self._answering = _Answering(self._resends.popleft())
        else:
            self._answering = None
            self._release_held()
        self._flush()
        transport = self.transport
        if (self._answering is not None and isinstance(transport, BackPressure)
                and transport.unsent_bytes > self.resend_high_water_bytes):
            self._paused_for_drain = True
            self.log.debug("resend of %d..%d waits at %d: %d bytes unsent", resend.begin, resend.end,
                           answering.read_from, transport.unsent_bytes)
            transport.when_drained(self.resend_low_water_bytes, self._drained)

    def _drained(self) -> None:
        """The transport has room again: go on with the resend answer."""
        if not self._paused_for_drain:
            return
        self._paused_for_drain = False
        self.run([])

    def _hold(self, data: bytes) -> None:
        """A message sent while a resend is answered: written after the answer."""
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes > self.max_held_bytes:
            reason = (f"the counterparty has not read the resend it asked for while {self._held_bytes} bytes "
                      f"of new messages waited behind it (at most {self.max_held_bytes}): disconnecting")
            self._held.clear()
            self._held_bytes = 0
            self._drop_resends()
            self.run(self.session.disconnect(self._now(), reason))

    def _release_held(self) -> None:
        self._pending.extend(self._held)
        self._held.clear()
        self._held_bytes = 0

    def _drop_resends(self, why: str | None = None) -> None:
        """Forget the resend answers (the connection or the sequence they were for is going or gone).

        With ``why`` (a close to come, or a reset) what was held behind them is written now, in order,
        and the abandoned answer is logged; without (the connection is lost) it is dropped too.
        """
        answering = self._answering
        if why is not None and answering is not None:
            self.log.warning("resend of %d..%d abandoned at %d: %s", answering.resend.begin, answering.resend.end,
                             answering.read_from, why)
        self._answering = None
        self._resends.clear()
        self._paused_for_drain = False
        if why is not None:
            self._release_held()
        else:
            self._held.clear()
            self._held_bytes = 0

    def _report(self, output: Output) -> None:
        if isinstance(output, StateChanged):
            self.log.info(
                "state %s -> %s: %s (next out %d, next in %d)",
                output.old.value, output.new.value, output.reason, output.next_sender, output.next_target,
            )
        elif isinstance(output, SessionEvent):
            self.log.info("%s: %s", output.kind, output.text)
        elif isinstance(output, Log):
            getattr(self.log, output.level, self.log.info)("%s", output.text)
        self.app.on_output(self, output)

    def processed(self, *seqs: int) -> None:
        """The application has finished with these incoming messages (one store write for all)."""
        before = len(self._unprocessed)
        self._unprocessed.difference_update(seqs)
        if len(self._unprocessed) != before:
            self._save_target()

    @property
    def unprocessed(self) -> frozenset[int]:
        return frozenset(self._unprocessed)

    def _save_target(self, upto: int | None = None) -> None:
        """Persist the next incoming number, never past an unprocessed message."""
        target = self.session.next_target if upto is None else upto
        if self._unprocessed:
            target = min(target, min(self._unprocessed))
        if self.store.next_target_seq != target:
            self.store.set_next_target_seq(target)

    def _save_seqnums(self) -> None:
        self._save_target()
        if self.store.next_sender_seq != self.session.next_sender:
            self.store.set_next_sender_seq(self.session.next_sender)

    def _flush(self) -> None:
        """Make what was stored durable, write it, then sync the rest: one sync of each per batch (group commit)."""
        stored = self._stored
        if self._notes:
            self._notes.clear()  # a number the session did not use for a message (not logged on) is given again
        if stored:
            if self.before_sync is not None:
                self.before_sync()
            started_s = clock.monotonic_s()
            self.store.sync_messages()
            self.traffic.store_sync.observe(clock.monotonic_s() - started_s)
            self._stored = False
        if self._pending:
            data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending.clear()
            if self.before_write is not None:
                self.before_write()
            if self.transport is not None:
                self.transport.write(data)
        if stored and self._slot_sync_due_s is None:
            self._slot_sync_due_s = self._now().mono_s + SLOT_SYNC_INTERVAL_S

    def _sync_slot(self) -> None:
        """Sync what the batches left for later (the sequence slot), ``SLOT_SYNC_INTERVAL_S`` after the first of them.

        Never inline: a batch's write is followed by the reply to it, not by a sync; and asking the clock
        once per interval, not per batch, keeps a batch of one message as cheap as before.
        """
        self._slot_sync_due_s = None
        if self.before_sync is not None:
            self.before_sync()
        self.store.sync()

    def _close(self, reason: str) -> None:
        """Write what is due (a final Logout), then close the transport."""
        transport = self.transport
        if transport is None:
            return
        self._drop_resends("disconnecting")
        self._flush()
        self.transport = None
        self.remote_address = None
        self.log.info("disconnecting: %s", reason)
        transport.close()
        for inner in self.session.connection_lost(self._now(), reason):
            self._execute(inner)
