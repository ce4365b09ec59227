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
from tests.system.gateway import Gateway, start_venue_sim
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


def test_a_venue_business_reject_names_the_traders_own_message(tmp_path: Path, children: Children) -> None:
    """The venue's BusinessMessageReject refers to the Driven's MsgSeqNum; the trader gets its own number."""
    gw = Gateway(tmp_path / "gateway", children)
    start_venue_sim(children, gw.ports.venue, tmp_path / "venue-sim")  # a BusinessMessageReject without ClOrdID
    with gw:
        wait_until(lambda: "-> CONNECTED" in gw.log("venue"), 30, "the Driven logged on", children)
        trader = RawInitiator(gw.ports.handler)
        try:
            trader.logon()
            for n in range(3):  # session messages the Driven never sends: the two sessions' numbers drift apart
                trader.send(b"1", [(112, b"ping-%d" % n)])
            trader.wait_count(lambda: len(trader.received("0")), 3, 20, "the answers to the TestRequests")
            trader.order("FILL-1")
            trader.wait_count(lambda: len(trader.received("8")), 1, 20, "the first report")
            no_id = [(tag, value) for tag, value in new_order("x", trader.now_stamp()) if tag != 11]
            seq, _ = trader.send(b"D", no_id)
            reject = trader.wait_for(lambda m: m.msg_type == "j", 20, "the venue's BusinessMessageReject")
            assert reject.get_int(45) == seq, (reject.get_int(45), seq)
            assert reject.get(372) == b"D" and b"ClOrdID (11) missing" in (reject.get(58) or b"")
        finally:
            trader.close()
