"""Orders sent right after the user's Logon reach the venue as new messages, exactly once, in order.

A whole gateway (broker, Handler, Driven, coordinator, monitor) runs under
supervisord; the trader and the venue are fixmesh endpoints whose received
logs hold ``<ClOrdID> <MsgSeqNum> <PossDupFlag>`` per message, so each test
asserts what the venue saw on the FIX wire: the Driven's Logon numbered 1 on
a fresh session (the first order is MsgSeqNum 2 and the venue saw no gap),
no ResendRequest, every order once with PossDupFlag=N.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.interop import Children, exactly_once_problems, read_received, wait_until
from tests.system.test_coordinator_flows import Flow

pytestmark = [pytest.mark.slow]

#: The venue may be down longer than the default tries last: these tests are about waiting, not giving up.
PATIENT = ", reconnect_max_tries: 1000"


def assert_new_and_gapless(flow: Flow, total: int) -> None:
    """The venue got ClOrdID 1..total once each, in order, as new messages right after the Driven's Logon 1."""
    entries = read_received(flow.tmp / "venue" / "received.log")
    problems = exactly_once_problems(entries, total)
    assert not problems, problems
    possdup = [e.cl_ord_id for e in entries if e.possdup]
    assert not possdup, f"{len(possdup)} of {total} orders arrived as PossDupFlag=Y resends, first {possdup[:5]}"
    assert [e.seq for e in entries] == list(range(2, total + 2)), "the Driven's Logon was not MsgSeqNum 1 " \
        "followed by the orders without a gap"
    for child in flow.children.started:
        if child.name == "venue":
            text = child.log_text()
            assert "sent ResendRequest" not in text and "MsgSeqNum too high" not in text, \
                child.report("the venue saw a sequence gap at session start")




def test_orders_sent_at_logon_reach_the_venue_as_new_messages(tmp_path: Path, children: Children) -> None:
    """The natural race: orders leave while the Driven connects; whether the first ones wait or not, all are new."""
    flow = Flow(tmp_path, children, venue_extra=PATIENT)
    try:
        flow.venue()
        flow.trader(send=200, rate=0)  # unthrottled: the orders leave while the Driven is still connecting
        wait_until(lambda: flow.received("venue") >= 200, 60, "200 orders at the venue", children)
        assert_new_and_gapless(flow, 200)
    finally:
        flow.stop()


def test_orders_that_waited_for_the_venue_go_out_as_new_messages(tmp_path: Path, children: Children) -> None:
    """The same with the venue down at first, so that every order waits for the Driven's Logon."""
    flow = Flow(tmp_path, children, venue_extra=PATIENT)
    try:
        _wait_while_the_venue_is_down(flow, children, 200)
        flow.venue()
        wait_until(lambda: flow.received("venue") >= 200, 60, "200 orders at the venue", children)
        assert_new_and_gapless(flow, 200)
    finally:
        flow.stop()


def _wait_while_the_venue_is_down(flow: Flow, children: Children, total: int) -> None:
    trader = flow.trader(send=total, rate=0)
    wait_until(lambda: f"all {total} orders sent" in trader.log_text(), 30, f"the trader to send {total} orders",
               children)
    wait_until(lambda: "forwards wait for the Logon" in flow.gw.log("venue"), 30, "the Driven holding orders",
               children)


def _restarted(flow: Flow, name: str, old_pid: int, children: Children) -> None:
    wait_until(lambda: flow.gw.pid(name) not in (0, old_pid) and flow.gw.state(name) == "RUNNING", 30,
               f"{name} restarted by supervisord", children)


def test_kill_9_of_the_driven_while_orders_wait_loses_and_repeats_nothing(tmp_path: Path,
                                                                           children: Children) -> None:
    flow = Flow(tmp_path, children, venue_extra=PATIENT)
    try:
        _wait_while_the_venue_is_down(flow, children, 50)
        pid = flow.gw.pid("venue")
        os.kill(pid, signal.SIGKILL)
        _restarted(flow, "venue", pid, children)
        flow.venue()
        wait_until(lambda: flow.received("venue") >= 50, 60, "50 orders at the venue", children)
        assert_new_and_gapless(flow, 50)
    finally:
        flow.stop()


def test_kill_9_of_the_handler_while_orders_wait_loses_and_repeats_nothing(tmp_path: Path,
                                                                            children: Children) -> None:
    flow = Flow(tmp_path, children, venue_extra=PATIENT)
    try:
        _wait_while_the_venue_is_down(flow, children, 50)
        pid = flow.gw.pid("client")
        os.kill(pid, signal.SIGKILL)
        _restarted(flow, "client", pid, children)
        flow.wait_state("client", "CONNECTED")  # the trader is back and has resent what was unacknowledged
        flow.venue()
        wait_until(lambda: flow.received("venue") >= 50, 60, "50 orders at the venue", children)
        assert_new_and_gapless(flow, 50)
    finally:
        flow.stop()


def test_orders_waiting_longer_than_the_ttl_come_back_rejected_and_never_reach_the_venue(
        tmp_path: Path, children: Children) -> None:
    flow = Flow(tmp_path, children, venue_extra=PATIENT + ", enable_message_rejecting: true, message_ttl: 2")
    try:
        trader = flow.trader(send=5, rate=0)
        # The venue is down: the orders wait in the Driven and expire there, before any venue is back.
        wait_until(lambda: flow.received("trader") >= 5, 30, "5 rejections at the trader", children)
        rejects = read_received(flow.tmp / "trader" / "received.log")
        assert [r.cl_ord_id for r in rejects] == [str(i) for i in range(1, 6)]
        assert all(not r.possdup for r in rejects)
        rejected = [e for e in flow.gw.events() if e.get("topic") == "session.venue.rejected"]
        assert len(rejected) == 5 and all("time-to-live (2 s; the message waited" in str(e["body"])
                                          for e in rejected), rejected
        venue = flow.venue()
        flow.wait_state("venue", "CONNECTED")
        time.sleep(1.0)  # real time for anything wrongly kept to reach the venue after its Logon
        assert flow.received("venue") == 0, "expired orders must not reach the venue"
        assert "sent ResendRequest" not in venue.log_text()
        assert trader.exit_code is None and venue.exit_code is None
    finally:
        flow.stop()
