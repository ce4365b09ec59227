"""What a session's driver counts as messages pass: cheap enough for the routed path.

The driver executes every ``Send`` and ``Deliver`` the session core hands it,
so it is the one place that sees every message going out and every
application message coming in, with its MsgType already parsed. Counting
there costs one dict increment per message and changes nothing in the core.
The gateway's session actor reads these numbers once a second and publishes
them (``actors.gateway.stats``); nothing here reads a clock except around
the store's sync, once per batch.

Rules:

* ``sent`` counts every new message by MsgType when the core numbers it
  (``Send.store``): session and application messages alike, including one
  that is stored now and goes out later (created while not logged on).
* A message sent again in answer to a ResendRequest is not new: an
  application message resent with PossDupFlag counts in ``resent``, a
  SequenceReset-GapFill in ``gap_fills_sent``, and every ResendRequest
  answered in ``resend_requests_answered``.
* ``received`` counts the application messages delivered to the application,
  by MsgType. Session-level messages (Heartbeat, TestRequest, Logon, ...) are
  handled inside the core and never reach the driver as messages; ``reads``
  counts the reads from the connection, so that "something arrived" is known
  for every message, heartbeats included.
* Histograms have fixed bucket bounds, in seconds, chosen when they are made:
  an observation is a bisection and three additions, and the bucket counts
  travel as they are (not cumulative); whoever exports them accumulates.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

#: Upper bounds (seconds) for the latency of a message through the gateway: 100 us to 10 s.
LATENCY_BOUNDS_S: tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Upper bounds (seconds) for one sync of the store (an fsync in BATCH durability): 10 us to 1 s.
SYNC_BOUNDS_S: tuple[float, ...] = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                    0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

#: MsgType (35) of the messages ``Traffic`` tells apart: SequenceReset and ResendRequest.
_SEQUENCE_RESET = "4"


class Histogram:
    """Observations in fixed buckets: ``counts[i]`` holds values ``<= bounds[i]`` (above the one before);
    the last count, one past the bounds, holds everything larger (Prometheus's ``+Inf``)."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("histogram bounds must be distinct and ascending")
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def to_body(self) -> dict[str, Any]:
        """``{"bounds", "counts", "sum", "count"}``: what a stats event carries (plain lists and numbers)."""
        return {"bounds": list(self.bounds), "counts": list(self.counts), "sum": self.sum, "count": self.count}


class Traffic:
    """A driver's counts since the process started (see the module's rules)."""

    __slots__ = ("sent", "received", "reads", "resent", "gap_fills_sent", "resend_requests_answered",
                 "store_sync")

    def __init__(self) -> None:
        #: New messages by MsgType.
        self.sent: dict[str, int] = {}
        #: Application messages delivered, by MsgType.
        self.received: dict[str, int] = {}
        #: Reads from the connection that brought bytes.
        self.reads = 0
        #: Application messages sent again with PossDupFlag=Y.
        self.resent = 0
        #: SequenceReset-GapFill messages sent in answers to ResendRequests.
        self.gap_fills_sent = 0
        #: ResendRequests from the counterparty answered.
        self.resend_requests_answered = 0
        #: How long each sync of the store's messages took (once per batch that stored something).
        self.store_sync = Histogram(SYNC_BOUNDS_S)

    def repeated(self, msg_type: str) -> None:
        """A message sent again, not new: a gap fill or a PossDup resend (or one stored earlier, going out now)."""
        if msg_type == _SEQUENCE_RESET:
            self.gap_fills_sent += 1
        elif msg_type:
            self.resent += 1

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())

    @property
    def received_total(self) -> int:
        return sum(self.received.values())
