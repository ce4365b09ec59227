"""fixmesh against QuickFIX 1.16 (its Python bindings), FIX.4.4, both roles, over real TCP.

Each test moves 10,000 NewOrderSingle each way and breaks the connection in
the middle: fixmesh is killed with SIGKILL and restarted on its FileStore,
and in the second test QuickFIX also drops the connection itself, so that
fixmesh's initiator has to reconnect on its own. Both sides keep creating
orders while they are apart; after the next Logon each side must find the
gap and fill it with a ResendRequest. In the end each received log must hold
ClOrdIDs 1..10000 exactly once, in order, with increasing MsgSeqNums: a
PossDup resend of something already delivered must not be delivered again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import quickfix as _quickfix  # noqa: F401  (a missing QuickFIX fails the suite, never skips it)

from tests.interop import (
    Child,
    Children,
    endpoint_command,
    exactly_once_problems,
    free_port,
    read_received,
    spec_file,
    wait_for_orders,
    wait_listening,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]

TOTAL = 10_000
#: Orders per second each way: 10,000 take about 4 s, long enough to break the flow in the middle.
RATE_PER_S = 2500
#: QuickFIX drops the connection once it has received this many orders (fixmesh initiator test).
DROP_AT = 2000
#: fixmesh is killed once both sides have received this many orders.
KILL_AT = 3000
FIXMESH, QUICKFIX = "FM", "QF"


def quickfix_command(role: str, port: int, work: Path, *, disconnect_after: int = 0) -> list[str]:
    command = [
        sys.executable, "-m", "tests.interop.qf_peer", "--role", role, "--port", str(port),
        "--sender", QUICKFIX, "--target", FIXMESH, "--work-dir", str(work),
        "--received-log", str(work / "received.log"), "--send", str(TOTAL), "--rate", str(RATE_PER_S),
        "--disconnect-after", str(disconnect_after),
    ]
    dictionary = spec_file("FIX44.xml")
    if dictionary is not None:
        command += ["--data-dictionary", str(dictionary)]
    return command


def finish(children: Children, fixmesh: Child, quickfix: Child, fixmesh_log: Path, quickfix_log: Path) -> None:
    """Wait for every order to arrive, stop both with SIGTERM, then check both received logs."""
    wait_for_orders(children, TOTAL, [fixmesh_log, quickfix_log])
    assert fixmesh.terminate() == 0, fixmesh.report("fixmesh did not exit 0 on SIGTERM")
    assert quickfix.terminate() == 0, quickfix.report("QuickFIX peer did not exit 0 on SIGTERM")
    for name, log in (("fixmesh", fixmesh_log), ("QuickFIX", quickfix_log)):
        problems = exactly_once_problems(read_received(log), TOTAL)
        assert not problems, f"{name}'s received log {log}:\n" + "\n".join(problems)


def test_quickfix_initiator_fixmesh_acceptor(tmp_path: Path, children: Children) -> None:
    port = free_port()
    fixmesh_work, quickfix_work = tmp_path / "fixmesh", tmp_path / "quickfix"
    fixmesh_log, quickfix_log = fixmesh_work / "received.log", quickfix_work / "received.log"
    command = endpoint_command("acceptor", port, FIXMESH, QUICKFIX, fixmesh_work, send=TOTAL, rate=RATE_PER_S)
    fixmesh = children.start("fixmesh-acceptor", command)
    wait_listening(port, fixmesh, children)
    quickfix = children.start("quickfix-initiator", quickfix_command("initiator", port, quickfix_work))

    # Counted on what fixmesh received: QuickFIX is then mid-stream whatever pace fixmesh's own sending has.
    wait_for_orders(children, KILL_AT, [fixmesh_log])
    fixmesh.kill()
    restarted = children.start("fixmesh-acceptor", command)
    finish(children, restarted, quickfix, fixmesh_log, quickfix_log)

    # QuickFIX kept sending while fixmesh was down: fixmesh must have asked for those and got them as PossDup.
    assert "sent ResendRequest" in restarted.log_text(), restarted.report("no ResendRequest after the restart")
    assert any(entry.possdup for entry in read_received(fixmesh_log))


def test_fixmesh_initiator_quickfix_acceptor(tmp_path: Path, children: Children) -> None:
    port = free_port()
    fixmesh_work, quickfix_work = tmp_path / "fixmesh", tmp_path / "quickfix"
    fixmesh_log, quickfix_log = fixmesh_work / "received.log", quickfix_work / "received.log"
    qf_command = quickfix_command("acceptor", port, quickfix_work, disconnect_after=DROP_AT)
    quickfix = children.start("quickfix-acceptor", qf_command)
    wait_listening(port, quickfix, children)
    command = endpoint_command("initiator", port, FIXMESH, QUICKFIX, fixmesh_work, send=TOTAL, rate=RATE_PER_S)
    fixmesh = children.start("fixmesh-initiator", command)

    # Counted on what QuickFIX received: fixmesh is then mid-stream whatever pace QuickFIX's own sending has.
    wait_for_orders(children, KILL_AT, [quickfix_log])
    first_run = fixmesh.log_text()
    assert "forced disconnect" in quickfix.log_text(), quickfix.report("QuickFIX did not drop the connection")
    assert "RECONNECTING -> CONNECTING" in first_run, fixmesh.report("fixmesh did not reconnect by itself")
    assert "sent ResendRequest" in first_run, fixmesh.report("no ResendRequest after the reconnect")
    fixmesh.kill()
    restarted = children.start("fixmesh-initiator", command)
    finish(children, restarted, quickfix, fixmesh_log, quickfix_log)
    assert any(entry.possdup for entry in read_received(quickfix_log)), "QuickFIX never received a resend"


#: FIXT.1.1 orders each way; no kill: this checks the FIXT Logon, DefaultApplVerID and both dictionaries.
FIXT_TOTAL = 2000


def test_quickfix_initiator_fixmesh_acceptor_fixt11_fix50sp2(tmp_path: Path, children: Children) -> None:
    transport, app = spec_file("FIXT11.xml"), spec_file("FIX50SP2.xml")
    assert transport is not None and app is not None, "FIXT11.xml / FIX50SP2.xml missing from the conformance spec"
    port = free_port()
    fixmesh_work, quickfix_work = tmp_path / "fixmesh", tmp_path / "quickfix"
    fixt = ["--begin-string", "FIXT.1.1", "--default-appl-ver-id", "9",
            "--data-dictionary", str(app), "--transport-dictionary", str(transport)]
    command = endpoint_command("acceptor", port, FIXMESH, QUICKFIX, fixmesh_work, send=FIXT_TOTAL,
                               rate=RATE_PER_S, extra=fixt)
    fixmesh = children.start("fixmesh-acceptor", command)
    wait_listening(port, fixmesh, children)
    qf_command = [
        sys.executable, "-m", "tests.interop.qf_peer", "--role", "initiator", "--port", str(port),
        "--sender", QUICKFIX, "--target", FIXMESH, "--work-dir", str(quickfix_work),
        "--received-log", str(quickfix_work / "received.log"), "--send", str(FIXT_TOTAL), "--rate", str(RATE_PER_S),
        "--begin-string", "FIXT.1.1", "--default-appl-ver-id", "FIX.5.0SP2",
        "--data-dictionary", str(app), "--transport-dictionary", str(transport),
    ]
    quickfix = children.start("quickfix-initiator", qf_command)
    fixmesh_log, quickfix_log = fixmesh_work / "received.log", quickfix_work / "received.log"
    wait_for_orders(children, FIXT_TOTAL, [fixmesh_log, quickfix_log])
    assert fixmesh.terminate() == 0, fixmesh.report("fixmesh did not exit 0 on SIGTERM")
    assert quickfix.terminate() == 0, quickfix.report("QuickFIX peer did not exit 0 on SIGTERM")
    for name, log in (("fixmesh", fixmesh_log), ("QuickFIX", quickfix_log)):
        problems = exactly_once_problems(read_received(log), FIXT_TOTAL)
        assert not problems, f"{name}'s received log {log}:\n" + "\n".join(problems)
    assert "rejected" not in fixmesh.log_text(), fixmesh.report("fixmesh rejected a FIXT message")
