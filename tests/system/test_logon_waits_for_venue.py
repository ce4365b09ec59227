"""``logon_waits_for_venue``: the Handler answers its user's Logon only once the venue session is up.

A whole gateway (broker, Handler, Driven, coordinator, monitor) runs under
supervisord with the setting on the Handler; the trader and the venue are
fixmesh endpoints. The monitor's state events carry each session's own
time of each change, so the order of "venue CONNECTED" and "client
CONNECTED" is read from them, not guessed from wall-clock sleeps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.fix.states import LOGON_HELD_REASON
from tests.interop import Children, wait_until
from tests.system.test_coordinator_flows import Flow
from tests.system.test_new_orders_stay_new import assert_new_and_gapless

pytestmark = [pytest.mark.slow]

WAITS = ", logon_waits_for_venue: true"


def state_times(flow: Flow, session: str, state: str) -> list[int]:
    """The session's own times (ns) of every change into ``state``, as the monitor printed them."""
    times = []
    for event in flow.gw.events():
        body = event.get("body")
        if event.get("topic") == f"session.{session}.state" and isinstance(body, dict) and body["new"] == state:
            times.append(int(body["time_ns"]))
    return times


def test_the_users_logon_is_answered_after_the_venue_session_is_up_and_orders_flow_as_new(
        tmp_path: Path, children: Children) -> None:
    flow = Flow(tmp_path, children, client_extra=WAITS)
    try:
        flow.venue()
        trader = flow.trader(send=50, rate=0)
        wait_until(lambda: flow.received("venue") >= 50, 60, "50 orders at the venue", children)
        assert_new_and_gapless(flow, 50)
        held = [e["body"] for e in flow.gw.events() if e.get("topic") == "session.client.state"
                and isinstance(e.get("body"), dict) and e["body"]["new"] == "LOGON_RECEIVED"]  # type: ignore[index]
        assert held and held[0]["reason"] == LOGON_HELD_REASON, held  # type: ignore[index]
        venue_up, client_up = state_times(flow, "venue", "CONNECTED"), state_times(flow, "client", "CONNECTED")
        venue_connecting = state_times(flow, "venue", "CONNECTING")
        assert venue_up and client_up, (venue_up, client_up)
        assert int(held[0]["time_ns"]) < venue_connecting[0], "the Driven connected before the user's Logon"  # type: ignore[index]
        assert venue_up[0] < client_up[0], "the user was logged on before the venue session was up"
        assert "Logon refused" not in trader.log_text()
    finally:
        flow.stop()


def test_with_the_venue_down_the_user_gets_a_logout_with_the_reason_and_never_logs_on(
        tmp_path: Path, children: Children) -> None:
    flow = Flow(tmp_path, children, client_extra=WAITS, venue_extra=", reconnect_max_tries: 2")
    try:
        trader = flow.trader(send=5, expect_exit=True)
        flow.wait_log(trader, "venue session unavailable", timeout_s=30)
        text = trader.log_text()
        assert "gave up after 2 tries" in text and "Connection refused" in text, trader.report("no reason given")
        assert state_times(flow, "client", "CONNECTED") == [], "the user reached CONNECTED"
        assert "sending orders" not in text, trader.report("the trader was logged on")
        wait_until(lambda: bool(state_times(flow, "venue", "DISCONNECTED")), 15, "the Driven to stop", children)
    finally:
        flow.stop()
