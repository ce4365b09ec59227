"""Round-trip recording shared by the latency clients (fixmesh and QuickFIX), and the statistics.

A client runs phases given as text:

* ``paced:RATE:SECONDS``: order ``i`` is due at ``start + i / RATE``; the
  client sends whatever is due each time it wakes (it never skips one), so a
  saturated system shows as growing latency and late sends, not as a lower
  offered rate; once more than ``MAX_BACKLOG_S`` of orders await a reply
  the phase stops sending (``aborted``): the rate is not sustained;
* ``closed:WINDOW:COUNT``: ``COUNT`` orders with at most ``WINDOW`` awaiting
  their ExecutionReport; the achieved rate is the maximum sustained rate
  with that many in flight.

Each order's round trip runs from just before the client hands it to its
FIX engine to just after the engine hands up the ExecutionReport with the
same ClOrdID (monotonic nanoseconds, one process, so no clock skew). The
latencies of a phase go to ``<dir>/<name>.lat`` (int64 ns, order of sending;
0 for an order without reply).
"""

from __future__ import annotations

import math
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A send this late against its due time counts as late (the client or the machine could not keep the pace).
LATE_NS = 1_000_000
#: A paced phase stops sending once more than this many seconds of orders await their reply: the
#: system does not sustain the rate, and a growing backlog would only delay the phases after it.
MAX_BACKLOG_S = 1.0
MIN_BACKLOG = 200


@dataclass
class PhaseSpec:
    name: str
    kind: str  # "paced" | "closed"
    rate: float = 0.0
    seconds: float = 0.0
    window: int = 0
    count: int = 0

    @staticmethod
    def parse(text: str) -> PhaseSpec:
        """``name=paced:1000:10`` or ``name=closed:200:20000``."""
        name, _, spec = text.partition("=")
        kind, a, b = spec.split(":")
        if kind == "paced":
            rate, seconds = float(a), float(b)
            return PhaseSpec(name, kind, rate=rate, seconds=seconds, count=max(1, int(rate * seconds)))
        if kind == "closed":
            return PhaseSpec(name, kind, window=int(a), count=int(b))
        raise ValueError(f"unknown phase kind {kind!r} in {text!r}")


class Phase:
    """Send times and round trips of one phase; ClOrdIDs ``base + 1 .. base + count``."""

    def __init__(self, spec: PhaseSpec, base_id: int) -> None:
        self.spec = spec
        self.base = base_id
        self.count = spec.count
        self.sent_ns = array("q", bytes(8 * spec.count))
        self.rtt_ns = array("q", bytes(8 * spec.count))
        self.next = 0
        self.received = 0
        self.start_ns = 0
        self.last_reply_ns = 0
        self.late = 0
        self.max_late_ns = 0
        self.aborted = False
        self._interval_ns = 1e9 / spec.rate if spec.kind == "paced" else 0.0

    def begin(self) -> None:
        self.start_ns = time.monotonic_ns()

    @property
    def all_sent(self) -> bool:
        return self.next >= self.count or self.aborted

    def check_backlog(self) -> bool:
        """True (and the phase aborted) when a paced phase has fallen more than ``MAX_BACKLOG_S`` behind."""
        if self.spec.kind == "paced" and self.outstanding > max(MIN_BACKLOG, self.spec.rate * MAX_BACKLOG_S):
            self.aborted = True
        return self.aborted

    @property
    def outstanding(self) -> int:
        return self.next - self.received

    def due_ns(self, i: int) -> int:
        return self.start_ns + int(i * self._interval_ns)

    def may_send(self, now_ns: int) -> bool:
        if self.next >= self.count or self.aborted or self.check_backlog():
            return False
        if self.spec.kind == "paced":
            return now_ns >= self.due_ns(self.next)
        return self.outstanding < self.spec.window

    def next_due_s(self) -> float | None:
        """Seconds until the next paced send (None when not paced or all sent)."""
        if self.spec.kind != "paced" or self.all_sent:
            return None
        return (self.due_ns(self.next) - time.monotonic_ns()) / 1e9

    def take(self, now_ns: int) -> int:
        """Record a send at ``now_ns``; returns its ClOrdID."""
        i = self.next
        self.next += 1
        self.sent_ns[i] = now_ns
        if self.spec.kind == "paced":
            late = now_ns - self.due_ns(i)
            if late > LATE_NS:
                self.late += 1
            self.max_late_ns = max(self.max_late_ns, late)
        return self.base + i + 1

    def reply(self, cl_ord_id: int, now_ns: int) -> None:
        i = cl_ord_id - self.base - 1
        if 0 <= i < self.count and self.rtt_ns[i] == 0 and self.sent_ns[i]:
            self.rtt_ns[i] = max(1, now_ns - self.sent_ns[i])
            self.received += 1
            self.last_reply_ns = now_ns

    def finish(self, directory: Path) -> dict[str, Any]:
        path = directory / f"{self.spec.name}.lat"
        with path.open("wb") as f:
            self.rtt_ns.tofile(f)
        elapsed_s = max(1e-9, (self.last_reply_ns - self.start_ns) / 1e9) if self.received else 0.0
        return {"name": self.spec.name, "kind": self.spec.kind, "rate": self.spec.rate,
                "window": self.spec.window, "planned": self.count, "sent": self.next, "received": self.received,
                "aborted": self.aborted,
                "elapsed_s": elapsed_s, "achieved_per_s": self.received / elapsed_s if elapsed_s else 0.0,
                "late_sends": self.late, "max_late_ms": self.max_late_ns / 1e6, "file": str(path)}


# ------------------------------------------------------------------ statistics


def load(path: str | Path) -> list[int]:
    """Round trips (ns) of the orders that got a reply, from a ``.lat`` file."""
    values = array("q")
    data = Path(path).read_bytes()
    values.frombytes(data[: len(data) - len(data) % 8])
    return [v for v in values if v > 0]


def percentile(sorted_values: list[int] | list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summary_us(values_ns: list[int]) -> dict[str, float]:
    ordered = sorted(values_ns)
    out = {f"p{q:g}": percentile(ordered, q) / 1000.0 for q in (50, 90, 99, 99.9)}
    out["max"] = ordered[-1] / 1000.0 if ordered else math.nan
    out["mean"] = sum(ordered) / len(ordered) / 1000.0 if ordered else math.nan
    out["n"] = float(len(ordered))
    return out
