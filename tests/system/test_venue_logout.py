"""A venue Logout is a loss the Driven recovers from; the user is told only when it cannot.

Broker, Handler, Driven, coordinator and monitor run under supervisord
(``tests.system.gateway``); the trader and the venue are fixmesh endpoints.
The venue logs out by being stopped with SIGTERM (its graceful stop sends a
Logout), and comes back, or stays away, or answers the Driven's Logon with
"MsgSeqNum too low" (it expects a number far above the Driven's).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop import Children, endpoint_command, wait_until
from tests.system.test_coordinator_flows import Flow

pytestmark = [pytest.mark.slow]

FAST = ", reconnect_interval: 0.5"


def test_the_venue_logs_out_once_the_driven_reconnects_and_the_user_trades_on(tmp_path: Path,
                                                                               children: Children) -> None:
    flow = Flow(tmp_path, children, venue_extra=FAST + ", reconnect_max_tries: 20")
    try:
        venue = flow.venue()
        trader = flow.trader(send=300, rate=100)
        wait_until(lambda: flow.received("venue") >= 50, 30, "50 orders at the venue", children)
        assert venue.terminate() == 0  # the venue logs out (its graceful stop)
        wait_until(lambda: "Logout" in flow.gw.log("venue") and flow.last_state("venue") != "CONNECTED", 15,
                   "the Driven saw the venue's Logout", children)
        flow.venue()
        wait_until(lambda: flow.received("venue") >= 300, 60, "every order at the venue after the reconnect",
                   children)
        assert trader.exit_code is None and "Logout received" not in trader.log_text(), trader.report(
            "the user was logged out although the venue came back")
        states = [e["body"]["new"] for e in flow.gw.events()  # type: ignore[index]
                  if e.get("topic") == "session.venue.state"]
        assert states.count("CONNECTED") >= 2, states
    finally:
        flow.stop()


def test_the_user_is_logged_out_only_after_the_budget_when_the_venue_stays_away(tmp_path: Path,
                                                                                children: Children) -> None:
    flow = Flow(tmp_path, children, venue_extra=FAST + ", reconnect_max_tries: 3")
    try:
        venue = flow.venue()
        trader = flow.trader(expect_exit=True)
        flow.wait_state("venue", "CONNECTED")
        assert venue.terminate() == 0
        flow.wait_log(trader, "venue session ended", timeout_s=30)
        text = trader.log_text()
        assert "gave up after 3 tries" in text, trader.report("the Logout does not say why")
        states = [str(e["body"]["new"]) for e in flow.gw.events()  # type: ignore[index]
                  if e.get("topic") == "session.venue.state"]
        after_logout = states[len(states) - states[::-1].index("CONNECTED"):]
        assert after_logout.count("CONNECTING") == 3, f"3 tries after the venue's Logout: {after_logout}"
    finally:
        flow.stop()


def test_a_venue_asking_for_manual_repair_ends_the_users_session_with_its_text(tmp_path: Path,
                                                                              children: Children) -> None:
    flow = Flow(tmp_path, children, venue_extra=FAST + ", reconnect_max_tries: 5")
    try:
        command = endpoint_command("acceptor", flow.gw.ports.venue, "VENUE", "GATEWAY", tmp_path / "venue",
                                   send=0, rate=0, extra=["--next-target", "1000"])
        children.start("venue", command)
        trader = flow.trader(expect_exit=True)
        flow.wait_log(trader, "venue session ended and needs manual repair", timeout_s=30)
        assert "MsgSeqNum too low, expecting 1000" in trader.log_text()
        connecting = [e for e in flow.gw.events() if e.get("topic") == "session.venue.state"
                      and e["body"]["new"] == "CONNECTING"]  # type: ignore[index]
        assert len(connecting) < 5, "the Driven stopped instead of using its whole budget"
    finally:
        flow.stop()
