"""A FIX message as large as a session takes goes through the gateway, and the orders after it follow.

The trader sends a NewOrderSingle of almost 1 MiB made of 170,000 small
fields (the gateway here validates against no dictionary), which is the
worst case for the size of its forward on the bus (msgpack pairs). Before
the bus's frame limit was raised above the largest such forward, the
broker dropped the Handler's connection for that frame, again at every
retransmit, silently, and every later order waited behind it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.interop import Children, wait_until
from tests.system.gateway import Gateway
from tests.system.raw_fix import RawInitiator, new_order

pytestmark = [pytest.mark.slow]

FIELDS = 170_000


def test_a_message_of_almost_a_mebibyte_is_forwarded_and_the_next_orders_follow(
        tmp_path: Path, children: Children) -> None:
    gateway = Gateway(tmp_path / "gateway", children)
    children.start("venue-sim", [sys.executable, "-m", "actors.sim.venue_sim", "--port", str(gateway.ports.venue)])
    gateway.start()
    trader = RawInitiator(gateway.ports.handler)
    try:
        trader.logon()
        big = new_order("BIG", trader.now_stamp()) + [(600 + i % 300, b"a") for i in range(FIELDS)]
        trader.send(b"D", big)
        trader.order("after-1")
        trader.order("after-2")

        def filled() -> list[str]:
            return [m.get_str(11) or "" for _, m in trader.received("8") if m.get_str(39) == "2"]

        wait_until(lambda: len(filled()) == 3, 30, "the large order and the two after it filled", children)
        assert filled() == ["BIG", "after-1", "after-2"]
        for name in ("client", "venue", "broker"):
            assert "ERROR" not in gateway.log(name), gateway.log(name)[-3000:]
    finally:
        trader.close()
        gateway.stop()
