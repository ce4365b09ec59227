"""The ledger of a chaos run: what the witnesses' logs and the sessions' stores say, checked. Pure but for the
readers at the bottom.

Rules, per pair (user i -> Handler -> broker -> Driven -> venue i, and back):

* the user sent ClOrdIDs 1..``sent`` (its counter beside its store);
* every one of them is in the venue's received log (else: an order **lost**);
* no ClOrdID is there twice, unless each later copy carries PossDupFlag=Y
  (a FIX resend the venue recognises: counted as a **resend**, not an
  error); a later copy without it is a **duplicated** order;
* nothing else is there (else: an order the user did **not send**);
* every distinct order at the venue has its ExecutionReport in the user's
  received log (else: a report **lost**), once (the same PossDup rule: else
  **duplicated**), and no report arrives for an order the venue never
  received (**unexpected**);
* in each received log the MsgSeqNum only grows (a number delivered twice,
  or numbers going back, is a **sequence** problem).

Per FIX connection (user <-> Handler, Driven <-> venue, each way), once
everything has settled: the receiver's next expected MsgSeqNum equals the
sender's next outgoing one. The session core never moves past a gap it has
not filled (by the resent messages or a SequenceReset-GapFill), so a
receiver behind its sender has a **gap** left unfilled, and one ahead of it
took numbers its sender never sent. (Admin messages take numbers too, so
the application lines of a received log cannot show this by themselves.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from actors.store import FileStore
from actors.store.api import StoreError

#: At most this many ClOrdIDs named per problem; the count is always whole.
SHOWN = 5


@dataclass(frozen=True, slots=True)
class Received:
    """One line of a received log: ``<ClOrdID> <MsgSeqNum> <PossDupFlag>``."""

    cl_ord_id: str
    seq: int
    possdup: bool


@dataclass(frozen=True)
class PairLog:
    """One pair's witnesses: what its user sent, what its venue and its user received."""

    name: str
    sent: int
    at_venue: Sequence[Received]
    at_user: Sequence[Received]


@dataclass(frozen=True, slots=True)
class LinkNumbers:
    """One direction of one FIX connection at the end: the sender's next outgoing and the receiver's next
    expected MsgSeqNum (None: that store could not be read)."""

    name: str
    sender_next: int | None
    receiver_next: int | None


@dataclass
class PairLedger:
    name: str
    sent: int
    at_venue: int = 0
    orders_lost: list[str] = field(default_factory=list)
    orders_duplicated: list[str] = field(default_factory=list)
    orders_resent: int = 0
    orders_unsent: list[str] = field(default_factory=list)
    reports: int = 0
    reports_lost: list[str] = field(default_factory=list)
    reports_duplicated: list[str] = field(default_factory=list)
    reports_resent: int = 0
    reports_unexpected: list[str] = field(default_factory=list)
    sequence: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.orders_lost) + len(self.reports_lost)

    @property
    def duplicated(self) -> int:
        return len(self.orders_duplicated) + len(self.reports_duplicated)

    @property
    def complete(self) -> bool:
        """Everything sent has arrived, both ways (what the settle phase waits for)."""
        return not self.orders_lost and not self.reports_lost

    def problems(self) -> list[str]:
        """One line per kind of problem, naming the first ClOrdIDs."""
        out = []
        for what, ids in (("orders lost (never at the venue)", self.orders_lost),
                          ("orders at the venue twice without PossDupFlag=Y", self.orders_duplicated),
                          ("orders at the venue the user never sent", self.orders_unsent),
                          ("ExecutionReports lost (never at the user)", self.reports_lost),
                          ("ExecutionReports at the user twice without PossDupFlag=Y", self.reports_duplicated),
                          ("ExecutionReports for orders the venue never received", self.reports_unexpected)):
            if ids:
                out.append(f"{self.name}: {len(ids)} {what}, ClOrdID {', '.join(ids[:SHOWN])}"
                           f"{' ...' if len(ids) > SHOWN else ''}")
        out += [f"{self.name}: {line}" for line in self.sequence]
        return out


def _repeats(entries: Sequence[Received]) -> tuple[dict[str, int], list[str], int]:
    """(ClOrdID -> copies, the ClOrdIDs repeated without PossDupFlag=Y, the number of PossDup repeats)."""
    copies: dict[str, int] = {}
    duplicated: list[str] = []
    resent = 0
    for entry in entries:
        seen = copies.get(entry.cl_ord_id, 0)
        copies[entry.cl_ord_id] = seen + 1
        if seen:
            if entry.possdup:
                resent += 1
            elif entry.cl_ord_id not in duplicated:
                duplicated.append(entry.cl_ord_id)
    return copies, duplicated, resent


def _sequence(entries: Sequence[Received], where: str) -> list[str]:
    """MsgSeqNum must grow from line to line of one received log."""
    bad = [(a.seq, b.seq) for a, b in zip(entries, entries[1:], strict=False) if b.seq <= a.seq]
    if not bad:
        return []
    shown = ", ".join(f"{a} then {b}" for a, b in bad[:SHOWN])
    return [f"{len(bad)} times a MsgSeqNum not above the one before in the {where}'s received log ({shown})"]


def _by_number(ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c))


def check_pair(log: PairLog) -> PairLedger:
    """The ledger of one pair (the rules at the top of the module)."""
    result = PairLedger(log.name, log.sent)
    orders, result.orders_duplicated, result.orders_resent = _repeats(log.at_venue)
    result.at_venue = len(orders)
    sent = {str(n) for n in range(1, log.sent + 1)}
    result.orders_lost = _by_number([c for c in sent if c not in orders])
    result.orders_unsent = _by_number([c for c in orders if c not in sent])
    reports, result.reports_duplicated, result.reports_resent = _repeats(log.at_user)
    result.reports = len(reports)
    result.reports_lost = _by_number([c for c in orders if c not in reports])
    result.reports_unexpected = _by_number([c for c in reports if c not in orders])
    result.sequence = _sequence(log.at_venue, "venue") + _sequence(log.at_user, "user")
    return result


def check_links(links: Sequence[LinkNumbers]) -> list[str]:
    """One line per FIX connection direction whose receiver is not exactly at its sender's next number."""
    out = []
    for link in links:
        if link.sender_next is None or link.receiver_next is None:
            out.append(f"{link.name}: a store could not be read (sender next {link.sender_next}, "
                       f"receiver expects {link.receiver_next})")
        elif link.receiver_next < link.sender_next:
            out.append(f"{link.name}: the receiver expects MsgSeqNum {link.receiver_next} but the sender is at "
                       f"{link.sender_next}: {link.sender_next - link.receiver_next} message(s) never received, "
                       "a gap left unfilled")
        elif link.receiver_next > link.sender_next:
            out.append(f"{link.name}: the receiver expects MsgSeqNum {link.receiver_next}, beyond the sender's "
                       f"next {link.sender_next}: numbers taken that were never sent")
    return out


# ------------------------------------------------------------------ readers


def parse_received(data: bytes) -> list[Received]:
    """Complete lines only (the writer may be in the middle of one); an unreadable line keeps its text."""
    entries = []
    for line in data.split(b"\n")[:-1]:
        words = line.decode("ascii", "replace").split()
        if len(words) == 3 and words[1].isdigit():
            entries.append(Received(words[0], int(words[1]), words[2] == "Y"))
        else:
            entries.append(Received(line.decode("ascii", "replace"), -1, False))
    return entries


def read_received(path: Path) -> list[Received]:
    try:
        return parse_received(path.read_bytes())
    except FileNotFoundError:
        return []


def read_sent(counter: Path) -> int:
    """Orders a user sent: its next ClOrdID (``actors.sim.endpoint``'s counter file) minus one; 0 if none yet."""
    try:
        return max(0, int(counter.read_text(encoding="ascii").split()[0]) - 1)
    except (OSError, ValueError, IndexError):
        return 0


def store_numbers(directory: Path, session_id: str) -> tuple[int, int] | None:
    """(next sender, next target) MsgSeqNum of a file store, read without locking it; None if it cannot be read."""
    try:
        store = FileStore.inspect(directory, session_id)
    except (StoreError, OSError):
        return None
    try:
        return store.next_sender_seq, store.next_target_seq
    finally:
        store.close()
