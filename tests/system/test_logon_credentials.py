"""Logon credentials on the Handler, with real processes: who is refused, and who still gets on.

A whole gateway (broker, Handler, Driven, coordinator, monitor) runs under
supervisord with ``credentials`` on the Handler, its password in the
environment (``password_env``, inherited through supervisord). Traders are
fixmesh endpoints sending Username(553) and Password(554) from their own
environment. A refused Logon gets one text whatever failed; a squatter (a
silent connection, a wrong password retried every half second) neither
blocks the real trader nor takes its session over once it is logged on.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.gateway.credentials import REFUSAL_TEXT
from tests.interop import Child, Children, endpoint_command, wait_until
from tests.system.test_coordinator_flows import Flow

pytestmark = [pytest.mark.slow]

SECRET = "gateway-test-secret"
CREDENTIALS = ", credentials: {username: trader1, password_env: FIXMESH_TEST_CLIENT_PASSWORD}"


@pytest.fixture
def flow(tmp_path: Path, children: Children, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flow]:
    # supervisord and so the Handler inherit the test's environment.
    monkeypatch.setenv("FIXMESH_TEST_CLIENT_PASSWORD", SECRET)
    f = Flow(tmp_path, children, client_extra=CREDENTIALS)
    try:
        yield f
    finally:
        f.stop()


def trader(flow: Flow, monkeypatch: pytest.MonkeyPatch, name: str, password: str | None, *,
           send: int = 0) -> Child:
    """An endpoint with its own store (a refused one must not move the real trader's numbers).

    A refused endpoint does not give up: it reconnects every half second and
    offers the same Logon again, which makes it a persistent squatter.
    """
    extra = ["--username", "trader1"]
    if password is not None:
        monkeypatch.setenv("TRADER_PASSWORD", password)  # read by the child when it starts
        extra += ["--password-env", "TRADER_PASSWORD"]
    command = endpoint_command("initiator", flow.gw.ports.handler, "TRADER", "GATEWAY", flow.tmp / name,
                               send=send, rate=200.0, extra=extra)
    return flow.children.start(name, command)


def connections(child: Child) -> int:
    """How many times the endpoint got a TCP connection (each refusal or close is followed by another)."""
    return child.log_text().count("connected to 127.0.0.1")


def status(flow: Flow) -> dict[str, object]:
    fixmesh = Path(sys.executable).parent / "fixmesh"
    result = subprocess.run([str(fixmesh), "ctl", "--config", str(flow.gw.topology), "client", "status"],
                            capture_output=True, text=True, timeout=30, check=True)
    reply = json.loads(result.stdout)
    assert reply["ok"] is True, reply
    return dict(reply["status"])


def refusals(flow: Flow) -> list[str]:
    return [str(e["body"]["check"]) for e in flow.gw.events()  # type: ignore[index]
            if e.get("topic") == "session.client.logon_refused"]


def test_wrong_and_missing_passwords_are_refused_alike_and_the_right_one_trades(
        flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        venue = flow.venue(send=20)
        wrong = trader(flow, monkeypatch, "wrong", "guess", send=5)
        flow.wait_log(wrong, f"Logout received: {REFUSAL_TEXT}")
        wrong.terminate()
        missing = trader(flow, monkeypatch, "missing", None, send=5)
        flow.wait_log(missing, f"Logout received: {REFUSAL_TEXT}")
        missing.terminate()
        for refused in (wrong, missing):
            assert "sending orders" not in refused.log_text(), refused.report("a refused trader logged on")
        wait_until(lambda: {"wrong_password", "no_password"} <= set(refusals(flow)), 15, "both refusal events",
                   flow.children)
        handler_log = flow.gw.log("client")
        assert "Password(554) does not match" in handler_log and "no Password(554)" in handler_log
        assert "guess" not in handler_log and SECRET not in handler_log
        right = trader(flow, monkeypatch, "right", SECRET, send=20)
        wait_until(lambda: flow.received("venue") == 20 and flow.received("right") == 20, 30,
                   "20 orders each way", flow.children)
        assert status(flow)["logon_failures"] == len(refusals(flow)) >= 2
        assert right.terminate() == 0 and venue.exit_code is None
    finally:
        flow.stop()
    # Every file of the run (logs, event log, stores, journals, the traders' own stores) is free of both.
    leaks = [str(path) for path in flow.tmp.rglob("*") if path.is_file()
             and (SECRET.encode() in path.read_bytes() or b"554=guess" in path.read_bytes())]
    assert leaks == [], f"a password is written in {leaks}"


def test_squatters_do_not_block_the_real_trader_nor_take_its_session(
        flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    silent = socket.create_connection(("127.0.0.1", flow.gw.ports.handler), timeout=5)
    try:
        flow.venue()
        guesser = trader(flow, monkeypatch, "guesser", "guess", send=5)
        wait_until(lambda: len(refusals(flow)) >= 2, 20, "the guesser refused twice", flow.children)
        right = trader(flow, monkeypatch, "right", SECRET, send=300)
        wait_until(lambda: flow.received("venue") >= 100, 30, "the real trader's orders at the venue",
                   flow.children)
        # Logged on: a second connection with the right credentials is refused and changes nothing.
        intruder = trader(flow, monkeypatch, "intruder", SECRET, send=5)
        wait_until(lambda: connections(intruder) >= 3, 20, "the intruder's connections to be closed",
                   flow.children)
        wait_until(lambda: flow.received("venue") >= 300, 60, "all the real trader's orders", flow.children)
        assert "Logout received" not in right.log_text(), right.report("the real trader was logged out")
        for squatter in (guesser, intruder):
            assert "sending orders" not in squatter.log_text(), squatter.report("a squatter logged on")
        assert set(refusals(flow)) == {"wrong_password"}, "the intruder's Logon reached the credentials check"
        assert "session client is already connected" in flow.gw.log("client"), "no second connection was closed"
        assert guesser.terminate() == 0 and intruder.terminate() == 0 and right.terminate() == 0
    finally:
        silent.close()
        flow.stop()
