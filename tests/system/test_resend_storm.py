"""A ResendRequest storm against a Handler under a real supervisord: answered once per interval, and reported.

Broker, Handler ``client`` (``resend_storm_interval: 1``), Driven ``venue``
and a JSON monitor run under supervisord (``tests.system.gateway``); the
trader is a raw FIX initiator in this process (``tests.system.raw_fix``).
The trader asks for the same range ten times in a row: the Handler answers
the first (a GapFill over its Logon), ignores the nine repeats, and the
monitor shows one ``session.client.resend_storm`` event, published on the
bus like every session event; once the interval has passed the same request
is answered again. A TestRequest after each volley proves that the Handler
had handled every request before the count (it answers in order).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.interop import Children, wait_until
from tests.system.gateway import Gateway
from tests.system.raw_fix import RawInitiator

pytestmark = [pytest.mark.slow]

INTERVAL_S = 1.0
REPEATS = 10


def gap_fills(trader: RawInitiator) -> int:
    return len(trader.received("4"))


def sync(trader: RawInitiator, test_id: str) -> None:
    """Everything the Handler answers to what was sent before arrives before this TestRequest's Heartbeat."""
    trader.send(b"1", [(112, test_id.encode())])
    trader.wait_for(lambda m: m.msg_type == "0" and m.get_str(112) == test_id, 10, f"the Heartbeat {test_id}")


def storm_events(gw: Gateway) -> list[dict[str, object]]:
    return [body for e in gw.events() if e.get("topic") == "session.client.resend_storm"
            and isinstance(body := e.get("body"), dict)]


def test_a_repeated_resend_request_is_answered_once_per_interval_and_published(
        tmp_path: Path, children: Children) -> None:
    gw = Gateway(tmp_path / "gateway", children, client_extra=f", resend_storm_interval: {INTERVAL_S:g}")
    gw.start()
    trader = RawInitiator(gw.ports.handler)
    try:
        trader.logon()
        volley_started = time.monotonic()
        for _ in range(REPEATS):
            trader.send(b"2", [(7, b"1"), (16, b"0")])
        sync(trader, "after-volley")
        assert time.monotonic() - volley_started < INTERVAL_S, "the volley took longer than the interval"
        assert gap_fills(trader) == 1, "ten identical ResendRequests within the interval: one answer"
        [fill] = [m for _, m in trader.received("4")]
        assert (fill.seq_num, fill.get_int(36), fill.get_str(43)) == (1, 2, "Y"), "a GapFill over the Logon"
        wait_until(lambda: bool(storm_events(gw)), 15, "the resend_storm event on the bus", children)
        [event] = storm_events(gw)
        assert "ResendRequest 1..0 repeated" in str(event.get("text")), event
        assert "resend_storm: ResendRequest 1..0 repeated" in gw.log("client")

        time.sleep(max(0.0, INTERVAL_S - (time.monotonic() - volley_started)) + 0.2)
        trader.send(b"2", [(7, b"1"), (16, b"0")])
        sync(trader, "after-interval")
        assert gap_fills(trader) == 2, "after the interval the same request is answered again"
        trader.logout()
    finally:
        trader.close()
        gw.stop()
