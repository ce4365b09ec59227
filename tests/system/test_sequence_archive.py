"""A running Handler's sequence reset keeps the ended day's messages, readable with ``fixmesh log --archive``.

The gateway runs under supervisord with file stores; the trader logs on with
ResetSeqNumFlag=Y, trades, logs out, and logs on again the next "day" with
ResetSeqNumFlag=Y, which resets the Handler's sequence numbers. The first
day's ExecutionReports must then be in the Handler's archive, and only there.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop import Children, wait_until
from tests.system.gateway import FIXMESH, Gateway, start_venue_sim
from tests.system.raw_fix import RawInitiator

pytestmark = [pytest.mark.slow]

ORDERS = 5


@pytest.fixture
def gateway(tmp_path: Path, children: Children) -> Iterator[Gateway]:
    gw = Gateway(tmp_path / "gateway", children)
    start_venue_sim(children, gw.ports.venue, tmp_path / "venue-sim")
    with gw:
        yield gw


def fixmesh_log(gateway: Gateway, *args: str) -> list[str]:
    result = subprocess.run([str(FIXMESH), "log", "--config", str(gateway.topology), "client", *args],
                            capture_output=True, text=True, timeout=60, env=gateway.env())
    assert result.returncode in (0, 1), result.stderr
    return result.stdout.splitlines()


def trade_a_day(gateway: Gateway, day: str, children: Children) -> None:
    wait_until(lambda: "-> CONNECTED" in gateway.log("venue"), 30, "the Driven logged on to the venue", children)
    trader = RawInitiator(gateway.ports.handler)
    try:
        trader.logon()
        for n in range(ORDERS):
            trader.order(f"{day}-{n}")
        trader.wait_count(lambda: sum(m.get(39) == b"2" for _, m in trader.received("8")), ORDERS, 30,
                          f"the fills of {day}")
        trader.logout()
    finally:
        trader.close()


def test_a_logon_that_resets_the_sequence_archives_the_day_before(gateway: Gateway, children: Children) -> None:
    trade_a_day(gateway, "MON", children)
    assert fixmesh_log(gateway, "--archives") == [f"no archived sequence of 'client' in {gateway.dir / 'store'}"]

    trade_a_day(gateway, "TUE", children)
    wait_until(lambda: "the ended sequence's messages are kept in" in gateway.log("client"), 10,
               "the Handler's archive line", children)
    (listed,) = fixmesh_log(gateway, "--archives")
    name = listed.split()[0]
    assert "store generation" in listed, listed

    archived = fixmesh_log(gateway, "--archive", name, "--type", "ExecutionReport", "--direction", "out")
    fills = [line.split() for line in archived if "OrdStatus=2" in line.split()]  # no dictionary: no enum names
    filled = {field.removeprefix("ClOrdID=") for fields in fills for field in fields if field.startswith("ClOrdID=")}
    assert filled == {f"MON-{n}" for n in range(ORDERS)}, archived

    live = "\n".join(fixmesh_log(gateway, "--type", "ExecutionReport"))
    assert "MON-" not in live and all(f"TUE-{n}" in live for n in range(ORDERS)), live
