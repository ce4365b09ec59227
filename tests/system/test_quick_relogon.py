"""A user who logs out and straight back on trades again, fifty times in a row.

Broker, Handler, Driven, coordinator and monitor run under supervisord
(``tests.system.gateway``); the venue is fixmesh's venue simulator. Each
cycle is two log-ons back to back, a few milliseconds apart:

* a flap: a raw socket logs on and logs out at once, so the coordinator tells
  the Driven to connect and, a moment later, to disconnect while it is still
  connecting (the interleaving that used to leave the Driven offline with the
  user logged on, 20 s and more);
* a trade: fixmesh's trader client, run in this process, logs on, sends one
  order, and must see it FILLED within its timeout, then logs out.
"""

from __future__ import annotations

import io
import socket
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from actors.fix.codec import Framer, encode, parse
from actors.fix.timefmt import TimestampFormatter
from actors.sim import trader_client
from tests.interop import Children, wait_until
from tests.system.test_coordinator_flows import Flow

pytestmark = [pytest.mark.slow]

CYCLES = 50
#: Each cycle's own bound (the client gives up when its order is not final by then).
CYCLE_TIMEOUT_S = 10.0
#: The whole run's bound: far above 50 cycles of about 0.1 s, far below the test's timeout.
RUN_TIMEOUT_S = 150.0


def flap(port: int) -> None:
    """Log on (resetting both sequence numbers) and log out at once, over a raw socket."""
    stamp = TimestampFormatter(3)

    def message(msg_type: bytes, seq: int, body: list[tuple[int, bytes]]) -> bytes:
        header = [(34, b"%d" % seq), (49, b"TRADER"), (52, stamp.format(time.time_ns())), (56, b"GATEWAY")]
        return encode(b"FIX.4.4", msg_type, header, body)

    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
        sock.sendall(message(b"A", 1, [(98, b"0"), (108, b"30"), (141, b"Y")]))
        framer = Framer()
        deadline = time.monotonic() + 5.0
        answered = False
        while not answered and time.monotonic() < deadline:
            framer.feed(sock.recv(65536))
            while not answered and (frame := framer.next_frame()) is not None:
                answered = bool(frame.data) and parse(frame.data).msg_type == "A"
        assert answered, "no Logon answer from the Handler within 5 s"
        sock.sendall(message(b"5", 2, []))


def test_fifty_quick_relogons_all_trade(tmp_path: Path, children: Children) -> None:
    flow = Flow(tmp_path, children, venue_extra=", reconnect_interval: 0.5")
    try:
        port = flow.gw.ports.venue
        children.start("venue-sim", [sys.executable, "-m", "actors.sim.venue_sim", "--port", str(port),
                                     "--fill-delay-ms", "0", "--store-dir", str(tmp_path / "venue-sim")])
        wait_until(lambda: f"listening on 127.0.0.1:{port}" in children.started[-1].log_text(), 30,
                   "the venue simulator listening", children)
        started = time.monotonic()
        cycle_s: list[float] = []
        for cycle in range(1, CYCLES + 1):
            assert time.monotonic() - started < RUN_TIMEOUT_S, f"only {cycle - 1} cycles in {RUN_TIMEOUT_S:g} s"
            out = io.StringIO()
            begun = time.monotonic()
            flap(flow.gw.ports.handler)
            with redirect_stdout(out):  # no --store-dir: the client resets the sequence numbers at its Logon too
                code = trader_client.main(["--port", str(flow.gw.ports.handler), "--timeout-s", str(CYCLE_TIMEOUT_S),
                                           "--log-level", "WARNING", f"buy 10 MSFT@{100 + cycle}"])
            cycle_s.append(time.monotonic() - begun)
            text = out.getvalue()
            assert code == 0 and "FILLED" in text, f"cycle {cycle}: exit {code}\n{text}\n{flow.gw.log('venue')[-3000:]}"
        cycle_s.sort()
        print(f"{CYCLES} flap + log-on/order/log-out cycles: median {cycle_s[CYCLES // 2] * 1000:.0f} ms, "
              f"slowest {cycle_s[-1] * 1000:.0f} ms")
        venue_connects = [e for e in flow.gw.events() if e.get("topic") == "session.venue.state"
                          and e["body"]["new"] == "CONNECTED"]  # type: ignore[index]
        assert len(venue_connects) >= CYCLES, "the Driven logged on to the venue for every trade"
    finally:
        flow.stop()
