"""A session actor's throttles: the topology's ``throttle:`` carried out, in both directions.

The decisions (sliding windows, the waiting queues, how often to report) are
``actors.shell.throttle``'s; this module applies them to one session actor
and is a timer source of its loop.

* Inbound, ``action: reject``: an application message over the limit gets a
  BusinessMessageReject (35=j) with RefSeqNum, RefMsgType, the ClOrdID as
  BusinessRejectRefID when there is one, BusinessRejectReason 8 (Throttle
  limit exceeded) where the application version knows it (FIX.5.0SP2 and
  later) and 0 (Other) before, and a Text that says it was throttled. The
  message counts as processed: its MsgSeqNum is consumed and nothing is
  forwarded.
* Inbound, ``action: delay``: it waits, unprocessed (so a crash makes the
  counterparty send it again), and is forwarded when the limit allows, in
  the order received. When ``queue_limit`` messages already wait, it is
  rejected as above.
* Outbound: a forward from the peer over the limit waits, unacknowledged,
  and is sent when the limit allows, in order; the peer keeps it in its bus
  outbox until then, so a crash here loses nothing (the forwarding journal
  decides on the repeat, ``actors.gateway.forwarding``). When
  ``queue_limit`` forwards already wait, the next ones are not taken from
  the bus at all until the queue has drained: the peer's outbox holds them
  and repeats them. The inbound throttle's BusinessMessageRejects are not
  throttled outbound: they answer the counterparty's own messages, one for one.
* Every throttled message counts as a ``throttled`` session event; a log
  line and a ``session.<name>.throttled`` event sum them up at most once a
  second per direction and action (``ThrottleReport``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from actors.fix import tags as T
from actors.fix.config import SessionConfig
from actors.fix.message import Message
from actors.fix.orders import BUSINESS_MESSAGE_REJECT, CL_ORD_ID
from actors.fix.timefmt import Instant
from actors.gateway.vocabulary import THROTTLED, ThrottledEvent, throttled_topic
from actors.shell import clock
from actors.shell.throttle import (
    Action,
    Admission,
    Queued,
    Throttle,
    ThrottledQueue,
    ThrottleReport,
    ThrottleSettings,
)

log = logging.getLogger("fixmesh.throttle")

#: BusinessRejectReason (380): Throttle limit exceeded (FIX.5.0SP2 and later) and Other (every version).
THROTTLE_LIMIT_EXCEEDED = b"8"
OTHER = b"0"
#: DefaultApplVerID (1137) of FIX.5.0SP2, the first application version whose 380 has the value 8.
FIX50SP2_APPL_VER_ID = 9
#: At most one log line and one event per direction and action in this many seconds.
REPORT_EVERY_S = 1.0

INBOUND = "inbound"
OUTBOUND = "outbound"


def reject_reason(config: SessionConfig) -> bytes:
    """8 where the application dictionary has it (FIXT.1.1 with FIX.5.0SP2 or later), else 0 (Other)."""
    appl_ver = config.default_appl_ver_id
    if config.begin_string == "FIXT.1.1" and appl_ver is not None and appl_ver.isdigit() \
            and int(appl_ver) >= FIX50SP2_APPL_VER_ID:
        return THROTTLE_LIMIT_EXCEEDED
    return OTHER


def throttle_reject(message: Message, reason: bytes, text: str) -> list[tuple[int, bytes]]:
    """The body of the BusinessMessageReject of a throttled ``message``."""
    fields = [(T.REF_SEQ_NUM, b"%d" % (message.seq_num or 0)), (T.TEXT, text.encode("latin-1", "replace")),
              (T.REF_MSG_TYPE, message.msg_type.encode()), (T.BUSINESS_REJECT_REASON, reason)]
    ref = message.get(CL_ORD_ID)
    if ref is not None:
        fields.append((T.BUSINESS_REJECT_REF_ID, ref))
    return sorted(fields)


@dataclass(frozen=True, slots=True)
class Rejected:
    """Answer the message with this BusinessMessageReject body; it counts as processed."""

    body: list[tuple[int, bytes]]
    msg_type: str = BUSINESS_MESSAGE_REJECT


class Verdict(Enum):
    #: Forward it now.
    PASS = "pass"
    #: It waits; ``on_delayed`` gets it when the limit allows.
    DELAYED = "delayed"


@dataclass(frozen=True, slots=True)
class Delayed:
    """An inbound message waiting for its throttle, with what its forward needs from the time it arrived."""

    message: Message
    #: Its receipt time (UTC ns): the forward's latency and time-to-live count from it.
    received_ns: int
    #: The session's sequence epoch then (``Origin.epoch``): a sequence reset while it waits must not
    #: give its number to the new epoch, where a new message will carry it.
    epoch: int


_Out = TypeVar("_Out")


class SessionThrottles(Generic[_Out]):
    """The throttles of one session actor; a timer source of its loop.

    ``on_delayed`` forwards inbound messages whose wait is over; ``on_released``
    sends outbound items whose wait is over; ``on_expired`` gets the outbound
    items that outlived their time-to-live while waiting (``outbound``'s
    ``expires_s``), when they do, not when their turn would have come; while
    ``out_paused()`` (an initiator not logged on) the waiting outbound items go
    to ``on_paused`` instead, uncounted, to wait for the Logon like any forward.
    ``now`` is the clock of its timer (tests pass a fake one).
    """

    def __init__(self, name: str, settings: ThrottleSettings, config: SessionConfig, *,
                 publish: Callable[[str, dict[str, Any]], None], count_event: Callable[[str], None],
                 on_delayed: Callable[[list[Delayed]], None], on_released: Callable[[list[_Out]], None],
                 on_expired: Callable[[list[_Out]], None], on_paused: Callable[[list[_Out]], None],
                 out_paused: Callable[[], bool],
                 now: Callable[[], Instant] = clock.now) -> None:
        self.name = name
        self._now = now
        self.settings = settings
        self._publish = publish
        self._count_event = count_event
        self._on_delayed = on_delayed
        self._on_released = on_released
        self._on_expired = on_expired
        self._on_paused = on_paused
        self._out_paused = out_paused
        self._reason = reject_reason(config)
        inbound, outbound = settings.inbound, settings.outbound
        self.inbound_throttle = Throttle(inbound.rates) if inbound is not None else None
        self.delayed: ThrottledQueue[Delayed] | None = None
        if inbound is not None and inbound.action is Action.DELAY:
            assert self.inbound_throttle is not None
            self.delayed = ThrottledQueue(self.inbound_throttle, inbound.max_queued)
        self.queued: ThrottledQueue[_Out] | None = None
        if outbound is not None:
            self.queued = ThrottledQueue(Throttle(outbound.rates), outbound.max_queued, refuse_until_empty=True)
        #: (direction, action) -> what to report.
        self.reports: dict[tuple[str, str], ThrottleReport] = {}

    # --------------------------------------------------------------- inbound

    def inbound(self, message: Message, now: Instant, epoch: int) -> Verdict | Rejected:
        """What to do with an application message from the counterparty (``epoch``: the store's now)."""
        throttle = self.inbound_throttle
        if throttle is None:
            return Verdict.PASS
        msg_type, seq = message.msg_type, message.seq_num or 0
        delayed = self.delayed
        if delayed is None:
            if throttle.admit(msg_type, now.mono_s):
                return Verdict.PASS
            text = f"throttled: over the limit of {throttle.binding_limit(msg_type, now.mono_s)}"
            self._note(INBOUND, Action.REJECT.value, msg_type, seq, now)
            return Rejected(throttle_reject(message, self._reason, text))
        admission = delayed.offer((epoch, seq), msg_type, Delayed(message, now.utc_ns, epoch), now.mono_s)
        if admission is Admission.PASS:
            return Verdict.PASS
        if admission is Admission.QUEUED:
            self._note(INBOUND, Action.DELAY.value, msg_type, seq, now)
            return Verdict.DELAYED
        text = (f"throttled: over the limit of {throttle.binding_limit(msg_type, now.mono_s)}, and "
                f"{len(delayed)} messages already wait")
        self._note(INBOUND, Action.REJECT.value, msg_type, seq, now)
        return Rejected(throttle_reject(message, self._reason, text))

    # -------------------------------------------------------------- outbound

    def outbound(self, key: Hashable, msg_type: str, item: _Out, now: Instant,
                 expires_s: float | None = None) -> Admission:
        """Send now (PASS), wait (QUEUED: ``on_released`` gets it, or ``on_expired`` once the monotonic
        ``expires_s`` has passed), or leave it with the sender (FULL)."""
        queued = self.queued
        if queued is None:
            return Admission.PASS
        repeat = key in queued
        admission = queued.offer(key, msg_type, item, now.mono_s, expires_s)
        if admission is Admission.QUEUED and not repeat:
            self._note(OUTBOUND, "queue", msg_type, 0, now)
        elif admission is Admission.FULL:
            self._note(OUTBOUND, "hold", msg_type, 0, now)
        return admission

    # ----------------------------------------------------------------- timer

    def depths(self) -> dict[str, int]:
        """The waiting messages, for the session's readings (``queues``)."""
        out = {}
        if self.delayed is not None:
            out["throttled_in"] = len(self.delayed)
        if self.queued is not None:
            out["throttled_out"] = len(self.queued)
        return out

    def next_deadline(self) -> float | None:
        now_s = self._now().mono_s
        queued = self.queued
        times = [t for t in (self.delayed.next_release_s(now_s) if self.delayed is not None else None,
                             queued.next_release_s(now_s) if queued is not None else None,
                             queued.next_expiry_s() if queued is not None else None,
                             *(r.due_s() for r in self.reports.values())) if t is not None]
        return min(times) if times else None

    def on_timer(self) -> None:
        now = self._now()
        if self.delayed is not None:
            released_in = self.delayed.release(now.mono_s)
            if released_in:
                self._on_delayed([q.item for q in released_in])
        if self.queued is not None and len(self.queued):
            if self._out_paused():
                self._on_paused([q.item for q in self.queued.take_all()])
            else:
                expired = self.queued.expired(now.mono_s)
                if expired:
                    self._on_expired([q.item for q in expired])
                released_out: list[Queued[_Out]] = self.queued.release(now.mono_s)
                if released_out:
                    self._on_released([q.item for q in released_out])
        for (direction, action), report in self.reports.items():
            tally = report.take(now.mono_s)
            if tally is None:
                continue
            queue = self.delayed if direction == INBOUND else self.queued
            rates = (self.settings.inbound if direction == INBOUND else self.settings.outbound)
            limit = rates.rates.describe() if rates is not None else ""
            types = ", ".join(f"{t} {n}" for t, n in sorted(tally.by_msg_type.items()))
            seqs = f"; MsgSeqNum {tally.first_seq}-{tally.last_seq}" if tally.first_seq else ""
            done = {"reject": "rejected", "delay": "delayed", "queue": "queued",
                    "hold": "left with the peer's bus outbox (queue full)"}[action]
            text = (f"{tally.count} {direction} message(s) {done} in {tally.span_s:.1f} s ({types}{seqs}); "
                    f"limit {limit}; {tally.total} so far")
            log.warning("%s: throttled: %s", self.name, text)
            event = ThrottledEvent(direction, action, tally.count, tally.total, tally.by_msg_type, limit,
                                   len(queue) if queue is not None else 0, tally.first_seq, tally.last_seq, text)
            self._publish(throttled_topic(self.name), event.to_body())

    def _note(self, direction: str, action: str, msg_type: str, seq: int, now: Instant) -> None:
        report = self.reports.get((direction, action))
        if report is None:
            report = self.reports[(direction, action)] = ThrottleReport(REPORT_EVERY_S)
        report.note(msg_type, seq, now.mono_s)
        self._count_event(THROTTLED)
