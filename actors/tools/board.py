"""What the metrics program knows of the sessions: the latest readings and events off the event plane.

Pure, like the monitor's core: events and the time in, answers out; the
shell (``actors.tools.metrics``) owns the socket, the clock and the HTTP
server. The board keeps, per session of the topology:

* its latest ``SessionStats`` (``session.<name>.stats``, once a second) and
  when it arrived on the board's monotonic clock: a reading older than
  ``stale_after_s`` (three publishing intervals, the broker's own liveness
  rule) no longer counts, and the session shows as not reporting;
* the application messages in and out of its last readings, for rates over
  a few seconds (a restart, seen as a new ``incarnation``, starts them anew);
* its last events (state changes, logons, logouts, rejects, ...) as the
  monitor words them, and per pair the coordinator's commands.

``page`` is what the status page polls (``/api/status``): every pair with
both halves, and every session in no pair, in the words of ``fixmesh
status`` (``actors.tools.overview``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.fix.timefmt import NS_PER_S, Instant
from actors.gateway.stats import STATS_INTERVAL_S
from actors.gateway.topology import Topology
from actors.gateway.vocabulary import STATS, Malformed, SessionStats, parse_session_topic
from actors.tools.monitor import describe, utc_text
from actors.tools.overview import Reading, Row, application_count, rows
from broker import protocol

log = logging.getLogger("fixmesh.metrics")

#: A reading older than this no longer counts: three missed publishing intervals (``LIVENESS``).
STALE_AFTER_S = STATS_INTERVAL_S * protocol.LIVENESS
#: Events kept per session and per pair for the page.
EVENTS_KEPT = 8
#: Readings the rates are taken over (about five seconds at one a second).
RATE_READINGS = 6
_PAIR_PREFIX = "pair."


@dataclass(slots=True)
class _Session:
    stats: SessionStats | None = None
    heard_s: float = 0.0
    #: (time_ns, application messages in, out) of the last readings of this incarnation.
    window: deque[tuple[int, int, int]] = field(default_factory=lambda: deque(maxlen=RATE_READINGS))
    events: deque[dict[str, str]] = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))
    #: The broker published this actor down after its last reading.
    down: bool = False


class Board:
    """The latest readings and events of the topology's sessions (see the module)."""

    def __init__(self, topology: Topology, stale_after_s: float = STALE_AFTER_S) -> None:
        self.topology = topology
        self.stale_after_s = stale_after_s
        self.sessions: dict[str, _Session] = {name: _Session() for name in topology.sessions}
        self.pair_events: dict[str, deque[dict[str, str]]] = {
            pair.name: deque(maxlen=EVENTS_KEPT) for pair in topology.pairs}
        #: Readings that could not be read (a newer or broken publisher), for the log and a metric.
        self.malformed = 0

    # ------------------------------------------------------------ events in

    def receive(self, topic: str, body: Mapping[str, Any], now_s: float) -> None:
        """One event off the bus (already checked to carry ``time_ns`` and ``actor``), at ``now_s`` (monotonic)."""
        parsed = parse_session_topic(topic)
        if parsed is not None:
            name, what = parsed
            session = self.sessions.get(name)
            if session is None:
                return
            if what == STATS:
                self._reading(name, session, body, now_s)
            else:
                session.events.append(_event(topic, body))
            return
        if topic.startswith(_PAIR_PREFIX):
            pair = topic[len(_PAIR_PREFIX):].rpartition(".")[0]
            if pair in self.pair_events:
                self.pair_events[pair].append(_event(topic, body))
            return
        actor = protocol.parse_actor_topic(topic)
        if actor is not None and actor[0] in self.sessions:
            name, what = actor
            if what == "down":
                self.sessions[name].down = True
                self.sessions[name].events.append(_event(topic, body))
            elif what == "up":
                self.sessions[name].down = False

    def _reading(self, name: str, session: _Session, body: Mapping[str, Any], now_s: float) -> None:
        stats = SessionStats.from_body(body)
        if isinstance(stats, Malformed):
            self.malformed += 1
            if self.malformed == 1 or self.malformed % 1000 == 0:
                log.warning("%s: stats not read (%d so far): %s", name, self.malformed, stats.error)
            return
        if session.stats is not None and session.stats.incarnation != stats.incarnation:
            session.window.clear()  # a new process: its counts start again at zero
        session.stats = stats
        session.heard_s = now_s
        session.down = False
        session.window.append((stats.time_ns, application_count(stats.received), application_count(stats.sent)))

    # ------------------------------------------------------------ answers

    def fresh(self, name: str, now_s: float) -> SessionStats | None:
        """The session's reading if it still counts, else None."""
        session = self.sessions.get(name)
        if session is None or session.stats is None or session.down or now_s - session.heard_s > self.stale_after_s:
            return None
        return session.stats

    def readings(self, now_s: float) -> dict[str, Reading]:
        """Each session's reading that still counts, or why there is none (in ``fixmesh status``'s words)."""
        out: dict[str, Reading] = {}
        for name, session in self.sessions.items():
            stats = self.fresh(name, now_s)
            if stats is not None:
                out[name] = stats
            elif session.stats is None:
                out[name] = "no reading heard yet"
            elif session.down:
                out[name] = "its actor is down (the broker stopped hearing it)"
            else:
                out[name] = f"not reporting: last reading {now_s - session.heard_s:.0f} s ago"
        return out

    def rates(self, name: str) -> tuple[float, float]:
        """Application messages per second in and out over the last readings (0 with fewer than two)."""
        window = self.sessions[name].window
        if len(window) < 2:
            return 0.0, 0.0
        (t0, in0, out0), (t1, in1, out1) = window[0], window[-1]
        seconds = (t1 - t0) / NS_PER_S
        if seconds <= 0:
            return 0.0, 0.0
        return max(0.0, (in1 - in0) / seconds), max(0.0, (out1 - out0) / seconds)

    def page(self, now: Instant) -> dict[str, Any]:
        """``/api/status``: every pair with both halves, then the sessions in no pair."""
        by_name = {row.name: row for row in rows(self.topology, self.readings(now.mono_s))}
        paired = set()
        pairs = []
        for pair in self.topology.pairs:
            paired |= {pair.handler, pair.driven}
            pairs.append({"name": pair.name, "health": by_name[pair.handler].health,
                          "handler": self._view(by_name[pair.handler], now),
                          "driven": self._view(by_name[pair.driven], now),
                          "events": list(reversed(self.pair_events[pair.name]))})
        alone = [self._view(row, now) for name, row in by_name.items() if name not in paired]
        return {"time": utc_text(now.utc_ns), "topology": str(self.topology.path), "pairs": pairs,
                "sessions": alone}

    def _view(self, row: Row, now: Instant) -> dict[str, Any]:
        view = row.to_json()
        stats = view.pop("stats")
        rate_in, rate_out = self.rates(row.name) if row.stats is not None else (0.0, 0.0)
        view.update({
            "rate_in": round(rate_in, 2), "rate_out": round(rate_out, 2),
            "last_message_age_s": None if row.last_message_ns is None
            else round(max(0, now.utc_ns - row.last_message_ns) / NS_PER_S, 1),
            "queues": stats["queues"] if stats else None,
            "events": list(reversed(self.sessions[row.name].events)),
        })
        return view


def _event(topic: str, body: Mapping[str, Any]) -> dict[str, str]:
    """An event as the page lists it: its UTC time, the topic's last part, the monitor's words."""
    time_ns = body.get("time_ns")
    stamp = utc_text(time_ns) if isinstance(time_ns, int) and not isinstance(time_ns, bool) else "?"
    return {"time": stamp, "what": topic.rpartition(".")[2], "text": describe(topic, body)}
