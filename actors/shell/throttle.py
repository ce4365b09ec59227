"""Rate limits on a session's application messages, with no socket and no clock.

FIX Antenna throttles a session by "at most N messages within an interval",
per direction and optionally per MsgType; this module is that rule as plain
classes that take the time as an argument (monotonic seconds) and return
decisions. The session actor (``actors.gateway.throttling``) carries them out:
it rejects, delays or queues, publishes and logs.

Rules (the whole of it):

* A ``Limit`` is ``count`` messages per ``interval_s`` seconds over a sliding
  window: a message admitted at ``t`` counts until ``t + interval_s``
  (exclusive), so no span of ``interval_s`` seconds ever holds more than
  ``count`` admissions. The window keeps at most ``count`` times.
* A ``Throttle`` has an overall limit (every application message) and limits
  per MsgType, each optional. A message is admitted when every limit that
  counts it has room, and then counts in each of them. A message that is
  not admitted counts nowhere: a rejected flood does not shut out what
  follows it.
* ``free_at`` is the earliest time the message would be admitted: the moment
  the oldest admission that fills a limit stops counting, or minus infinity
  when no limit that counts it is full. It depends on what was admitted, not
  on the clock, so a loop that compares it with its own time of the turn
  never waits for a deadline that moves away (``now_s`` only forgets what has
  stopped counting). Time that goes backwards is read as the latest time
  seen.
* A ``ThrottledQueue`` keeps messages that must wait, first in first out: a
  message offered while others wait queues behind them even when its own
  limit has room (a cancel never overtakes its order). ``release`` takes
  from the head while the throttle admits. It holds at most ``max_queued``;
  one more is refused (``FULL``). With ``refuse_until_empty`` a refusal
  goes on until the queue has drained, so that what a sender repeats
  arrives again in its order. A key offered twice while queued is queued
  once.
* ``ThrottleReport`` counts throttled messages between reports: the first
  after a quiet spell is due at once, then at most one report per
  ``every_s``, so a flood costs one log line and one event a second.

Session-level messages (Heartbeat, TestRequest, ResendRequest, Reject,
SequenceReset, Logout, Logon) are never offered: the actor throttles only
what the session core delivers to the application and what it forwards.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

#: MsgTypes of the session layer: never throttled, so a limit on one of them is a configuration mistake.
SESSION_MSG_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
#: The largest ``count`` of a limit: its window keeps one time per admitted message.
MAX_COUNT = 100_000
#: What ``free_at`` says of a message that would be admitted now: a time before any other.
NOW = float("-inf")
#: Inbound messages a session delays at most (``action: delay``); one more is rejected. A delayed order is
#: stale soon: at 100 a second, a thousand is ten seconds late.
DEFAULT_MAX_DELAYED = 1_000
#: Outbound messages a session queues at most: the bus outbox's own bound (``actors.gateway.outbox``), so
#: with one peer the peer's outbox fills first and the rest waits with it, in order.
DEFAULT_MAX_QUEUED = 10_000


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` messages in any ``interval_s`` seconds."""

    count: int
    interval_s: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_COUNT or self.interval_s <= 0:
            raise ValueError(f"a limit is 1-{MAX_COUNT} messages per a positive interval, not {self}")

    def describe(self) -> str:
        return f"{self.count} per {self.interval_s:g} s"


class Window:
    """The admission times of one limit that still count (oldest first)."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self._times: deque[float] = deque()

    def free_at(self, now_s: float) -> float:
        """When one more message fits: minus infinity (it fits), or when the oldest admission stops counting."""
        times, interval_s = self._times, self.limit.interval_s
        while times and times[0] + interval_s <= now_s:
            times.popleft()
        if len(times) < self.limit.count:
            return NOW
        return times[0] + interval_s

    def take(self, now_s: float) -> None:
        self._times.append(now_s)

    def __len__(self) -> int:
        return len(self._times)


@dataclass(frozen=True, slots=True)
class Rates:
    """A direction's limits: ``overall`` counts every application message, ``by_msg_type`` only its own."""

    overall: Limit | None = None
    by_msg_type: tuple[tuple[str, Limit], ...] = ()

    def __post_init__(self) -> None:
        if self.overall is None and not self.by_msg_type:
            raise ValueError("rates need an overall limit or one per MsgType")
        session = sorted(t for t, _ in self.by_msg_type if t in SESSION_MSG_TYPES)
        if session:
            raise ValueError(f"session-level MsgTypes are never throttled: {', '.join(session)}")

    def limit_of(self, msg_type: str) -> Limit | None:
        return dict(self.by_msg_type).get(msg_type)

    def describe(self, msg_type: str | None = None) -> str:
        """``100 per 1 s`` and, for a MsgType with its own limit, ``; D: 50 per 1 s``."""
        parts = [] if self.overall is None else [self.overall.describe()]
        own = self.limit_of(msg_type) if msg_type is not None else None
        if own is not None:
            parts.append(f"{msg_type}: {own.describe()}")
        elif msg_type is None:
            parts += [f"{t}: {limit.describe()}" for t, limit in self.by_msg_type]
        return "; ".join(parts) or "no limit"


class Throttle:
    """The windows of one direction of a session: admit or not, and when."""

    def __init__(self, rates: Rates) -> None:
        self.rates = rates
        self._overall = Window(rates.overall) if rates.overall is not None else None
        self._by_type: dict[str, Window] = {t: Window(limit) for t, limit in rates.by_msg_type}
        self._latest_s = float("-inf")

    def _windows(self, msg_type: str) -> Iterable[Window]:
        if self._overall is not None:
            yield self._overall
        own = self._by_type.get(msg_type)
        if own is not None:
            yield own

    def _now(self, now_s: float) -> float:
        self._latest_s = max(self._latest_s, now_s)
        return self._latest_s

    def free_at(self, msg_type: str, now_s: float) -> float:
        """The earliest time ``msg_type`` would be admitted (``NOW``, minus infinity, when no limit is full)."""
        now_s = self._now(now_s)
        return max((w.free_at(now_s) for w in self._windows(msg_type)), default=NOW)

    def admit(self, msg_type: str, now_s: float) -> bool:
        """Admit and count the message if every limit that counts it has room; False leaves nothing counted."""
        now_s = self._now(now_s)
        if self.free_at(msg_type, now_s) > now_s:
            return False
        for window in self._windows(msg_type):
            window.take(now_s)
        return True

    def binding_limit(self, msg_type: str, now_s: float) -> str:
        """The limit that holds ``msg_type`` back now, in words (``50 per 1 s of D``); for texts and logs."""
        now_s = self._now(now_s)
        own = self._by_type.get(msg_type)
        if own is not None and own.free_at(now_s) > now_s:
            return f"{own.limit.describe()} of {msg_type}"
        if self._overall is not None:
            return f"{self._overall.limit.describe()}"
        return "no limit"


class Action(Enum):
    """What an inbound message over the limit gets."""

    #: A BusinessMessageReject saying it was throttled; it counts as processed and goes nowhere.
    REJECT = "reject"
    #: It waits, unprocessed, and is forwarded when the limit allows (a full wait rejects it).
    DELAY = "delay"


@dataclass(frozen=True, slots=True)
class InboundThrottling:
    """``throttle.inbound``: messages from the counterparty."""

    rates: Rates
    action: Action = Action.REJECT
    max_queued: int = DEFAULT_MAX_DELAYED


@dataclass(frozen=True, slots=True)
class OutboundThrottling:
    """``throttle.outbound``: messages the session sends for its peer; over the limit they queue."""

    rates: Rates
    max_queued: int = DEFAULT_MAX_QUEUED


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    """``throttle:`` of a session: either direction, or both."""

    inbound: InboundThrottling | None = None
    outbound: OutboundThrottling | None = None


class Admission(Enum):
    """What became of a message offered to a ``ThrottledQueue``."""

    #: Admitted now: send or forward it at once.
    PASS = "pass"
    #: Waits in the queue (or was already waiting) until ``release`` hands it out.
    QUEUED = "queued"
    #: The queue is full: refused, nothing kept.
    FULL = "full"


_Item = TypeVar("_Item")


@dataclass(frozen=True, slots=True)
class Queued(Generic[_Item]):
    key: Hashable
    msg_type: str
    item: _Item
    #: Monotonic seconds at which it was queued.
    since_s: float
    #: Monotonic seconds after which it is too old to send (its time-to-live); None: never.
    expires_s: float | None = None


class ThrottledQueue(Generic[_Item]):
    """Messages waiting for their throttle, first in first out, at most ``max_queued``."""

    def __init__(self, throttle: Throttle, max_queued: int, *, refuse_until_empty: bool = False) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self.throttle = throttle
        self.max_queued = max_queued
        self.refuse_until_empty = refuse_until_empty
        self._queue: deque[Queued[_Item]] = deque()
        self._keys: set[Hashable] = set()
        self._refusing = False

    def __len__(self) -> int:
        return len(self._queue)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    @property
    def refusing(self) -> bool:
        """True from a refusal until the queue has drained (``refuse_until_empty`` only)."""
        return self._refusing

    def offer(self, key: Hashable, msg_type: str, item: _Item, now_s: float,
              expires_s: float | None = None) -> Admission:
        """``expires_s``: when a queued item is too old to send; ``expired`` takes it out then."""
        if key in self._keys:
            return Admission.QUEUED
        if not self._queue:
            self._refusing = False
            if self.throttle.admit(msg_type, now_s):
                return Admission.PASS
        if self._refusing or len(self._queue) >= self.max_queued:
            self._refusing = self.refuse_until_empty
            return Admission.FULL
        self._queue.append(Queued(key, msg_type, item, now_s, expires_s))
        self._keys.add(key)
        return Admission.QUEUED

    def next_release_s(self, now_s: float) -> float | None:
        """When the head may go (``NOW``: at once; None: nothing waits)."""
        if not self._queue:
            return None
        return self.throttle.free_at(self._queue[0].msg_type, now_s)

    def release(self, now_s: float) -> list[Queued[_Item]]:
        """Take out, in order, the messages at the head that the throttle admits now."""
        out: list[Queued[_Item]] = []
        queue = self._queue
        while queue and self.throttle.admit(queue[0].msg_type, now_s):
            entry = queue.popleft()
            self._keys.discard(entry.key)
            out.append(entry)
        return out

    def next_expiry_s(self) -> float | None:
        """When the head outlives its time-to-live (None: nothing waits, or the head never does).

        Only the head: items with one time-to-live queue in the order they were received, so they
        expire in queue order, and an item is never taken out ahead of one queued before it.
        """
        return self._queue[0].expires_s if self._queue else None

    def expired(self, now_s: float) -> list[Queued[_Item]]:
        """Take out, in order, the messages at the head past their time-to-live, without a throttle slot:
        they will not be sent, so they neither wait for their turn nor use one."""
        out: list[Queued[_Item]] = []
        queue = self._queue
        while queue and queue[0].expires_s is not None and queue[0].expires_s <= now_s:
            entry = queue.popleft()
            self._keys.discard(entry.key)
            out.append(entry)
        return out

    def take_all(self) -> list[Queued[_Item]]:
        """Everything waiting, in order, without counting it (the session can no longer send it now)."""
        out = list(self._queue)
        self._queue.clear()
        self._keys.clear()
        self._refusing = False
        return out


@dataclass(frozen=True, slots=True)
class Tally:
    """The throttled messages of one report."""

    count: int
    by_msg_type: Mapping[str, int]
    #: Since the actor started, this report included.
    total: int
    #: MsgSeqNum of the first and last one counted (0 when the caller had none).
    first_seq: int
    last_seq: int
    #: Monotonic seconds from the first one counted to the report.
    span_s: float


@dataclass(slots=True)
class ThrottleReport:
    """Throttled messages counted between reports: one report at once, then at most one per ``every_s``."""

    every_s: float = 1.0
    total: int = 0
    _count: int = 0
    _by_type: dict[str, int] = field(default_factory=dict)
    _first_seq: int = 0
    _last_seq: int = 0
    _since_s: float = 0.0
    _last_report_s: float = float("-inf")

    def note(self, msg_type: str, seq: int, now_s: float) -> None:
        if self._count == 0:
            self._first_seq, self._since_s = seq, now_s
        self._count += 1
        self.total += 1
        self._by_type[msg_type] = self._by_type.get(msg_type, 0) + 1
        self._last_seq = seq

    def due_s(self) -> float | None:
        """When the next report is due (None: nothing to report)."""
        if self._count == 0:
            return None
        return max(self._since_s, self._last_report_s + self.every_s)

    def take(self, now_s: float) -> Tally | None:
        """The report, if one is due at ``now_s``; the counts start again."""
        due = self.due_s()
        if due is None or now_s < due:
            return None
        tally = Tally(self._count, dict(self._by_type), self.total, self._first_seq, self._last_seq,
                      max(0.0, now_s - self._since_s))
        self._count, self._by_type = 0, {}
        self._last_report_s = now_s
        return tally
