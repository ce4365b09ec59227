"""The pairing rule end to end, one test per flow: what the trader and the venue see.

Broker, Handler, Driven, coordinator and monitor run under supervisord; the
trader and the venue are fixmesh endpoints (real FIX processes) whose logs
show every Logon, Logout and its text, and whose received logs show every
order. Each flow is also run with the process that fails killed by SIGKILL.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.interop import (
    Child,
    Children,
    count_received,
    endpoint_command,
    exactly_once_problems,
    read_received,
    wait_until,
)
from tests.system.gateway import Gateway

pytestmark = [pytest.mark.slow]


class Flow:
    """A gateway with its coordinator, and helpers to start the trader and the venue."""

    def __init__(self, tmp_path: Path, children: Children, **gateway: str) -> None:
        self.tmp = tmp_path
        self.children = children
        self.gw = Gateway(tmp_path / "gateway", children, coordinator=True, **gateway)  # type: ignore[arg-type]
        self.gw.start()

    def venue(self, send: int = 0, rate: float = 200.0) -> Child:
        command = endpoint_command("acceptor", self.gw.ports.venue, "VENUE", "GATEWAY", self.tmp / "venue",
                                   send=send, rate=rate)
        return self.children.start("venue", command)

    def trader(self, send: int = 0, rate: float = 200.0, *, expect_exit: bool = False,
               reconnect_after_logout: bool = False) -> Child:
        command = endpoint_command("initiator", self.gw.ports.handler, "TRADER", "GATEWAY", self.tmp / "trader",
                                   send=send, rate=rate,
                                   extra=["--reconnect-after-logout"] if reconnect_after_logout else [])
        child = self.children.start("trader", command)
        child.stopped = expect_exit  # an initiator logged out by the gateway exits by itself
        return child

    def received(self, who: str) -> int:
        return count_received(self.tmp / who / "received.log")

    def wait_log(self, child: Child, text: str, timeout_s: float = 30.0) -> None:
        wait_until(lambda: text in child.log_text(), timeout_s, f"{child.name} to log {text!r}", self.children)

    def wait_state(self, session: str, state: str, timeout_s: float = 30.0) -> None:
        wait_until(lambda: self.last_state(session) == state, timeout_s, f"{session} {state}", self.children)

    def last_state(self, session: str) -> str:
        states = [e["body"]["new"] for e in self.gw.events()  # type: ignore[index]
                  if e.get("topic") == f"session.{session}.state"]
        return str(states[-1]) if states else ""

    def stop(self) -> None:
        self.gw.stop()


@pytest.fixture
def flow(tmp_path: Path, children: Children) -> Iterator[Flow]:
    f = Flow(tmp_path, children)
    try:
        yield f
    finally:
        f.stop()


def test_main_flow_then_the_user_logs_out_and_the_driven_follows(flow: Flow) -> None:
    venue = flow.venue(send=20)
    trader = flow.trader(send=20)
    wait_until(lambda: flow.received("venue") == 20 and flow.received("trader") == 20, 30,
               "20 orders each way", flow.children)
    assert trader.terminate() == 0
    flow.wait_log(venue, "Logout received: end user's session ended")
    flow.wait_state("venue", "DISCONNECTED")
    for who in ("venue", "trader"):
        assert not exactly_once_problems(read_received(flow.tmp / who / "received.log"), 20)


def test_the_users_connection_breaks_and_the_driven_is_logged_out(flow: Flow) -> None:
    venue = flow.venue()
    trader = flow.trader()
    flow.wait_state("venue", "CONNECTED")
    trader.kill()
    flow.wait_log(venue, "Logout received: end user's session ended")


def test_venue_unreachable_at_logon_logs_the_user_out_with_the_reason(tmp_path: Path, children: Children) -> None:
    flow = Flow(tmp_path, children, venue_extra=", reconnect_max_tries: 2")
    try:
        trader = flow.trader(expect_exit=True)
        flow.wait_log(trader, "venue session ended", timeout_s=30)
        text = trader.log_text()
        assert "gave up after 2 tries" in text and "Connection refused" in text, trader.report("no reason given")
        wait_until(lambda: trader.exit_code is not None, 15, "the trader disconnected", children)
    finally:
        flow.stop()


def test_the_driven_reconnects_after_a_drop_and_the_user_stays_on(flow: Flow) -> None:
    venue = flow.venue()
    trader = flow.trader(send=400, rate=100)
    wait_until(lambda: flow.received("venue") >= 100, 30, "100 orders at the venue", flow.children)
    venue.kill()
    venue = flow.venue()
    wait_until(lambda: flow.received("venue") >= 400, 60, "all orders at the venue", flow.children)
    assert not exactly_once_problems(read_received(flow.tmp / "venue" / "received.log"), 400)
    assert trader.exit_code is None and "Logout received" not in trader.log_text()


def test_kill_9_of_the_handler_disconnects_the_driven_and_all_recovers(flow: Flow) -> None:
    venue = flow.venue()
    flow.trader(send=400, rate=100)
    wait_until(lambda: flow.received("venue") >= 100, 30, "100 orders at the venue", flow.children)
    os.kill(flow.gw.pid("client"), signal.SIGKILL)
    flow.wait_log(venue, "Logout received: end user's session ended")
    wait_until(lambda: flow.received("venue") >= 400, 90, "all orders at the venue after recovery", flow.children)
    assert not exactly_once_problems(read_received(flow.tmp / "venue" / "received.log"), 400)


#: Longer than the broker's 3 s of silence before it publishes an actor down.
STALL_S = 6.0


@pytest.mark.parametrize("stalled", ["client", "venue", "broker"])
def test_a_session_process_that_stalls_for_seconds_leaves_both_fix_sessions_alone(flow: Flow, stalled: str) -> None:
    """A process frozen for a few seconds (a disk that takes seconds to sync, a VM paused to migrate it) is not a
    session gone: the broker publishes it down and up again, and neither FIX session may notice."""
    venue = flow.venue()
    trader = flow.trader(send=400, rate=100)
    wait_until(lambda: flow.received("venue") >= 100, 30, "100 orders at the venue", flow.children)
    pid = flow.gw.pid(stalled)
    os.kill(pid, signal.SIGSTOP)
    try:
        if stalled == "broker":  # it publishes nothing while frozen; once thawed, every actor it lost
            time.sleep(STALL_S)
        else:
            wait_until(lambda: any(e.get("topic") == f"actor.{stalled}.down" for e in flow.gw.events()), 15,
                       f"the broker to publish the stalled {stalled} down", flow.children)
            time.sleep(max(0.0, STALL_S - 3.0))
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: flow.received("venue") >= 400, 60, "all orders at the venue", flow.children)
    assert not exactly_once_problems(read_received(flow.tmp / "venue" / "received.log"), 400)
    assert flow.gw.pid(stalled) == pid, f"{stalled} was restarted"
    assert "Logout" not in venue.log_text() and "Logout" not in trader.log_text(), (venue.log_text()[-2000:],
                                                                                     trader.log_text()[-2000:])


def test_kill_9_of_the_driven_reconnects_it_and_the_user_stays_on(flow: Flow) -> None:
    flow.venue()
    trader = flow.trader(send=400, rate=100)
    wait_until(lambda: flow.received("venue") >= 100, 30, "100 orders at the venue", flow.children)
    os.kill(flow.gw.pid("venue"), signal.SIGKILL)
    wait_until(lambda: flow.received("venue") >= 400, 90, "all orders at the venue", flow.children)
    assert not exactly_once_problems(read_received(flow.tmp / "venue" / "received.log"), 400)
    assert "Logout received" not in trader.log_text()


def test_kill_9_of_the_coordinator_changes_nothing_the_user_or_venue_see(flow: Flow) -> None:
    venue = flow.venue(send=400, rate=100)
    trader = flow.trader(send=400, rate=100)
    wait_until(lambda: flow.received("venue") >= 100, 30, "100 orders at the venue", flow.children)
    os.kill(flow.gw.pid("coordinator"), signal.SIGKILL)
    wait_until(lambda: flow.gw.state("coordinator") == "RUNNING", 30, "coordinator restarted", flow.children)
    wait_until(lambda: flow.received("venue") >= 400 and flow.received("trader") >= 400, 60, "all orders",
               flow.children)
    for who in ("venue", "trader"):
        assert not exactly_once_problems(read_received(flow.tmp / who / "received.log"), 400)
    assert "Logout" not in trader.log_text() and "Logout" not in venue.log_text()


def _window(start: datetime, end: datetime) -> str:
    return (f", schedule: {{start_time: '{start:%H:%M:%S}', end_time: '{end:%H:%M:%S}', "
            f"time_zone: UTC}}")


def test_logons_outside_the_schedule_are_refused_with_a_clear_text(tmp_path: Path, children: Children) -> None:
    now = datetime.now(UTC)
    closed = _window(now + timedelta(hours=2), now + timedelta(hours=3))
    flow = Flow(tmp_path, children, client_extra=closed)
    try:
        flow.venue()
        trader = flow.trader(expect_exit=True)
        flow.wait_log(trader, "outside the session schedule")
        assert flow.last_state("venue") in ("", "DISCONNECTED"), "the Driven must not connect"
    finally:
        flow.stop()


def test_the_end_of_the_window_logs_out_both_halves(tmp_path: Path, children: Children) -> None:
    now = datetime.now(UTC)
    flow = Flow(tmp_path, children, client_extra=_window(now - timedelta(minutes=1), now + timedelta(seconds=12)))
    try:
        venue = flow.venue()
        trader = flow.trader(reconnect_after_logout=True)
        flow.wait_state("venue", "CONNECTED")
        flow.wait_log(trader, "end of the session window", timeout_s=40)
        flow.wait_log(venue, "Logout received: end user's session ended")
        # The trader's reconnect attempts after the window are refused.
        flow.wait_log(trader, "outside the session schedule", timeout_s=30)
    finally:
        flow.stop()


def test_orders_older_than_the_ttl_are_rejected_back_to_the_user(tmp_path: Path, children: Children) -> None:
    """The venue is down when the trader sends; when it comes back, the orders have outlived their TTL."""
    # Retrying for ever: the default budget (6 tries at 0.5 s here) would log the trader out before the TTL.
    flow = Flow(tmp_path, children,
                venue_extra=", enable_message_rejecting: true, message_ttl: 2, reconnect_max_tries: unlimited")
    try:
        trader = flow.trader(send=5, rate=50)
        flow.wait_state("client", "CONNECTED")
        flow.wait_state("venue", "RECONNECTING")  # the venue is down: the orders wait, unsent, at the Driven
        time.sleep(3.0)  # real time must pass: the orders have to outlive their 2 s time-to-live
        venue = flow.venue()
        wait_until(lambda: flow.received("trader") == 5, 30, "5 rejections at the trader", children)
        rejects = read_received(flow.tmp / "trader" / "received.log")
        assert [r.cl_ord_id for r in rejects] == [str(i) for i in range(1, 6)]
        assert flow.received("venue") == 0, "expired orders must not reach the venue"
        rejected = [e for e in flow.gw.events() if e.get("topic") == "session.venue.rejected"]
        assert len(rejected) == 5 and all("time-to-live" in str(e["body"]) for e in rejected)
        assert trader.exit_code is None and venue.exit_code is None
    finally:
        flow.stop()


def test_quickfix_as_the_end_user_main_flow_and_venue_unreachable(tmp_path: Path, children: Children) -> None:
    """An engine nobody here wrote as the trader: it logs on, trades, and is told why it was logged out."""
    from tests.system.test_gateway_pair import quickfix_peer

    flow = Flow(tmp_path, children, venue_extra=", reconnect_max_tries: 2")
    try:
        venue = flow.venue(send=50)
        trader = children.start("quickfix-trader", quickfix_peer("initiator", flow.gw.ports.handler, "TRADER",
                                                                 tmp_path / "qf-trader", 50, 200))
        wait_until(lambda: flow.received("venue") == 50 and count_received(tmp_path / "qf-trader" / "received.log")
                   == 50, 30, "50 orders each way with QuickFIX as the trader", children)
        venue.kill()  # the venue goes away for good: the Driven gives up and the trader is told
        flow.wait_log(trader, "Logout received: venue session ended", timeout_s=40)
        assert "gave up after 2 tries" in trader.log_text()
    finally:
        flow.stop()
