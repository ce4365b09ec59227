"""Time to recover, measured while the chaos run goes: a thread that follows every user's counter and received log.

**Time to recover** from a fault: from the moment the fault began (the kill
sent, the host's processes killed, the link cut) until every pair the fault
interrupts has had an ExecutionReport back for an order its user sent after
that moment. An order sent before the fault that completes after it does
not count: it may not have needed the part the fault took. For a kill of a
Handler or a Driven the interrupted pair is its own; for anything else
(a broker, a coordinator, the monitor, a host, a link) it is every pair. A
link cut's or a lost host's recovery therefore includes the time the link
was down or the host away (the report gives those pauses too), and a lost
broker host's is the backup's take-over.

Faults come faster than some recoveries take, so a recovery can include the
effect of the faults after it. A fault is **alone** when no later fault
touching one of its pairs began before it had recovered; the report gives
the figures of all faults and of those alone.

Figures are as fine as the poll: the thread reads each user's next ClOrdID
(``<store>/<session>.next-clordid``) and the new lines of its received log
every ``POLL_S``. Reports arrive in order per pair, so "a report for an
order numbered at least N" is "the highest ClOrdID reported is at least N".
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos.ledger import parse_received, read_sent

POLL_S = 0.05


@dataclass
class Follower:
    """One user's files, read incrementally."""

    counter: Path
    received: Path
    offset: int = 0
    highest_report: int = 0
    reports: int = 0

    def next_order(self) -> int:
        """The ClOrdID the user will send next."""
        return read_sent(self.counter) + 1

    def poll(self) -> None:
        try:
            with self.received.open("rb") as file:
                file.seek(self.offset)
                data = file.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        for entry in parse_received(data[: end + 1]):
            self.reports += 1
            if entry.cl_ord_id.isdigit():
                self.highest_report = max(self.highest_report, int(entry.cl_ord_id))


@dataclass
class Recovery:
    """One fault's recovery: per interrupted pair, the first ClOrdID sent after it and when its report came."""

    started_s: float
    first_order: dict[int, int]
    recovered_s: dict[int, float] = field(default_factory=dict)
    #: A later fault touching one of its pairs began before it had recovered.
    overlapped: bool = False

    @property
    def seconds(self) -> float | None:
        """Until the last interrupted pair recovered; None while one has not."""
        if len(self.recovered_s) < len(self.first_order):
            return None
        return max(self.recovered_s.values(), default=self.started_s) - self.started_s


class Watch:
    """The thread; ``begin(started_s, pairs)`` registers a fault (call it right after the fault's first act)."""

    def __init__(self, followers: dict[int, Follower]) -> None:
        self.followers = followers
        self._pending: list[Recovery] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def begin(self, started_s: float, pairs: tuple[int, ...]) -> Recovery:
        recovery = Recovery(started_s, {p: self.followers[p].next_order() for p in pairs})
        with self._lock:
            for earlier in self._pending:
                if any(p not in earlier.recovered_s for p in pairs if p in earlier.first_order):
                    earlier.overlapped = True
            self._pending.append(recovery)
        return recovery

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                for follower in self.followers.values():
                    follower.poll()
                now = time.monotonic()
                for recovery in self._pending:
                    for pair, first in recovery.first_order.items():
                        if pair not in recovery.recovered_s and self.followers[pair].highest_report >= first:
                            recovery.recovered_s[pair] = now
                self._pending = [r for r in self._pending if r.seconds is None]
            self._stop.wait(POLL_S)
