"""A pair of brokers and two coordinators under supervisord, with orders flowing: nothing lost, nothing twice.

The gateway (``tests/system/gateway.py`` with ``backup_broker``) runs the primary broker
(``fixmesh broker --config T``), the backup (``--backup``), the Handler, the Driven and a JSON monitor
that follows the active broker; the trader and the venue are fixmesh endpoints outside supervisord,
each sending numbered NewOrderSingles (the venue's stand for its ExecutionReports: every application
message crosses the gateway the same way). A broker whose host is "lost" is killed with SIGKILL and
not restarted by supervisord (``no_restart``), as if its machine had gone; "back" is a start.

Every order must reach the venue, and every venue message the trader, exactly once and in order
(``exactly_once_problems``; a PossDup resend of the FIX layer is not a second order), and the flow
must resume within ``RESUME_BOUND_S`` of a broker's loss: every message sent before the loss has
arrived, and 20 more sent after it (``resumed_after``), so what was still in flight past the broker
does not pass for a resumed flow.

The bound is the clients' detection time plus what the move costs, not a guess: a client leaves a
broker it has heard nothing of for ``BROKER_SILENCE_S`` (``LIVENESS`` x ``HEARTBEAT_INTERVAL_S`` =
3 s; the other broker takes its vote, its own wait for the peer, 2 s, being over by then), and then
has ``MOVE_S`` to say hello to the other broker, be welcomed and resend what was not acknowledged,
about ``BROKER_SILENCE_S`` x ``RATE`` messages each way, while the receivers write them. Measured
3.1-3.4 s, on two cores busy with other work too.

The backup starts once the primary serves (``held``), as a second host that comes up later would:
started together on a busy machine, a primary slow to bind could leave the clients to the backup
(the pair's client vote, as designed), and the test would not be about the loss it names.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actors.gateway.outbox import BROKER_SILENCE_S
from actors.sim.endpoint import counter_path, session_id_of
from tests.interop import (
    Children,
    count_received,
    endpoint_command,
    exactly_once_problems,
    read_received,
    wait_for_orders,
    wait_until,
)
from tests.system.gateway import Gateway

pytestmark = [pytest.mark.slow]

FIXMESH = Path(sys.executable).parent / "fixmesh"
#: After the clients left the silent broker: the hello to the other one, its welcome, the resend of what
#: was not acknowledged and its writing by the receivers (module docstring).
MOVE_S = 2.0
#: From a broker's loss until the orders flow again: detection, then the move.
RESUME_BOUND_S = BROKER_SILENCE_S + MOVE_S
#: Sent at RATE, the orders last 20 s: long enough that the flow still runs at each loss, however slow the machine.
TOTAL = 6000
RATE = 300.0
LOSE_PRIMARY_AT = 800
PRIMARY_BACK_AT = 1800
LOSE_BACKUP_AT = 2800


def lose(gw: Gateway, program: str) -> float:
    """kill -9 of ``program`` (supervisord leaves it down: its host is gone); the monotonic time of the kill."""
    pid = gw.pid(program)
    assert pid, f"{program} is not running"
    os.kill(pid, signal.SIGKILL)
    return time.monotonic()


def sent(work: Path, sender: str) -> int:
    """How many orders the endpoint working in ``work`` has sent (its ClOrdID counter, beside its store)."""
    path = counter_path(work / "store", session_id_of("FIX.4.4", sender, "GATEWAY"))
    try:
        return int(path.read_text(encoding="ascii").split()[0]) - 1
    except (OSError, ValueError, IndexError):
        return 0


def resumed_after(children: Children, flows: list[tuple[Path, Path, str]], lost_s: float, what: str) -> float:
    """Seconds from ``lost_s`` until each receiver has every message its sender had sent at the loss, and 20 more.

    ``flows``: (the receiver's log, the sender's folder, the sender's SenderCompID) for each direction.
    """
    goals = [(log, sent(work, sender) + 20) for log, work, sender in flows]
    assert all(goal < TOTAL - 200 for _, goal in goals), f"the flow was nearly over at {what}: {goals}"
    wait_until(lambda: all(count_received(log) >= goal for log, goal in goals), 30,
               f"orders flowing again after {what}", children)
    return time.monotonic() - lost_s


def transitions(log_text: str) -> list[tuple[str, str]]:
    """(from, to) of every pair state change a broker logged, in order, over all its processes."""
    return re.findall(r"(?:primary|backup) broker \w+: (\w+) -> (\w+):", log_text)


def ctl(gw: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FIXMESH), "ctl", "--config", str(gw.topology), *args], capture_output=True,
                          text=True, timeout=30)


def test_orders_flow_exactly_once_over_the_loss_of_the_primarys_host_its_return_and_the_backups_loss(
        tmp_path: Path, children: Children) -> None:
    gw = Gateway(tmp_path / "gateway", children, backup_broker=True, no_restart=("broker", "broker-backup"),
                 held=("broker-backup",))
    gw.start()
    try:
        wait_until(lambda: ("starting", "active") in transitions(gw.log("broker")), 20, "the primary serving",
                   children)
        gw.ctl("start", "broker-backup")  # its host comes up
        wait_until(lambda: ("starting", "passive") in transitions(gw.log("broker-backup")), 20,
                   "the backup joining passive", children)
        venue_work, trader_work = tmp_path / "venue", tmp_path / "trader"
        logs = [venue_work / "received.log", trader_work / "received.log"]
        flows = [(logs[0], trader_work, "TRADER"), (logs[1], venue_work, "VENUE")]
        children.start("venue", endpoint_command("acceptor", gw.ports.venue, "VENUE", "GATEWAY", venue_work,
                                                 send=TOTAL, rate=RATE))
        children.start("trader", endpoint_command("initiator", gw.ports.handler, "TRADER", "GATEWAY", trader_work,
                                                  send=TOTAL, rate=RATE))
        wait_for_orders(children, LOSE_PRIMARY_AT, logs, timeout_s=60)
        lost_s = lose(gw, "broker")
        to_backup_s = resumed_after(children, flows, lost_s, "the primary's loss")
        print(f"orders flowing again {to_backup_s:.2f} s after the primary broker's loss")

        wait_for_orders(children, PRIMARY_BACK_AT, logs, timeout_s=60)
        gw.ctl("start", "broker")  # the primary's host is back
        wait_until(lambda: ("starting", "passive") in transitions(gw.log("broker")), 20,
                   "the primary back, passive", children)
        status = ctl(gw, "venue", "status")  # ctl tries the passive primary first, then the backup
        assert status.returncode == 0 and '"state": "CONNECTED"' in status.stdout, status.stderr

        wait_for_orders(children, LOSE_BACKUP_AT, logs, timeout_s=60)
        lost_s = lose(gw, "broker-backup")
        to_primary_s = resumed_after(children, flows, lost_s, "the backup's loss")
        print(f"orders flowing again {to_primary_s:.2f} s after the backup broker's loss")

        wait_for_orders(children, TOTAL, logs, timeout_s=120)
        for log in logs:
            problems = exactly_once_problems(read_received(log), TOTAL)
            assert not problems, f"{log}:\n" + "\n".join(problems[:20])
        assert to_backup_s < RESUME_BOUND_S and to_primary_s < RESUME_BOUND_S, (to_backup_s, to_primary_s)

        primary, backup = gw.log("broker"), gw.log("broker-backup")
        # The primary: active, lost; back passive; active again when the backup was lost. Never two actives.
        assert transitions(primary) == [("starting", "active"), ("starting", "passive"), ("passive", "active")]
        assert transitions(backup) == [("starting", "passive"), ("passive", "active")]
        assert "yields" not in primary + backup and "Traceback" not in primary + backup
        for name in ("client", "venue"):
            text = gw.log(name)
            assert "moving to the backup" in text and "Traceback" not in text, f"{name} did not follow"
        events = gw.events()
        beats = {(e["body"].get("role"), e["body"].get("state")) for e in events  # type: ignore[union-attr]
                 if e.get("topic") == "broker.heartbeat"}
        assert {("primary", "active"), ("backup", "active")} <= beats, "the monitor did not follow the brokers"
    finally:
        gw.stop()


def test_two_coordinators_one_commands_and_the_other_takes_over_when_it_is_lost(
        tmp_path: Path, children: Children) -> None:
    gw = Gateway(tmp_path / "gateway", children, coordinator=True, second_coordinator=True,
                 no_restart=("coordinator", "coordinator-b"))
    gw.start()
    try:
        def actives() -> list[str]:
            return [str(e["body"]["actor"]) for e in gw.events()  # type: ignore[index]
                    if e.get("topic") == "coordinator.active"]

        def leading() -> list[str]:
            """The coordinators that logged taking the lease. Their logs, not the monitor: the first
            ``coordinator.active`` may be published before the monitor, started alongside, subscribed."""
            return [name for name in ("coordinator", "coordinator-b")
                    if f"coordinator {name} holds the lease" in gw.log(name)]

        wait_until(lambda: len(leading()) == 1, 20, "one coordinator holding the lease", children)
        (leader,) = leading()
        other = "coordinator-b" if leader == "coordinator" else "coordinator"
        venue = children.start("venue", endpoint_command("acceptor", gw.ports.venue, "VENUE", "GATEWAY",
                                                         tmp_path / "venue", send=0, rate=100))
        trader = children.start("trader", endpoint_command("initiator", gw.ports.handler, "TRADER", "GATEWAY",
                                                           tmp_path / "trader", send=300, rate=100))
        wait_until(lambda: count_received(tmp_path / "venue" / "received.log") >= 50, 30,
                   "orders at the venue: the leader connected the Driven", children)

        lost_s = lose(gw, leader)
        wait_until(lambda: actives()[-1:] == [other], 20, f"{other} taking the lease over", children)
        takeover_s = time.monotonic() - lost_s
        print(f"{other} took the lease {takeover_s:.2f} s after {leader}'s loss")
        assert takeover_s < RESUME_BOUND_S + 2

        wait_until(lambda: count_received(tmp_path / "venue" / "received.log") >= 300, 30, "every order", children)
        assert trader.terminate() == 0  # the user logs out: the new leader logs the Driven out
        wait_until(lambda: "Logout received: end user's session ended" in venue.log_text(), 20,
                   "the venue logged out by the new leader", children)

        commanders = [str(e["body"]["actor"]) for e in gw.events()  # type: ignore[index]
                      if str(e.get("topic", "")).startswith("pair.")]
        assert commanders and commanders[0] == leader and commanders[-1] == other, commanders
        switches = sum(1 for a, b in zip(commanders, commanders[1:], strict=False) if a != b)
        assert switches == 1, f"commands from both coordinators interleaved: {commanders}"
        assert not exactly_once_problems(read_received(tmp_path / "venue" / "received.log"), 300)
        broker = gw.log("broker")
        assert "refused a command" not in broker, "the coordinator standing by sent a command"
        assert f"lease coordinator passed to {other}" in broker or f"actor {other} is up" in broker
        assert "coordinator.standby" not in [e.get("topic") for e in gw.events()]
    finally:
        gw.stop()
