"""The state table, its documentation and its closure."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.fix.states import TRANSITIONS, IllegalTransition, SessionState, check_transition, mermaid_diagram

DOC = Path(__file__).resolve().parents[2] / "docs" / "session-states.md"


def test_the_documented_diagram_is_generated_from_the_table() -> None:
    assert mermaid_diagram() in DOC.read_text(), "regenerate with: python -m actors.fix.states"


def test_every_state_is_reachable_and_every_non_final_state_can_leave() -> None:
    reachable = {SessionState.DISCONNECTED}
    frontier = [SessionState.DISCONNECTED]
    while frontier:
        state = frontier.pop()
        for old, new in TRANSITIONS:
            if old is state and new not in reachable:
                reachable.add(new)
                frontier.append(new)
    assert reachable == set(SessionState)
    for state in SessionState:
        if state is not SessionState.DEAD:
            assert any(old is state for old, _ in TRANSITIONS), state
    assert not any(old is SessionState.DEAD for old, _ in TRANSITIONS)


def test_a_transition_outside_the_table_raises() -> None:
    with pytest.raises(IllegalTransition):
        check_transition(SessionState.DEAD, SessionState.CONNECTED)
