"""2,000 idle connections against a Handler that may open 1,024 files: it stays up and a real trader still trades.

The gateway (broker, Handler, Driven, monitor) runs under supervisord
(``tests.system.gateway``), the Handler under ``ulimit -n 1024``; the venue
is fixmesh's venue simulator. The test raises its own descriptor limit and
opens 2,000 connections to the Handler's port that never send a byte, then
fixmesh's trader client logs on through the crowd, sends an order and must
see it filled.

* With the default ``max_pending_connections`` (256) the Handler never runs
  short of descriptors: each connection beyond 256 closes the one that has
  waited longest.
* With ``max_pending_connections`` above the descriptor limit the Handler
  runs out: it stops accepting for a moment at a time (keeping a reserve of
  descriptors for its own files) until the logon timeout has closed the idle
  connections, and says so in its log.

Either way the process is the same one at the end (no restart by
supervisord) and the trader's order is filled.
"""

from __future__ import annotations

import io
import resource
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from actors.sim import trader_client
from tests.interop import Children, wait_until
from tests.system.gateway import Gateway

pytestmark = [pytest.mark.slow]

HOST = "127.0.0.1"
IDLE = 2000
NOFILE = 1024
LOGON_TIMEOUT_S = 5
IDLE_BATCH = 32
IDLE_PAUSE_S = 0.01


@pytest.fixture
def many_descriptors() -> Iterator[None]:
    """This process may hold the idle connections (raised up to the hard limit, and back afterwards)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = IDLE + 512
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard descriptor limit {hard} is below {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_idle(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that never send a byte, within about a second.

    Connects are non-blocking so that a full queue does not stall the test,
    and paced so that the listener's queue (64) rarely overflows: a dropped
    connect would only come back after the kernel's one-second retry, and the
    crowd would never be all there at once.
    """
    socks = []
    for n in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((HOST, port))
        socks.append(sock)
        if n % IDLE_BATCH == IDLE_BATCH - 1:
            time.sleep(IDLE_PAUSE_S)
    return socks


def descriptor_limit_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no descriptor limit in /proc/{pid}/limits")


def run(tmp_path: Path, children: Children, client_extra: str, expected_log: str) -> Gateway:
    gateway = Gateway(tmp_path / "gateway", children, client_nofile=NOFILE,
                      client_extra=f", logon_timeout: {LOGON_TIMEOUT_S}{client_extra}")
    venue_port = gateway.ports.venue
    children.start("venue-sim", [sys.executable, "-m", "actors.sim.venue_sim", "--port", str(venue_port)])
    wait_until(lambda: f"listening on {HOST}:{venue_port}" in children.started[-1].log_text(), 30,
               "the venue simulator listening", children)
    gateway.start()
    idle: list[socket.socket] = []
    try:
        wait_until(lambda: "-> CONNECTED" in gateway.log("venue"), 30, "the Driven logged on to the venue", children)
        pid = gateway.pid("client")
        assert descriptor_limit_of(pid) == NOFILE

        idle = open_idle(gateway.ports.handler, IDLE)
        wait_until(lambda: expected_log in gateway.log("client"), 60, f"the Handler to log {expected_log!r}",
                   children)

        out = io.StringIO()
        started = time.monotonic()
        with redirect_stdout(out):  # no --store-dir: the trader's Logon resets the Handler's store (files opened)
            code = trader_client.main(["--port", str(gateway.ports.handler), "--timeout-s", "60", "--max-tries", "30",
                                       "--connect-timeout", "10", "--log-level", "WARNING", "buy 10 MSFT@100"])
        took_s = time.monotonic() - started
        assert code == 0 and "FILLED" in out.getvalue(), \
            f"exit {code} after {took_s:.1f} s\n{out.getvalue()}\n{gateway.log('client')[-4000:]}"

        assert gateway.pid("client") == pid and gateway.state("client") == "RUNNING", \
            f"the Handler was restarted\n{gateway.log('client')[-4000:]}"
        log = gateway.log("client")
        assert "Traceback" not in log and "unexpected error" not in log, log[-4000:]
        print(f"with {IDLE} idle connections the trader logged on and had its order filled in {took_s:.1f} s")
    finally:
        for sock in idle:
            sock.close()
        gateway.stop()
    return gateway


def test_two_thousand_idle_connections_leave_the_handler_up_and_trading(tmp_path: Path, children: Children,
                                                                         many_descriptors: None) -> None:
    gateway = run(tmp_path, children, "", "(max_pending_connections): closing the one waiting longest")
    assert "out of file descriptors" not in gateway.log("client"), "256 pending connections ran out of descriptors"


def test_with_a_pending_limit_above_the_descriptor_limit_the_handler_runs_out_and_carries_on(
        tmp_path: Path, children: Children, many_descriptors: None) -> None:
    gateway = run(tmp_path, children, ", max_pending_connections: 5000", "out of file descriptors")
    log = gateway.log("client")
    assert "refusing new connections for 0.1 s" in log
    assert f"no Logon within {LOGON_TIMEOUT_S} s" in log, "the idle connections were not closed by the logon timeout"
