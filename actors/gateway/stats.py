"""A session actor's counters, read once a second into ``SessionStats`` (``session.<name>.stats``).

Where each number comes from, and what it costs:

* messages by MsgType, resends answered, gap fills, store sync times: the
  driver counts them as it executes the core's outputs
  (``actors.shell.traffic``), a dict increment per message;
* logons, logouts, logged on since: the core's ``StateChanged`` outputs (a
  logon is a change into CONNECTED; a logout the end of a logged-on period,
  by a Logout exchange or not), so nothing parses a message;
* session events by kind, and rejects by direction and reason: the core's
  ``SessionEvent`` outputs, which are rare (``Rejects`` below);
* the latency from the peer session's receipt of a message to this
  session's write of it: the forward carries the receipt time
  (``Forward.received_ns``); the actor reads the clock once per bus batch,
  after the batch is stored and written, and observes each forward of it;
* last message times: the first reading that sees a count move, so the
  message path reads no clock for them (as precise as the reading interval);
* CPU and memory: ``getrusage`` and ``/proc/self/statm``, once per reading.

Nothing here is on the path of a single message except ``forwarded``, which
the actor calls once per batch.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Mapping
from pathlib import Path

from actors.fix.outputs import SessionEvent, StateChanged
from actors.fix.states import LOGGED_ON, SessionState
from actors.fix.timefmt import NS_PER_S, Instant
from actors.fix.validation import REJECT_TEXT
from actors.gateway.vocabulary import HistogramBody, SessionStats
from actors.shell import clock
from actors.shell.driver import SessionDriver
from actors.shell.traffic import LATENCY_BOUNDS_S, Histogram

#: How often a session actor publishes its counters.
STATS_INTERVAL_S = 1.0

#: Directions of a reject: one this session sent, or one its counterparty sent it.
SENT = "sent"
RECEIVED = "received"
#: The reason of a reject whose text names no SessionRejectReason, and of a BusinessMessageReject.
OTHER = "other"
BUSINESS = "business_message_reject"

#: The core's ``reject`` event text when the counterparty rejected one of ours (``actors.fix.session``).
_PEER_REJECTED = "peer rejected"
#: SessionRejectReason texts, longest first, so that the most specific one a text contains wins.
_REASONS: tuple[tuple[str, str], ...] = tuple(sorted(
    ((text, reason.name.lower()) for reason, text in REJECT_TEXT.items()), key=lambda item: -len(item[0])))
_PAGE_BYTES = resource.getpagesize()


def reject_of(event: SessionEvent) -> tuple[str, str] | None:
    """``(direction, reason)`` of a ``reject`` or ``business_reject`` event; None for any other event.

    The reason is the SessionRejectReason (373) whose standard text (58) the
    event's text contains, as ``required_tag_missing``: the core puts that
    text on every Reject it sends, and counterparties mostly use the same
    words; a text without one is ``other``.
    """
    if event.kind == "business_reject":
        return SENT, BUSINESS
    if event.kind != "reject":
        return None
    direction = RECEIVED if event.text.startswith(_PEER_REJECTED) else SENT
    lowered = event.text.lower()
    for text, reason in _REASONS:
        if text.lower() in lowered:
            return direction, reason
    return direction, OTHER


def process_usage() -> tuple[float, int]:
    """This process's CPU seconds (user + system) and resident memory in bytes."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        rss = int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        rss = usage.ru_maxrss * 1024  # the peak, where /proc is not there
    return usage.ru_utime + usage.ru_stime, rss


class SessionCounters:
    """What the actor counts itself (the driver counts the rest), and the reading of both as ``SessionStats``."""

    def __init__(self) -> None:
        self.logons = 0
        self.logouts = 0
        self.events: dict[str, int] = {}
        self.rejects: dict[str, dict[str, int]] = {}
        self.logged_on_since_ns: int | None = None
        self.forward_latency = Histogram(LATENCY_BOUNDS_S)
        self.last_received_ns: int | None = None
        self.last_sent_ns: int | None = None
        self._reads = 0
        self._sent = 0

    # ------------------------------------------------------------ counting

    def on_state(self, change: StateChanged) -> None:
        if change.new is SessionState.CONNECTED and self.logged_on_since_ns is None:
            self.logons += 1
            self.logged_on_since_ns = change.utc_ns
        elif change.old in LOGGED_ON and change.new not in LOGGED_ON:
            self.logouts += 1
            self.logged_on_since_ns = None

    def on_event(self, event: SessionEvent) -> None:
        self.count_event(event.kind)
        reject = reject_of(event)
        if reject is not None:
            direction, reason = reject
            reasons = self.rejects.setdefault(direction, {})
            reasons[reason] = reasons.get(reason, 0) + 1

    def count_event(self, kind: str) -> None:
        self.events[kind] = self.events.get(kind, 0) + 1

    def forwarded(self, received_ns: list[int], now_ns: int) -> None:
        """Forwards written at ``now_ns`` that their origin session received at ``received_ns`` (UTC ns).

        Both stamps are UTC: across hosts the difference includes their clock offset, so a negative
        one (a clock behind) counts as zero rather than vanishing.
        """
        for stamp in received_ns:
            self.forward_latency.observe(max(0, now_ns - stamp) / NS_PER_S)

    # ------------------------------------------------------------- reading

    def reading(self, now: Instant, driver: SessionDriver, *, role: str, peer: str, incarnation: str, pid: int,
                logon_failures: int, queues: Mapping[str, int], tls_expires_s: int | None = None) -> SessionStats:
        """Everything counted so far, stamped ``now``."""
        traffic = driver.traffic
        if traffic.reads != self._reads:
            self._reads = traffic.reads
            self.last_received_ns = now.utc_ns
        sent = traffic.sent_total + traffic.resent + traffic.gap_fills_sent
        if sent != self._sent:
            self._sent = sent
            self.last_sent_ns = now.utc_ns
        session = driver.session
        address = driver.remote_address
        cpu_s, rss = process_usage()
        return SessionStats(
            now.utc_ns, session.state, role, pid, incarnation, session.next_sender, session.next_target,
            peer=peer, remote_address="" if address is None else f"{address[0]}:{address[1]}",
            logged_on_since_ns=self.logged_on_since_ns if session.state in LOGGED_ON else None,
            last_received_ns=self.last_received_ns, last_sent_ns=self.last_sent_ns,
            sent=dict(traffic.sent), received=dict(traffic.received), resent=traffic.resent,
            gap_fills_sent=traffic.gap_fills_sent, resend_requests_answered=traffic.resend_requests_answered,
            rejects={direction: dict(reasons) for direction, reasons in self.rejects.items()},
            logons=self.logons, logouts=self.logouts, events=dict(self.events), logon_failures=logon_failures,
            queues=dict(queues), forward_latency=_histogram(self.forward_latency),
            store_sync=_histogram(traffic.store_sync), cpu_s=round(cpu_s, 3), rss_bytes=rss,
            tls_expires_s=tls_expires_s)


def _histogram(h: Histogram) -> HistogramBody:
    return HistogramBody(h.bounds, tuple(h.counts), h.sum, h.count)


class Every:
    """A timer source of the loop that calls ``callback`` every ``interval_s`` (monotonic)."""

    def __init__(self, interval_s: float, callback: Callable[[], None]) -> None:
        self.interval_s = interval_s
        self.callback = callback
        self._deadline = clock.monotonic_s() + interval_s

    def next_deadline(self) -> float | None:
        return self._deadline

    def on_timer(self) -> None:
        self._deadline = clock.monotonic_s() + self.interval_s
        self.callback()
