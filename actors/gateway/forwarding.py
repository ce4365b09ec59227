"""Exactly-once, in-order forwarding of application messages between paired sessions.

A message received by session A from its counterparty is forwarded to its
peer B with its origin: A's name, A's store epoch (the creation time of A's
sequence, so numbers reused after a sequence reset are not confused) and its
MsgSeqNum. Each forward also names ``prev``, the origin number of the message
A forwarded just before it in the same epoch, or None when A does not know it
(after A restarted: it forwards again from its first unacknowledged message).

B accepts a forward when it continues its chain (``prev`` equals the last
accepted number) or, with ``prev`` None, when it is newer than anything
accepted. A number already accepted is a duplicate: acknowledged again, never
sent twice. Anything else arrived before its predecessor: the bus may deliver
a later message before an earlier one that was bounced while B was down, or
lost with a connection the broker dropped (a broker frozen for seconds: its
clients reconnect, and what was in the old connection is gone), and A's bus
client sends each lost one again on its own timer, in any order. B keeps
such a forward, unacknowledged (``Early``), and accepts it as soon as its
predecessor is: the run goes out at once, in chain order, instead of waiting
for each repeat to come in the right order.

B persists the last accepted number per origin epoch in a journal, together
with the outgoing MsgSeqNum it used; the message is stored with a note naming
the forward, so one sync makes the message and its acceptance durable
together (``Journal``). On restart a journal line counts only if B's store
holds that outgoing number, and the store's notes past the journal's last
checkpoint supply the lines a power cut took, so a crash at any point
neither loses nor repeats a message.

While the receiving session is not logged on to its counterparty (a
Driven whose venue session is still connecting or reconnecting), forwards
are not judged at all: ``Waiting`` holds them in memory, in arrival order,
unacknowledged, so the sender keeps them and nothing is numbered or stored
before it can go on the wire as a new message (docs/forwarding.md, "Waiting
for the Logon"). A held forward that outlives its time-to-live is settled by
rejection instead: ``Acceptance.reject`` and a journal line whose outgoing
number is ``REJECTED``, so that a repeat of it after a crash is answered
with the rejection again and never sent.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from actors.fix.tags import REF_SEQ_NUM
from actors.fix.timefmt import Instant
from actors.store import StoreWriteError, write_error

log = logging.getLogger("fixmesh.forwarding")


class Verdict(Enum):
    ACCEPT = "accept"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"


@dataclass(frozen=True, slots=True)
class Origin:
    session: str
    epoch: int

    def message_id(self, seq: int) -> str:
        return f"{self.session}:{self.epoch}:{seq}"


@dataclass(frozen=True, slots=True)
class Forward:
    """What travels in a ``deliver`` envelope's body."""

    origin: Origin
    seq: int
    prev: int | None
    msg_type: str
    header: list[tuple[int, bytes]]
    body: list[tuple[int, bytes]]
    #: When the origin session received the message (UTC ns, the gateway's clock): a waiting message's
    #: age is counted from here, so a restart of the receiver does not reset it. None from older senders.
    received_ns: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "origin": self.origin.session, "epoch": self.origin.epoch, "seq": self.seq, "prev": self.prev,
            "msg_type": self.msg_type,
            "header": [[t, v] for t, v in self.header], "body": [[t, v] for t, v in self.body],
            "received_ns": self.received_ns,
        }

    @staticmethod
    def from_wire(data: Any) -> Forward:
        if not isinstance(data, dict):
            raise ValueError("forward body is not a map")
        try:
            prev = data["prev"]
            received_ns = data.get("received_ns")
            return Forward(
                origin=Origin(str(data["origin"]), int(data["epoch"])),
                seq=int(data["seq"]),
                prev=None if prev is None else int(prev),
                msg_type=str(data["msg_type"]),
                header=[(int(t), bytes(v)) for t, v in data["header"]],
                body=[(int(t), bytes(v)) for t, v in data["body"]],
                received_ns=None if received_ns is None else int(received_ns),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed forward body: {exc}") from None


class Chain:
    """Sender side: the ``prev`` of each new forward, per epoch.

    A new process starts with an empty chain, so its first forward says
    ``prev=None``: everything before it was acknowledged, so the receiver
    has it.
    """

    def __init__(self) -> None:
        self._last: dict[int, int] = {}

    def link(self, epoch: int, seq: int) -> int | None:
        prev = self._last.get(epoch)
        self._last[epoch] = seq
        return prev


class Acceptance:
    """Receiver side: the last accepted origin number per origin epoch, and which were settled by rejection."""

    def __init__(self, accepted: dict[Origin, int] | None = None,
                 rejected: set[tuple[Origin, int]] | None = None) -> None:
        self.accepted: dict[Origin, int] = dict(accepted or {})
        #: Accepted forwards that went back to their origin as rejected instead of being sent: a repeat
        #: of one is answered with its rejection again (the first may have died with this process).
        self.rejected: set[tuple[Origin, int]] = set(rejected or ())

    def judge(self, forward: Forward) -> Verdict:
        last = self.accepted.get(forward.origin)
        if last is not None and forward.seq <= last:
            return Verdict.DUPLICATE
        if forward.prev is None or forward.prev == last:
            return Verdict.ACCEPT
        return Verdict.OUT_OF_ORDER

    def accept(self, forward: Forward) -> None:
        self.accepted[forward.origin] = forward.seq

    def reject(self, forward: Forward) -> None:
        """Accepted, but settled by a rejection to its origin: it must never be sent."""
        self.accept(forward)
        self.rejected.add((forward.origin, forward.seq))

    def was_rejected(self, forward: Forward) -> bool:
        return (forward.origin, forward.seq) in self.rejected


#: The outgoing number of a journal line whose forward was rejected, never sent.
REJECTED = -1


class NotedStore(Protocol):
    """What the journal reads of the session's store: the notes stored with its outgoing messages."""

    @property
    def next_sender_seq(self) -> int: ...

    @property
    def creation_time_ns(self) -> int: ...

    def get_notes(self, begin: int, end: int) -> list[tuple[int, bytes]]: ...


def forward_sent_as(store: NotedStore, out_seq: int) -> tuple[Origin, int] | None:
    """The origin and number of the forward a session sent as its message ``out_seq`` (the note stored with it);
    None for a message of the session's own, or a number its store does not hold."""
    notes = store.get_notes(out_seq, out_seq) if out_seq > 0 else []
    return Journal.noted(notes[0][1]) if notes else None


def refer_to_origin(store: NotedStore, body: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """A BusinessMessageReject's body with RefSeqNum (45) in its forward's numbering.

    A counterparty's reject names the forwarding session's MsgSeqNum; the peer's counterparty knows its own:
    the number of its message the refused one came from, or no RefSeqNum when it did not come from there (a
    wrong number would point at another message). Both ways: a venue's reject of an order, a trader's of a
    report.
    """
    out: list[tuple[int, bytes]] = []
    for tag, value in body:
        if tag == REF_SEQ_NUM:
            noted = forward_sent_as(store, int(value) if value.isdigit() else 0)
            if noted is None:
                continue
            value = str(noted[1]).encode()
        out.append((tag, value))
    return out


#: The first word of a checkpoint line: ``@ 0 <store creation ns> <out_seq>`` (four words, as every line).
_CHECKPOINT = b"@"


class Journal:
    """Record of accepted forwards: ``session epoch seq out_seq`` per line, with checkpoints.

    What makes an accepted forward durable is the store, not this file: the
    message a forward became is stored with a note naming the forward
    (``note``), and the one sync that must precede the send makes both
    durable together. This file's lines are buffered by the process and
    written and synced at a checkpoint (``checkpoint``, every few seconds, and
    at close), which then appends ``@ 0 <store creation ns> <out_seq>``:
    every line for an outgoing number up to ``out_seq`` of that store
    sequence is on disk. Loading reads the lines, then the notes the store
    holds after the last checkpoint: whatever a kill -9 or a power cut took
    from this file is there. A forward settled by rejection has no stored message, so
    its line is synced at once (``record_rejected``, then ``sync``).
    """

    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self._fsync = fsync
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a+b")  # noqa: SIM115  (kept open for the life of the actor)
        except OSError as exc:
            raise self._failed(exc) from exc
        #: Lines written since the last checkpoint.
        self._dirty = False

    @staticmethod
    def note(forward: Forward) -> bytes:
        """What the store keeps with the message ``forward`` becomes: ``session epoch seq``."""
        return f"{forward.origin.session} {forward.origin.epoch} {forward.seq}".encode()

    @staticmethod
    def noted(note: bytes) -> tuple[Origin, int] | None:
        """The origin and number a stored message's ``note`` names; None for one that cannot be read."""
        words = note.split()
        if len(words) != 3 or not words[1].isdigit() or not words[2].isdigit():
            return None
        return Origin(words[0].decode(), int(words[1])), int(words[2])

    def load(self, store: NotedStore) -> Acceptance:
        """Lines whose outgoing number the store holds, plus the notes it holds past the last checkpoint."""
        self._file.seek(0)
        next_sender_seq = store.next_sender_seq
        accepted: dict[Origin, int] = {}
        rejected: set[tuple[Origin, int]] = set()
        #: The first outgoing number whose line may be missing: 1 without a checkpoint of this sequence.
        notes_from = 1
        for number, line in enumerate(self._file.read().splitlines(), 1):
            parts = line.split()
            if len(parts) != 4 or not all(p.lstrip(b"-").isdigit() for p in parts[1:]):
                log.warning("%s line %d: unreadable entry ignored (%r)", self.path, number, line[:80])
                continue
            if parts[0] == _CHECKPOINT:
                if int(parts[2]) == store.creation_time_ns:
                    notes_from = int(parts[3]) + 1
                continue
            origin = Origin(parts[0].decode(), int(parts[1]))
            seq, out_seq = int(parts[2]), int(parts[3])
            if out_seq == REJECTED:
                rejected.add((origin, seq))  # counts whatever the store holds: nothing was to be sent
            if out_seq < next_sender_seq and seq > accepted.get(origin, 0):
                accepted[origin] = seq
        found = 0
        for out_seq, note in store.get_notes(notes_from, next_sender_seq - 1):
            noted = self.noted(note)
            if noted is None:
                log.warning("%s: note of stored message %d unreadable, ignored (%r)", self.path, out_seq, note[:80])
                continue
            origin, seq = noted
            if seq > accepted.get(origin, 0):
                accepted[origin] = seq
                found += 1
        if found:
            log.warning("%s: %d accepted forward(s) missing from the file were found in the store's notes",
                        self.path, found)
        self._compact(accepted, rejected, store.creation_time_ns, next_sender_seq - 1)
        return Acceptance(accepted, rejected)

    def record(self, forward: Forward, out_seq: int) -> None:
        """The forward went out as ``out_seq`` (its message is stored with ``note(forward)``)."""
        line = f"{forward.origin.session} {forward.origin.epoch} {forward.seq} {out_seq}\n"
        try:
            self._file.write(line.encode())  # a full buffer is written here
        except OSError as exc:
            raise self._failed(exc) from exc
        self._dirty = True

    def record_rejected(self, forward: Forward) -> None:
        """The forward is settled by a rejection to its origin (``sync`` before the rejection leaves)."""
        self.record(forward, REJECTED)

    def sync(self) -> None:
        """Everything written so far on disk (without a checkpoint line)."""
        try:
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
        except OSError as exc:
            raise self._failed(exc) from exc

    def checkpoint(self, creation_time_ns: int, last_out_seq: int) -> None:
        """Sync the lines written so far, then say so: they cover the numbers up to ``last_out_seq``.

        A no-op when nothing was written since the last one. The checkpoint line itself waits for
        the next sync: without it, loading reads the store's notes from the one before.
        """
        if not self._dirty:
            return
        self.sync()
        try:
            self._file.write(b"%s 0 %d %d\n" % (_CHECKPOINT, creation_time_ns, last_out_seq))
            self._file.flush()
        except OSError as exc:
            raise self._failed(exc) from exc
        self._dirty = False

    def close(self, creation_time_ns: int | None = None, last_out_seq: int | None = None) -> None:
        """Close; with the store's sequence, checkpoint first so the next load reads no notes."""
        try:
            if creation_time_ns is not None and last_out_seq is not None:
                self.checkpoint(creation_time_ns, last_out_seq)
                self.sync()
        finally:
            # A buffer whose flush failed as the sync above did: the store's notes hold those lines.
            with contextlib.suppress(OSError):
                self._file.close()

    def rebase(self, acceptance: Acceptance, creation_time_ns: int, last_out_seq: int) -> None:
        """The store's outgoing numbers moved back (a sequence reset, an operator's ``set_seqnums``).

        A line counts at ``load`` only when its outgoing number is below the store's next one, which no
        longer says whether its message was stored: a restart would forget every forward accepted in
        the old sequence, and the sender's next forward, whose ``prev`` is one of them, would never be
        accepted (or one not yet acknowledged would be sent twice). So what was accepted is written now
        as one line per origin epoch with outgoing number 0, which always counts, and a checkpoint of
        the new sequence.
        """
        self._compact(acceptance.accepted, acceptance.rejected, creation_time_ns, last_out_seq)

    def _compact(self, accepted: dict[Origin, int], rejected: set[tuple[Origin, int]],
                 creation_time_ns: int, last_out_seq: int) -> None:
        """Keep one line per origin epoch, the rejected forwards and a checkpoint, so the journal stays small."""
        tmp = self.path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as out:
                for origin, seq in sorted(rejected, key=lambda r: (r[0].session, r[0].epoch, r[1])):
                    out.write(f"{origin.session} {origin.epoch} {seq} {REJECTED}\n".encode())
                for origin, seq in accepted.items():
                    out.write(f"{origin.session} {origin.epoch} {seq} 0\n".encode())
                out.write(b"%s 0 %d %d\n" % (_CHECKPOINT, creation_time_ns, last_out_seq))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            self._file.close()
            self._file = open(self.path, "a+b")  # noqa: SIM115
        except OSError as exc:
            raise self._failed(exc) from exc
        self._dirty = False

    def _failed(self, exc: OSError) -> StoreWriteError:
        return write_error(f"write the forwarding journal {self.path}", exc)


_Item = TypeVar("_Item")

#: Forwards a session holds while it is not logged on; one more is left unacknowledged for its sender
#: to repeat. The sender's bus outbox holds as many, so a single peer never meets this bound.
DEFAULT_MAX_WAITING = 10_000
#: Forwards kept ahead of their predecessor: the sender's outbox holds at most as many.
DEFAULT_MAX_EARLY = 10_000


@dataclass(frozen=True, slots=True)
class Held(Generic[_Item]):
    """One forward waiting for its session's Logon."""

    id: str
    forward: Forward
    #: What the caller needs to settle it later (the bus envelope to acknowledge).
    item: _Item
    #: Arrival order, the tie-break of releases and expiries.
    order: int
    #: Where the waiting is counted from (UTC ns): the origin's receipt time, else when it was first held.
    since_ns: int
    #: Monotonic seconds at which it outlives its time-to-live; None without one.
    expires_s: float | None

    def age_s(self, now: Instant) -> float:
        return max(0.0, (now.utc_ns - self.since_ns) / 1e9)


class Early(Generic[_Item]):
    """Forwards that came before their predecessor, unacknowledged, by the number they follow. Pure.

    ``keep`` holds one (a repeat of a kept one is a lookup); ``after`` takes out the one that follows
    ``seq`` of ``origin``, when it is here, for the caller to accept next. Beyond ``max_early`` the
    oldest kept is dropped: it stays with its sender, which repeats it. A kept forward whose
    predecessor never comes (its origin restarted and resends with another chain) is dropped the
    same way, or answered as a duplicate when its repeat arrives.
    """

    def __init__(self, max_early: int = DEFAULT_MAX_EARLY) -> None:
        if max_early < 1:
            raise ValueError("max_early must be at least 1")
        self.max_early = max_early
        self._kept: dict[tuple[Origin, int], tuple[str, Forward, _Item]] = {}
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, id: str) -> bool:
        return id in self._ids

    def keep(self, id: str, forward: Forward, item: _Item) -> None:
        if forward.prev is None or id in self._ids:
            return
        key = (forward.origin, forward.prev)
        replaced = self._kept.pop(key, None)
        if replaced is not None:
            self._ids.discard(replaced[0])
        elif len(self._kept) >= self.max_early:
            oldest = next(iter(self._kept))
            self._ids.discard(self._kept.pop(oldest)[0])
        self._kept[key] = (id, forward, item)
        self._ids.add(id)

    def after(self, origin: Origin, seq: int) -> tuple[_Item, Forward] | None:
        kept = self._kept.pop((origin, seq), None)
        if kept is None:
            return None
        id, forward, item = kept
        self._ids.discard(id)
        return item, forward


class Waiting(Generic[_Item]):
    """Forwards held, unacknowledged, until their session is logged on. Pure: time is an argument.

    Rules:

    * ``hold`` keeps a forward in arrival order, once per id (a repeat from
      the sender's bus retransmission costs one dict lookup and is dropped);
      beyond ``max_waiting`` it refuses (False) and the forward stays with
      its sender, which repeats it.
    * With a time-to-live, a held forward expires ``ttl_s`` after its
      ``since_ns`` (the origin's ``received_ns`` when it has one: waiting
      that began before a restart of this process still counts). ``expired``
      takes out those due, ``next_expiry_s`` says when the next one is.
    * ``release`` takes out everything, in the order to send it: origins in
      the order their first forward arrived, each origin's forwards by
      number (its chain order, even when the bus reordered them).
    """

    def __init__(self, ttl_s: float | None = None, max_waiting: int = DEFAULT_MAX_WAITING) -> None:
        if max_waiting < 1 or (ttl_s is not None and ttl_s <= 0):
            raise ValueError("max_waiting must be at least 1 and ttl_s positive (or None)")
        self.ttl_s = ttl_s
        self.max_waiting = max_waiting
        self._held: dict[str, Held[_Item]] = {}
        #: (expires_s, order, id) of every held forward when there is a time-to-live.
        self._expiries: list[tuple[float, int, str]] = []
        self._order = 0

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, id: str) -> bool:
        return id in self._held

    def hold(self, id: str, forward: Forward, item: _Item, now: Instant) -> bool:
        """Keep ``forward`` until release or expiry; False when it was refused (full)."""
        if id in self._held:
            return True
        if len(self._held) >= self.max_waiting:
            return False
        since_ns = forward.received_ns if forward.received_ns is not None else now.utc_ns
        expires_s: float | None = None
        if self.ttl_s is not None:
            waited_s = max(0.0, (now.utc_ns - since_ns) / 1e9)
            expires_s = now.mono_s + self.ttl_s - waited_s
            heapq.heappush(self._expiries, (expires_s, self._order, id))
        self._held[id] = Held(id, forward, item, self._order, since_ns, expires_s)
        self._order += 1
        return True

    def next_expiry_s(self) -> float | None:
        return self._expiries[0][0] if self._expiries else None

    def expired(self, now: Instant) -> list[Held[_Item]]:
        """Take out the forwards that outlived their time-to-live, in release order."""
        out: list[Held[_Item]] = []
        while self._expiries and self._expiries[0][0] <= now.mono_s:
            _, _, id = heapq.heappop(self._expiries)
            out.append(self._held.pop(id))
        return self._in_release_order(out)

    def release(self) -> list[Held[_Item]]:
        """Take out every held forward, in the order to send them."""
        held = list(self._held.values())
        self._held.clear()
        self._expiries.clear()
        return self._in_release_order(held)

    @staticmethod
    def _in_release_order(held: list[Held[_Item]]) -> list[Held[_Item]]:
        first: dict[Origin, int] = {}
        for h in sorted(held, key=lambda h: h.order):
            first.setdefault(h.forward.origin, h.order)
        return sorted(held, key=lambda h: (first[h.forward.origin], h.forward.seq))
