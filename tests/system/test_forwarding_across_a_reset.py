"""A Driven whose sequence was reset, then restarted, still accepts its Handler's next forward.

The venue session resets its numbers at every Logon (``reset_on_logon``, as
venues that start each day at 1 do); the trader's session does not, so the
Handler's forwards go on in one chain. The Driven logs on again (a reset),
is killed before it forwarded anything in the new sequence, and supervisord
starts it again: its forwarding journal must still know the last forward it
accepted, or the Handler's next one (which names it as ``prev``) is never
accepted and the trader's orders stop, silently.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop import Children, wait_until
from tests.system.gateway import FIXMESH, Gateway, start_venue_sim
from tests.system.raw_fix import RawInitiator

pytestmark = [pytest.mark.slow]


@pytest.fixture
def gateway(tmp_path: Path, children: Children) -> Iterator[Gateway]:
    gw = Gateway(tmp_path / "gateway", children, venue_extra=", reset_on_logon: true")
    start_venue_sim(children, gw.ports.venue, tmp_path / "venue-sim")
    with gw:
        yield gw


def venue_status(gateway: Gateway) -> dict[str, object]:
    done = subprocess.run([str(FIXMESH), "ctl", "--config", str(gateway.topology), "venue", "status"],
                          capture_output=True, text=True, timeout=60, env=gateway.env())
    reply = json.loads(done.stdout) if done.stdout.strip() else {}
    return dict(reply.get("status", {}))


def ctl(gateway: Gateway, command: str) -> None:
    done = subprocess.run([str(FIXMESH), "ctl", "--config", str(gateway.topology), "venue", command],
                          capture_output=True, text=True, timeout=60, env=gateway.env())
    assert done.returncode == 0, done.stdout + done.stderr


def filled(trader: RawInitiator) -> set[str]:
    return {m.get_str(11) or "" for _, m in trader.received("8") if m.get(39) == b"2"}


def test_the_handlers_chain_goes_on_after_the_driven_was_reset_and_restarted(
        gateway: Gateway, children: Children) -> None:
    wait_until(lambda: venue_status(gateway).get("state") == "CONNECTED", 30, "the Driven logged on", children)
    trader = RawInitiator(gateway.ports.handler)
    try:
        trader.logon()
        for n in range(5):
            trader.order(f"DAY1-{n}")
        trader.wait_count(lambda: len(filled(trader)), 5, 30, "the first orders filled")

        ctl(gateway, "disconnect")
        wait_until(lambda: venue_status(gateway).get("state") != "CONNECTED", 30, "the Driven logged out", children)
        ctl(gateway, "connect")  # reset_on_logon: a new sequence
        wait_until(lambda: venue_status(gateway).get("state") == "CONNECTED"
                   and venue_status(gateway).get("next_sender_seq") == 2, 30, "the Driven logged on at 1", children)
        pid = gateway.pid("venue")
        os.kill(pid, signal.SIGKILL)  # before it forwarded anything in the new sequence
        wait_until(lambda: gateway.pid("venue") not in (0, pid) and venue_status(gateway).get("state") == "CONNECTED",
                   60, "the Driven restarted and logged on", children)

        for n in range(5):
            trader.order(f"DAY2-{n}")
        trader.wait_count(lambda: len(filled(trader)), 10, 30, "the orders after the restart filled")
        assert filled(trader) == {f"DAY{d}-{n}" for d in (1, 2) for n in range(5)}
        fills = [m.get_str(11) for _, m in trader.received("8") if m.get(39) == b"2"]
        assert len(fills) == len(set(fills)) == 10, fills  # none twice
    finally:
        trader.close()
