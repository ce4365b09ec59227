"""A Handler/Driven pair end to end: broker, two session actors and a monitor under supervisord.

The trader logs on to the Handler ``client``; the Driven ``venue`` connects to
the venue; application messages flow both ways through the broker. The
counterparties are independent FIX engines (QuickFIX's Python bindings) or
fixmesh endpoints, outside supervisord. Every message must reach the far
side exactly once, in order, also when the broker and each actor are killed
with SIGKILL under a steady flow and restarted by supervisord.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop import (
    Children,
    endpoint_command,
    exactly_once_problems,
    read_received,
    spec_file,
    wait_for_orders,
    wait_until,
)
from tests.system.gateway import Gateway

pytestmark = [pytest.mark.slow]


@pytest.fixture
def gateway(tmp_path: Path, children: Children) -> Iterator[Gateway]:
    with Gateway(tmp_path / "gateway", children) as gw:
        yield gw


def check_exactly_once(total: int, *logs: Path) -> None:
    for log in logs:
        problems = exactly_once_problems(read_received(log), total)
        assert not problems, f"{log}:\n" + "\n".join(problems[:20])


def quickfix_peer(role: str, port: int, sender: str, work: Path, total: int, rate: float) -> list[str]:
    command = [sys.executable, "-m", "tests.interop.qf_peer", "--role", role, "--port", str(port),
               "--sender", sender, "--target", "GATEWAY", "--work-dir", str(work),
               "--received-log", str(work / "received.log"), "--send", str(total), "--rate", str(rate)]
    dictionary = spec_file("FIX44.xml")
    return command + (["--data-dictionary", str(dictionary)] if dictionary else [])


TOTAL = 10_000


def test_ten_thousand_each_way_between_two_quickfix_engines(tmp_path: Path, children: Children,
                                                          gateway: Gateway) -> None:
    venue_work, trader_work = tmp_path / "venue", tmp_path / "trader"
    children.start("quickfix-venue", quickfix_peer("acceptor", gateway.ports.venue, "VENUE", venue_work,
                                                   TOTAL, 3000))
    children.start("quickfix-trader", quickfix_peer("initiator", gateway.ports.handler, "TRADER", trader_work,
                                                    TOTAL, 3000))
    venue_log, trader_log = venue_work / "received.log", trader_work / "received.log"
    wait_for_orders(children, TOTAL, [venue_log, trader_log], timeout_s=120)
    check_exactly_once(TOTAL, venue_log, trader_log)

    # One OS process per session, each named by its session in its command line.
    pids = {name: gateway.pid(name) for name in ("broker", "client", "venue")}
    assert len(set(pids.values())) == 3 and all(pids.values()), pids
    for name in ("client", "venue"):
        cmdline = Path(f"/proc/{pids[name]}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1].endswith(b"/fixmesh") and cmdline[2] == b"session" and name.encode() in cmdline, cmdline


CRASH_TOTAL = 6000
CRASH_RATE = 600.0
#: How long the monitor may take to show the last restart once the orders are through.
RESTART_SHOWN_S = 15.0


def test_kill_9_of_broker_and_each_actor_loses_and_repeats_nothing(tmp_path: Path, children: Children,
                                                                  gateway: Gateway) -> None:
    venue_work, trader_work = tmp_path / "venue", tmp_path / "trader"
    venue_log, trader_log = venue_work / "received.log", trader_work / "received.log"
    children.start("venue", endpoint_command("acceptor", gateway.ports.venue, "VENUE", "GATEWAY", venue_work,
                                             send=CRASH_TOTAL, rate=CRASH_RATE))
    children.start("trader", endpoint_command("initiator", gateway.ports.handler, "TRADER", "GATEWAY",
                                              trader_work, send=CRASH_TOTAL, rate=CRASH_RATE))
    killed: dict[str, int] = {}
    for name, at in (("broker", 800), ("client", 2000), ("venue", 3200)):
        wait_for_orders(children, at, [venue_log, trader_log], timeout_s=120)
        pid = gateway.pid(name)
        killed[name] = pid
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda n=name, p=pid: gateway.pid(n) not in (0, p) and gateway.state(n) == "RUNNING",
                   30, f"{name} restarted by supervisord", children)
    wait_for_orders(children, CRASH_TOTAL, [venue_log, trader_log], timeout_s=180)
    check_exactly_once(CRASH_TOTAL, venue_log, trader_log)

    # The monitor tells a restart by the new process's first heartbeat, up to a second after it starts: the
    # last killed actor's may still be on its way when the orders are through.
    def restarts_shown() -> bool:
        shown = {e["body"]["actor"] for e in gateway.events() if e.get("topic") == "monitor.actor.restarted"}
        return {"client", "venue"} <= shown

    wait_until(restarts_shown, RESTART_SHOWN_S, "the monitor's monitor.actor.restarted of client and venue", children)
    events = gateway.events()
    topics = [e.get("topic") for e in events]
    for name in ("client", "venue"):
        # A restart can beat the silence limit (1.3 s here), so the crash shows as a new incarnation, whose
        # predecessor is the killed process (an incarnation starts with its pid in hex).
        restarts = [e["body"] for e in events if e.get("topic") == "monitor.actor.restarted"
                    and e["body"]["actor"] == name]
        assert [r["previous"].split("-")[0] for r in restarts] == [f"{killed[name]:x}"], \
            f"the monitor did not show {name}'s crash and recovery: {restarts} {topics[-40:]}"
        silent = [e for e in events if e.get("topic") == "monitor.actor.silent" and e["body"]["actor"] == name]
        back = [e for e in events if e.get("topic") == "monitor.actor.back" and e["body"]["actor"] == name]
        assert len(back) == len(silent), f"a silence of {name} without its end: {silent} {back}"
        assert f"session.{name}.state" in topics
        assert topics.count(f"actor.{name}.up") >= 2, f"the broker did not see {name} come back"
    assert gateway.log("broker").count("listening") == 2, "the broker was not restarted once"
