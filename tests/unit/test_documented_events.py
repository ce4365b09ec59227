"""Every topic, state and event kind the docs show exists in the code.

An operator greps for what the docs show; a topic or a state the docs
invented (an old name, a guess) sends them looking for something that never
comes. The docs' monitor lines and JSON events are read back and checked
against the session core's states and event kinds, the gateway's vocabulary
and the broker's topics.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from actors.fix.outputs import EVENT_KINDS
from actors.fix.states import SessionState
from actors.gateway.vocabulary import LOGON_REFUSED, REJECTED, STATE, STATS, SWITCH, THROTTLED, CommandName

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
SESSION_SOURCE = ROOT / "actors" / "fix" / "session.py"

#: A monitor text line: UTC time, topic, the rest.
MONITOR_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\s+(?P<topic>\S+)\s+(?P<rest>.*)$")
TRANSITION = re.compile(r"^(?P<old>[A-Z_]+) -> (?P<new>[A-Z_]+):")
STATES = {state.value for state in SessionState}
SESSION_WHATS = EVENT_KINDS | {STATE, REJECTED, SWITCH, LOGON_REFUSED, STATS, THROTTLED}
FIXED_TOPICS = {"coordinator.started", "broker.started", "broker.heartbeat", "monitor.actor.silent",
                "monitor.actor.back", "monitor.actor.restarted", "broker.switch", "coordinator.active",
                "coordinator.standby", "coordinator.reloaded"}


def topic_exists(topic: str) -> bool:
    parts = topic.split(".")
    if topic in FIXED_TOPICS:
        return True
    if len(parts) == 3 and parts[0] == "session":
        return parts[2] in SESSION_WHATS
    if len(parts) == 3 and parts[0] == "actor":
        return parts[2] in {"up", "down", "heartbeat"}
    if len(parts) == 3 and parts[0] == "pair":
        return parts[2] in {c.value for c in CommandName}
    return False


def documented_events() -> list[tuple[str, int, str, str | None, str | None]]:
    """(doc, line number, topic, old state, new state) of every monitor line and JSON event in the docs."""
    found: list[tuple[str, int, str, str | None, str | None]] = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            m = MONITOR_LINE.match(line)
            if m is not None and m["topic"] != "warning:":  # the monitor's own warning lines name no topic
                t = TRANSITION.match(m["rest"]) if m["topic"].endswith(".state") else None
                found.append((doc.name, number, m["topic"], t["old"] if t else None, t["new"] if t else None))
            elif line.startswith('{"topic":'):
                event = json.loads(line)
                body = event["body"]
                found.append((doc.name, number, event["topic"], body.get("old"), body.get("new")))
    return found


EVENTS = documented_events()


def test_the_docs_show_events() -> None:
    assert len(EVENTS) >= 10, "the docs' example lines were not found: has the monitor's line format changed?"


@pytest.mark.parametrize("doc, line, topic, old, new", EVENTS, ids=[f"{e[0]}:{e[1]}" for e in EVENTS])
def test_a_documented_event_names_a_real_topic_and_real_states(
        doc: str, line: int, topic: str, old: str | None, new: str | None) -> None:
    assert topic_exists(topic), f"{doc}:{line}: no fixmesh process publishes {topic!r}"
    for state in (old, new):
        assert state is None or state in STATES, f"{doc}:{line}: {state!r} is not a session state"


def test_the_event_kinds_are_the_ones_the_session_core_emits() -> None:
    emitted = set(re.findall(r'_event\("([a-z_]+)"', SESSION_SOURCE.read_text(encoding="utf-8")))
    assert emitted == set(EVENT_KINDS)


def test_the_checker_refuses_invented_names() -> None:
    assert not topic_exists("pair.orders.linked")
    assert not topic_exists("session.venue.logon_sent")
    assert "ACTIVE" not in STATES and "LOGON_SENT" not in STATES
    assert topic_exists("session.venue.state") and topic_exists("pair.client-venue.connect")
