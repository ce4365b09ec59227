"""Every session of a topology in one view: the rows of ``fixmesh status`` and of the status page.

Pure: readings (``SessionStats``) and the time in, rows, a text table and
JSON out. ``fixmesh status`` (``actors.tools.status``) fills it from status
replies, the metrics program (``actors.tools.metrics``) from the
``session.<name>.stats`` events; both show the same columns with the same
words.

A pair's health, from its two halves' states:

| health | Handler | Driven |
|---|---|---|
| ``up`` | CONNECTED | CONNECTED |
| ``idle`` | DISCONNECTED | DISCONNECTED |
| ``down`` | offline | offline (not both DISCONNECTED) |
| ``venue side down`` | CONNECTED | offline |
| ``user side down`` | offline | CONNECTED |
| ``changing`` | anything else: a Logon or a Logout under way | |
| ``unknown`` | a half that did not answer | |

"Offline" is a state without a TCP connection (``actors.fix.states.OFFLINE``).
``idle`` is a pair at rest: no user logged on, and the Driven, which follows
the user, logged out cleanly (or never connected). ``down`` is offline after a
fault: a half dropped (DISCONNECTED_ABNORMALLY), reconnecting, or dead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from actors.fix.states import OFFLINE, SessionState
from actors.fix.tags import ADMIN_MSG_TYPES
from actors.fix.timefmt import NS_PER_S
from actors.gateway.topology import Topology
from actors.gateway.vocabulary import SessionStats

UP = "up"
IDLE = "idle"
DOWN = "down"
VENUE_SIDE_DOWN = "venue side down"
USER_SIDE_DOWN = "user side down"
CHANGING = "changing"
UNKNOWN = "unknown"

#: What a session without a reading shows in the state column (the reason is in ``Row.error``).
NO_ANSWER = "NO ANSWER"

#: A reading is either the session's counters or why there is none ("no answer within 2 s", a refusal).
Reading = SessionStats | str


def pair_health(handler: SessionState | None, driven: SessionState | None) -> str:
    """The health of a pair from its halves' states; None for a half that did not answer (see the module)."""
    if handler is None or driven is None:
        return UNKNOWN
    connected = SessionState.CONNECTED
    if handler is connected and driven is connected:
        return UP
    if handler is SessionState.DISCONNECTED and driven is SessionState.DISCONNECTED:
        return IDLE
    if handler in OFFLINE and driven in OFFLINE:
        return DOWN
    if handler is connected and driven in OFFLINE:
        return VENUE_SIDE_DOWN
    if driven is connected and handler in OFFLINE:
        return USER_SIDE_DOWN
    return CHANGING


def application_count(counts: Mapping[str, int]) -> int:
    """The application messages of a count by MsgType (session messages such as Heartbeat left out)."""
    return sum(n for msg_type, n in counts.items() if msg_type not in ADMIN_MSG_TYPES)


@dataclass(frozen=True, slots=True)
class Row:
    """One session: what the table shows, and its whole reading for ``--json``."""

    name: str
    role: str
    #: ``<handler>-<driven>``, "" when the session is in no pair.
    pair: str
    #: The session's reading, None when it gave none (``error`` says why).
    stats: SessionStats | None
    error: str
    #: The pair's health ("" when the session is in no pair).
    health: str

    @property
    def state(self) -> str:
        return self.stats.state.value if self.stats is not None else NO_ANSWER

    @property
    def last_message_ns(self) -> int | None:
        if self.stats is None:
            return None
        stamps = [t for t in (self.stats.last_received_ns, self.stats.last_sent_ns) if t is not None]
        return max(stamps, default=None)

    def to_json(self) -> dict[str, Any]:
        s = self.stats
        return {
            "session": self.name, "role": self.role, "pair": self.pair or None, "state": self.state,
            "answered": s is not None, "error": self.error or None,
            "next_sender": s.next_sender if s else None, "next_target": s.next_target if s else None,
            "peer_address": (s.remote_address or None) if s else None,
            "logged_on_since": iso_utc(s.logged_on_since_ns) if s else None,
            "messages_in": application_count(s.received) if s else None,
            "messages_out": application_count(s.sent) if s else None,
            "last_message": iso_utc(self.last_message_ns),
            "pair_health": self.health or None,
            "stats": s.to_body() if s else None,
        }


def rows(topology: Topology, readings: Mapping[str, Reading]) -> list[Row]:
    """A row per session of the topology, in the topology's order; a session without a reading says why."""
    pair_of: dict[str, tuple[str, str, str]] = {}
    for p in topology.pairs:
        pair_of[p.handler] = pair_of[p.driven] = (p.name, p.handler, p.driven)

    def state(name: str) -> SessionState | None:
        reading = readings.get(name)
        return reading.state if isinstance(reading, SessionStats) else None

    out = []
    for name, settings in topology.sessions.items():
        reading = readings.get(name, "no answer")
        pair = pair_of.get(name)
        health = pair_health(state(pair[1]), state(pair[2])) if pair is not None else ""
        stats = reading if isinstance(reading, SessionStats) else None
        out.append(Row(name, settings.role, pair[0] if pair else "", stats,
                       reading if isinstance(reading, str) else "", health))
    return out


# ----------------------------------------------------------------- text


def iso_utc(time_ns: int | None) -> str | None:
    """``2026-11-30T09:30:02Z`` (UTC, to the second), None for None."""
    if time_ns is None:
        return None
    return datetime.fromtimestamp(time_ns // NS_PER_S, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def age_text(seconds: float) -> str:
    """``0.4s``, ``12s``, ``5m03s``, ``2h10m``, ``3d04h``: short enough for a column."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


COLUMNS = ("SESSION", "ROLE", "PAIR", "STATE", "NEXT OUT/IN", "PEER ADDRESS", "LOGGED ON SINCE", "MSGS IN",
           "MSGS OUT", "LAST MSG", "PAIR HEALTH")


def cells(row: Row, now_ns: int) -> tuple[str, ...]:
    """The table's cells of one row; ``-`` where there is nothing to show."""
    s = row.stats
    if s is None:
        return (row.name, row.role, row.pair or "-", NO_ANSWER, "-", "-", "-", "-", "-", "-", row.health or "-")
    since = "-"
    if s.logged_on_since_ns is not None:
        since = f"{iso_utc(s.logged_on_since_ns)} ({age_text((now_ns - s.logged_on_since_ns) / NS_PER_S)})"
    last = row.last_message_ns
    return (row.name, row.role, row.pair or "-", s.state.value, f"{s.next_sender}/{s.next_target}",
            s.remote_address or "-", since, str(application_count(s.received)), str(application_count(s.sent)),
            "-" if last is None else f"{age_text((now_ns - last) / NS_PER_S)} ago", row.health or "-")


def table(table_rows: list[Row], now_ns: int) -> str:
    """The rows as aligned columns, a header first, and under them why any session gave no reading."""
    lines = [COLUMNS, *(cells(row, now_ns) for row in table_rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            for line in lines]
    text += [f"{row.name}: {row.error}" for row in table_rows if row.error]
    return "\n".join(text)
