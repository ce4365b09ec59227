"""The pairing rule, flow by flow, as the coordinator sees it."""

from __future__ import annotations

import pytest

from actors.fix.states import LOGGED_ON
from actors.fix.states import SessionState as S
from actors.gateway.pair_policy import (
    COMMAND_HOLD_S,
    DRIVEN_UNDER_WAY,
    HANDLER_ENDED,
    HANDLER_TRADING,
    PairCommand,
    PairPolicy,
    manual_repair,
)
from actors.gateway.vocabulary import CommandName, Connect, Disconnect, Logout


def policy() -> PairPolicy:
    p = PairPolicy("client", "venue", driven_grace_s=10.0)
    p.on_state("client", S.DISCONNECTED, "session process started", 0.0, "c1")
    p.on_state("venue", S.DISCONNECTED, "session process started", 0.0, "v1")
    return p


def cmds(commands: list[PairCommand]) -> list[tuple[str, str]]:
    return [(c.session, c.cmd) for c in commands]


def test_main_flow_user_logs_on_then_driven_connects() -> None:
    p = policy()
    assert cmds(p.on_state("client", S.CONNECTED, "Logon accepted", 1.0)) == [("venue", "connect")]
    assert cmds(p.on_state("venue", S.CONNECTING, "connecting", 1.1)) == []
    assert cmds(p.on_state("venue", S.CONNECTED, "Logon reply received", 1.2)) == []


def test_user_logout_disconnects_the_driven() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    [c] = p.on_state("client", S.DISCONNECTED, "Logout exchange complete", 2.0)
    assert (c.session, c.cmd) == ("venue", "disconnect") and "Logout exchange complete" in c.text


def test_user_connection_break_disconnects_the_driven() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    assert cmds(p.on_state("client", S.DISCONNECTED_ABNORMALLY, "connection reset", 2.0)) == [("venue", "disconnect")]


def test_driven_reconnecting_is_left_alone_and_giving_up_logs_the_user_out() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    assert cmds(p.on_state("venue", S.DISCONNECTED_ABNORMALLY, "connection lost", 2.0)) == []
    assert cmds(p.on_state("venue", S.RECONNECTING, "next try in 2 s", 2.0)) == []
    [c] = p.on_state("venue", S.DISCONNECTED, "connection refused; gave up after 3 tries", 9.0)
    assert (c.session, c.cmd) == ("client", "logout") and "gave up after 3 tries" in c.text


def test_venue_unreachable_at_logon_logs_the_user_out_with_the_reason() -> None:
    p = policy()
    assert cmds(p.on_state("client", S.CONNECTED, "", 1.0)) == [("venue", "connect")]
    p.on_state("venue", S.CONNECTING, "connecting to 127.0.0.1:9877 (try 1)", 1.0)
    p.on_state("venue", S.DISCONNECTED_ABNORMALLY, "Connection refused", 1.1)
    [c] = p.on_state("venue", S.DISCONNECTED, "Connection refused; gave up after 1 tries", 1.2)
    assert c.cmd == "logout" and "Connection refused" in c.text


def test_a_restarted_driven_is_connected_again() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    # kill -9: a new process reports DISCONNECTED before the broker noticed the old one went
    assert cmds(p.on_state("venue", S.DISCONNECTED, "session process started", 3.0, "v2")) == [("venue", "connect")]


def test_a_driven_that_stays_gone_logs_the_user_out_after_the_grace_period() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    assert cmds(p.on_actor("venue", False, 2.0)) == []
    assert cmds(p.reconcile(11.0)) == []
    assert cmds(p.reconcile(12.5)) == [("client", "logout")]


def test_a_handler_silent_past_its_grace_disconnects_the_driven() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    assert cmds(p.on_actor("client", False, 2.0)) == []
    assert cmds(p.reconcile(11.9)) == []
    assert cmds(p.reconcile(12.0)) == [("venue", "disconnect")]


def test_a_restarted_handler_disconnects_the_driven_as_soon_as_it_reports_no_user() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    assert cmds(p.on_actor("client", False, 2.0)) == []
    assert cmds(p.on_actor("client", True, 3.0)) == []
    assert cmds(p.on_state("client", S.DISCONNECTED, "session process started", 3.1, "c2")) == [
        ("venue", "disconnect")]


def test_a_handler_that_stalled_and_came_back_with_its_user_changes_nothing() -> None:
    """A frozen process (a slow disk, a paused VM) is published down, then up: its user never left."""
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0, "c1")
    p.on_state("venue", S.CONNECTED, "", 1.1, "v1")
    assert cmds(p.on_actor("client", False, 2.0)) == []
    assert cmds(p.reconcile(5.0)) == []
    assert cmds(p.on_actor("client", True, 6.0)) == []
    assert cmds(p.reconcile(30.0)) == []  # up again: no grace runs while its state is being asked for
    assert cmds(p.on_state("client", S.CONNECTED, "", 6.1, "c1")) == []


def test_a_restarted_coordinator_learns_states_and_carries_on() -> None:
    fresh = PairPolicy("client", "venue")
    assert cmds(fresh.on_state("venue", S.CONNECTED, "", 0.0, "v1")) == []
    assert cmds(fresh.on_state("client", S.CONNECTED, "", 0.0, "c1")) == []
    # and a half-finished pair is finished
    fresh2 = PairPolicy("client", "venue")
    fresh2.on_state("venue", S.DISCONNECTED, "", 0.0, "v1")
    assert cmds(fresh2.on_state("client", S.CONNECTED, "", 0.0, "c1")) == [("venue", "connect")]


def test_commands_are_not_repeated_while_nothing_changes() -> None:
    p = policy()
    assert cmds(p.on_state("client", S.CONNECTED, "", 1.0)) == [("venue", "connect")]
    assert cmds(p.reconcile(2.0)) == []
    assert cmds(p.reconcile(1.0 + COMMAND_HOLD_S + 0.1)) == [("venue", "connect")]


def test_a_venue_logout_keeps_the_user_on_while_the_driven_reconnects() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    # Between the Logout and the next try the Driven waits DISCONNECTED; a connect is then a no-op for it.
    assert cmds(p.on_state("venue", S.DISCONNECTED, "Logout exchange complete: closing", 2.0)) == [("venue", "connect")]
    assert cmds(p.on_state("venue", S.CONNECTING, "connecting to 127.0.0.1:9877 (try 1)", 7.0)) == []
    assert cmds(p.on_state("venue", S.CONNECTED, "Logon reply received", 7.1)) == []


def test_a_new_logon_after_a_give_up_connects_again_at_once() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTING, "", 1.1)
    [c] = p.on_state("venue", S.DISCONNECTED, "connection refused; gave up after 6 tries", 30.0)
    assert c.cmd == "logout"
    assert cmds(p.on_state("client", S.DISCONNECTED, "Logout exchange complete", 30.1)) == []
    # No hold: the user's new Logon is a change, and the Driven stopped by itself.
    assert cmds(p.on_state("client", S.CONNECTED, "Logon accepted", 31.0)) == [("venue", "connect")]


@pytest.mark.parametrize("left_in", [S.DISCONNECTED, S.DISCONNECTED_ABNORMALLY, S.RECONNECTING])
def test_a_quick_relogon_connects_the_driven_stopped_for_the_logout(left_in: S) -> None:
    """The Driven, told to stop for the user's Logout, stays offline until told to connect again."""
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTING, "", 1.1)
    assert cmds(p.on_state("client", S.DISCONNECTED, "Logout exchange complete", 1.2)) == [("venue", "disconnect")]
    assert cmds(p.on_state("client", S.CONNECTED, "Logon accepted", 1.3)) == []  # still CONNECTING: wait
    assert cmds(p.on_state("venue", S.WAITING_FOR_FORCED_DISCONNECT, "dropped", 1.4)) == []
    assert cmds(p.on_state("venue", left_in, "connect abandoned", 1.5)) == [("venue", "connect")]


def test_a_stopped_driven_is_not_told_to_stop_again() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.RECONNECTING, "", 1.1)
    assert cmds(p.on_state("client", S.DISCONNECTED, "", 2.0)) == [("venue", "disconnect")]
    assert cmds(p.reconcile(2.0 + 3 * COMMAND_HOLD_S)) == []


@pytest.mark.parametrize("reason", [
    "Logout exchange complete: MsgSeqNum too low, expecting 12 but received 7",
    "Logon refused by the counterparty: MsgSeqNum too low, expecting 12 but received 7",
    "Logout exchange complete: Sequence number too low; manual intervention required",
])
def test_a_venue_asking_for_manual_repair_stops_the_driven_and_tells_the_user(reason: str) -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    got = p.on_state("venue", S.DISCONNECTED_ABNORMALLY, reason, 2.0)
    assert cmds(got) == [("venue", "disconnect"), ("client", "logout")]
    venue_text = reason.split(": ", 1)[1]
    assert got[1].text == f"venue session ended and needs manual repair: {venue_text}"
    assert manual_repair(reason) == venue_text


def test_ordinary_logout_texts_are_not_manual_repair() -> None:
    for reason in ("Logout exchange complete: end of day", "connection lost", "MsgSeqNum too high, expecting 3"):
        assert manual_repair(reason) is None


def test_a_restarted_handler_is_named_as_such_not_by_its_new_process_reason() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    [c] = p.on_state("client", S.DISCONNECTED, "session process started", 2.0, "c2")
    assert c.text == "end user's session ended: the end user's session process ended"


def test_a_stale_status_reply_does_not_undo_a_newer_state_event() -> None:
    """A status reply written before the Driven started connecting, read after its CONNECTING event, is ignored.

    State events and status replies travel different planes of the bus; without the
    count of state changes, the old DISCONNECTED read as "the venue session ended".
    """
    p = PairPolicy("client", "venue", driven_grace_s=10.0)
    p.on_state("client", S.DISCONNECTED, "session process started", 0.0, "c1", version=0)
    p.on_state("venue", S.DISCONNECTED, "session process started", 0.0, "v1", version=0)
    assert cmds(p.on_state("client", S.CONNECTED, "Logon accepted", 1.0, "c1", version=3)) == [("venue", "connect")]
    assert cmds(p.on_state("venue", S.CONNECTING, "connecting", 1.1, "v1", version=1)) == []
    assert cmds(p.on_state("venue", S.DISCONNECTED, "session process started", 1.2, "v1", version=0)) == []
    assert p.driven.state is S.CONNECTING
    # A real end of the venue session, newer than anything seen, still logs the user out.
    [c] = p.on_state("venue", S.DISCONNECTED, "Connection refused; gave up after 1 tries", 2.0, "v1", version=3)
    assert (c.session, c.cmd) == ("client", "logout") and "gave up" in c.text


def test_a_new_process_starts_its_count_again() -> None:
    p = PairPolicy("client", "venue", driven_grace_s=10.0)
    p.on_state("venue", S.CONNECTED, "", 0.0, "v1", version=7)
    p.on_state("venue", S.DISCONNECTED, "session process started", 1.0, "v2", version=0)
    assert p.driven.state is S.DISCONNECTED


# ----------------------------------------------------------------- the sets and the commands


def test_every_state_is_judged_for_the_handler() -> None:
    """A state added to the core must be placed on purpose: trading, ended, or one only an initiator is in."""
    initiator_only = {S.CONNECTING, S.RECONNECTING}
    assert HANDLER_TRADING.isdisjoint(HANDLER_ENDED) and HANDLER_ENDED.isdisjoint(initiator_only)
    assert HANDLER_TRADING | HANDLER_ENDED | initiator_only == set(S)


def test_trading_is_narrower_than_the_cores_logged_on() -> None:
    """The core counts a session logging out as logged on; the policy does not let such a user trade."""
    assert HANDLER_TRADING < LOGGED_ON
    assert LOGGED_ON - HANDLER_TRADING <= HANDLER_ENDED
    assert HANDLER_TRADING <= DRIVEN_UNDER_WAY


def test_commands_are_the_vocabularys_and_say_why_with_state_names() -> None:
    p = policy()
    [connect] = p.on_state("client", S.CONNECTED, "Logon accepted", 1.0)
    assert connect.command == Connect() and connect.cmd is CommandName.CONNECT and connect.text == ""
    assert connect.command.to_body() == {"cmd": "connect"}
    p.on_state("venue", S.CONNECTED, "", 1.1)
    [disconnect] = p.on_state("client", S.WAITING_FOR_LOGOFF, "Logout requested", 2.0)
    assert disconnect.command == Disconnect("end user's session ended: Logout requested")
    assert disconnect.why == "client is WAITING_FOR_LOGOFF"
    assert disconnect.command.to_body() == {"cmd": "disconnect", "text": disconnect.text}


def test_a_dead_handler_is_named_down() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    assert p.on_actor("client", False, 2.0) == []
    [c] = p.reconcile(12.0)
    assert c.why == "client is down" and c.text == "end user's session ended: the end user's session process ended"


def test_a_logout_of_the_handler_carries_its_text() -> None:
    p = policy()
    p.on_state("client", S.CONNECTED, "", 1.0)
    p.on_state("venue", S.CONNECTED, "", 1.1)
    [c] = p.on_state("venue", S.DISCONNECTED, "connection refused; gave up after 2 tries", 2.0)
    assert c.command == Logout("venue session ended: connection refused; gave up after 2 tries") and c.why == c.text


# ------------------------------------------------------------------ logon_waits_for_venue


def test_a_held_logon_connects_the_driven_and_is_answered_once_the_venue_session_is_up() -> None:
    from actors.fix.states import LOGON_HELD_REASON

    p = policy()
    assert cmds(p.on_state("client", S.WAITING_FOR_LOGON, "connection accepted", 1.0)) == []
    assert cmds(p.on_state("client", S.LOGON_RECEIVED, LOGON_HELD_REASON, 1.0)) == [("venue", "connect")]
    assert cmds(p.on_state("venue", S.CONNECTING, "connecting", 1.1)) == []
    [answer] = p.on_state("venue", S.CONNECTED, "Logon reply received", 1.2)
    assert (answer.session, answer.cmd, answer.text) == ("client", "answer_logon", "")
    assert cmds(p.on_state("client", S.CONNECTED, "Logon accepted", 1.3)) == []


def test_a_logon_received_without_the_hold_is_no_reason_to_connect() -> None:
    """Off (the default) LOGON_RECEIVED passes within one call; a refused Logon must not start the Driven."""
    p = policy()
    assert cmds(p.on_state("client", S.LOGON_RECEIVED, "Logon received", 1.0)) == []


def test_a_held_logon_is_refused_with_the_reason_when_the_driven_gives_up() -> None:
    from actors.fix.states import LOGON_HELD_REASON

    p = policy()
    p.on_state("client", S.LOGON_RECEIVED, LOGON_HELD_REASON, 1.0)
    p.on_state("venue", S.CONNECTING, "try 1", 1.1)
    assert cmds(p.on_state("venue", S.RECONNECTING, "Connection refused; next try in 1 s", 1.2)) == []
    [refusal] = p.on_state("venue", S.DISCONNECTED, "Connection refused; gave up after 3 tries", 4.0)
    assert (refusal.session, refusal.cmd) == ("client", "answer_logon")
    assert refusal.text == "venue session unavailable: Connection refused; gave up after 3 tries"


def test_a_held_logon_is_refused_when_the_venue_needs_manual_repair() -> None:
    from actors.fix.states import LOGON_HELD_REASON

    p = policy()
    p.on_state("client", S.LOGON_RECEIVED, LOGON_HELD_REASON, 1.0)
    p.on_state("venue", S.CONNECTING, "try 1", 1.1)
    commands = p.on_state("venue", S.DISCONNECTED,
                          "Logon refused by the counterparty: MsgSeqNum too low, expecting 12 but received 7", 1.5)
    assert cmds(commands) == [("venue", "disconnect"), ("client", "answer_logon")]
    assert commands[1].text == ("venue session ended and needs manual repair: "
                                "MsgSeqNum too low, expecting 12 but received 7")
