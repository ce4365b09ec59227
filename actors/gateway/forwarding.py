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
sent twice. Anything else arrived out of order (the bus may deliver a later
message before an earlier one that was bounced while B was down): it is
dropped without acknowledgement, and A sends both again, in order.

B persists the last accepted number per origin epoch in a journal written
*before* it stores the outgoing message, together with the outgoing MsgSeqNum
it is about to use; on restart an entry counts only if B's store holds that
outgoing number, so a crash between the two writes neither loses nor repeats
a message.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

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

    def to_wire(self) -> dict[str, Any]:
        return {
            "origin": self.origin.session, "epoch": self.origin.epoch, "seq": self.seq, "prev": self.prev,
            "msg_type": self.msg_type,
            "header": [[t, v] for t, v in self.header], "body": [[t, v] for t, v in self.body],
        }

    @staticmethod
    def from_wire(data: Any) -> Forward:
        if not isinstance(data, dict):
            raise ValueError("forward body is not a map")
        try:
            prev = data["prev"]
            return Forward(
                origin=Origin(str(data["origin"]), int(data["epoch"])),
                seq=int(data["seq"]),
                prev=None if prev is None else int(prev),
                msg_type=str(data["msg_type"]),
                header=[(int(t), bytes(v)) for t, v in data["header"]],
                body=[(int(t), bytes(v)) for t, v in data["body"]],
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
    """Receiver side: the last accepted origin number per origin epoch."""

    def __init__(self, accepted: dict[Origin, int] | None = None) -> None:
        self.accepted: dict[Origin, int] = dict(accepted or {})

    def judge(self, forward: Forward) -> Verdict:
        last = self.accepted.get(forward.origin)
        if last is not None and forward.seq <= last:
            return Verdict.DUPLICATE
        if forward.prev is None or forward.prev == last:
            return Verdict.ACCEPT
        return Verdict.OUT_OF_ORDER

    def accept(self, forward: Forward) -> None:
        self.accepted[forward.origin] = forward.seq


class Journal:
    """Append-only record of accepted forwards: ``session epoch seq out_seq`` per line."""

    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self._fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a+b")  # noqa: SIM115  (kept open for the life of the actor)

    def load(self, next_sender_seq: int) -> Acceptance:
        """Entries whose outgoing number the store holds (``< next_sender_seq``)."""
        self._file.seek(0)
        accepted: dict[Origin, int] = {}
        for number, line in enumerate(self._file.read().splitlines(), 1):
            parts = line.split()
            if len(parts) != 4 or not all(p.lstrip(b"-").isdigit() for p in parts[1:]):
                log.warning("%s line %d: unreadable entry ignored (%r)", self.path, number, line[:80])
                continue
            origin = Origin(parts[0].decode(), int(parts[1]))
            seq, out_seq = int(parts[2]), int(parts[3])
            if out_seq < next_sender_seq and seq > accepted.get(origin, 0):
                accepted[origin] = seq
        self._compact(accepted)
        return Acceptance(accepted)

    def record(self, forward: Forward, out_seq: int) -> None:
        line = f"{forward.origin.session} {forward.origin.epoch} {forward.seq} {out_seq}\n"
        self._file.write(line.encode())
        self._file.flush()

    def sync(self) -> None:
        if self._fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def _compact(self, accepted: dict[Origin, int]) -> None:
        """Keep one line per origin epoch so the journal does not grow without bound."""
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            for origin, seq in accepted.items():
                out.write(f"{origin.session} {origin.epoch} {seq} 0\n".encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        self._file.close()
        self._file = open(self.path, "a+b")  # noqa: SIM115
