"""Who may try to log on to a Handler, with real processes: the address allowlist and the lock-out of guessers.

The gateway of ``test_logon_credentials`` (credentials on the Handler) with
``allow_from`` or ``lockout`` added. Loopback has many addresses: a socket
bound to 127.0.0.2 is "another host" as far as the allowlist can tell.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from actors.fix.codec import encode
from actors.gateway.credentials import REFUSAL_TEXT
from tests.interop import Children, wait_until
from tests.system.test_coordinator_flows import Flow
from tests.system.test_logon_credentials import CREDENTIALS, SECRET, refusals, trader

pytestmark = [pytest.mark.slow]


def start(tmp_path: Path, children: Children, monkeypatch: pytest.MonkeyPatch, extra: str) -> Flow:
    monkeypatch.setenv("FIXMESH_TEST_CLIENT_PASSWORD", SECRET)
    return Flow(tmp_path, children, client_extra=CREDENTIALS + extra)


def logon_from(source: str, port: int) -> bytes:
    """Send a well-formed Logon with the right password from ``source``; what came back before the close."""
    now = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.000").encode()
    logon = encode(b"FIX.4.4", b"A", [(34, b"1"), (49, b"TRADER"), (52, now), (56, b"GATEWAY")],
                   [(98, b"0"), (108, b"30"), (141, b"Y"), (553, b"trader1"), (554, SECRET.encode())])
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as sock:
        sock.sendall(logon)
        received = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received += chunk
            if b"\x0135=A\x01" in received:
                break
        return received


def test_an_address_outside_allow_from_is_closed_unanswered_and_an_allowed_one_trades(
        tmp_path: Path, children: Children, monkeypatch: pytest.MonkeyPatch) -> None:
    flow = start(tmp_path, children, monkeypatch, ", allow_from: [127.0.0.1/32, 198.18.0.0/15]")
    try:
        flow.venue()
        assert logon_from("127.0.0.2", flow.gw.ports.handler) == b"", "a stranger's Logon was answered"
        wait_until(lambda: "127.0.0.2 is not in the session's allow_from list" in flow.gw.log("client"), 10,
                   "the refusal in the Handler's log", flow.children)
        right = trader(flow, monkeypatch, "right", SECRET, send=5)
        wait_until(lambda: flow.received("venue") == 5, 30, "the allowed trader's orders", flow.children)
        assert right.terminate() == 0
    finally:
        flow.stop()


def test_a_guessing_address_is_locked_out_then_let_in_again(
        tmp_path: Path, children: Children, monkeypatch: pytest.MonkeyPatch) -> None:
    flow = start(tmp_path, children, monkeypatch, ", lockout: {max_failures: 3, window: 60, duration: 6}")
    try:
        flow.venue()
        guesser = trader(flow, monkeypatch, "guesser", "guess")  # retries every half second
        wait_until(lambda: len(refusals(flow)) >= 3, 20, "three refused Logons", flow.children)
        locked = [e["body"] for e in flow.gw.events() if e.get("topic") == "session.client.logon_refused"]
        assert [b["locked_out_s"] for b in locked[:3]] == [0.0, 0.0, 6.0], locked  # type: ignore[index]
        assert all(b["address"] == "127.0.0.1" for b in locked[:3]), locked  # type: ignore[index]
        guesser.terminate()
        # Locked: even the right password from that address is closed before its Logon is read.
        assert logon_from("127.0.0.1", flow.gw.ports.handler) == b""
        # The Handler's output reaches its log file through supervisord, a moment after the socket closed.
        wait_until(lambda: "refused for session client: address 127.0.0.1 is locked out for" in flow.gw.log("client"),
                   10, "the locked-out connection's refusal in the Handler's log", flow.children)
        log = flow.gw.log("client")
        assert "127.0.0.1 locked out for 6 s" in log, "the lock-out is not logged"
        assert REFUSAL_TEXT not in log.split("is locked out for")[-1]
        assert len(refusals(flow)) == 3, "a locked-out connection reached the credentials check"
        # Another address is not affected, and the lock ends.
        assert b"\x0135=A\x01" in logon_from("127.0.0.2", flow.gw.ports.handler)
        for _ in range(15):  # the lock lasts 6 s from the third refusal
            time.sleep(1.0)
            if b"\x0135=A\x01" in logon_from("127.0.0.1", flow.gw.ports.handler):
                break
        else:
            pytest.fail("the address was still locked out 15 s later")
    finally:
        flow.stop()
