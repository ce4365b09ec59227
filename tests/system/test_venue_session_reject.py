"""An order the venue refuses with a session-level Reject reaches its trader as a rejected order.

The Handler takes orders without a data dictionary; the venue (a fixmesh
endpoint) validates against FIX44.xml and answers an order without Side
(54) with a Reject (35=3, RefTagID 54). The venue will never send an
ExecutionReport for it, so the Driven turns the Reject into one for the
trader (OrdStatus=Rejected, the venue's words in Text): without it the
order would stay pending at the trader for good.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop import Children, count_received, endpoint_command, wait_until
from tests.system.gateway import Gateway
from tests.system.raw_fix import RawInitiator, new_order

pytestmark = [pytest.mark.slow]


def test_a_venue_reject_of_an_order_reaches_the_trader_as_a_rejected_order(
        tmp_path: Path, children: Children) -> None:
    gw = Gateway(tmp_path / "gateway", children)
    venue = children.start("venue", endpoint_command("acceptor", gw.ports.venue, "VENUE", "GATEWAY",
                                                     tmp_path / "venue", send=0, rate=0))
    wait_until(lambda: f"listening on 127.0.0.1:{gw.ports.venue}" in venue.log_text(), 30, "the venue listening",
               children)
    with gw:
        wait_until(lambda: "-> CONNECTED" in gw.log("venue"), 30, "the Driven logged on", children)
        trader = RawInitiator(gw.ports.handler)
        try:
            trader.logon()
            no_side = [(tag, value) for tag, value in new_order("NO-SIDE", trader.now_stamp()) if tag != 54]
            trader.send(b"D", no_side)
            report = trader.wait_for(lambda m: m.msg_type == "8" and m.get(11) == b"NO-SIDE", 20,
                                     "the rejection of the order without Side")
            assert (report.get(39), report.get(150)) == (b"8", b"8"), report
            text = report.get_str(58) or ""
            assert text.startswith("rejected by VENUE: ") and "tag 54" in text, text
            wait_until(lambda: any(e.get("topic") == "session.venue.rejected" and "NO-SIDE" in str(e)
                                   for e in gw.events()), 10, "the rejection published", children)

            trader.order("GOOD-1")  # the session goes on
            wait_until(lambda: count_received(tmp_path / "venue" / "received.log") >= 1, 20,
                       "the next order at the venue", children)
        finally:
            trader.close()
