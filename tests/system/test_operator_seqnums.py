"""``fixmesh ctl SESSION set_seqnums`` on a session that trades: what may change while it is connected.

The gateway runs under supervisord; the venue and the trader are fixmesh
endpoints, orders flow. Lowering the Driven's next outgoing number would
send numbers the venue has had, and changing its expected number breaks the
venue's next message: both are refused with the reason, and nothing
changes. Raising the outgoing number is allowed: the venue asks for the gap
and is answered with a gap fill, the session stays up, and every order
arrives once.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop import Children, count_received, endpoint_command, exactly_once_problems, read_received, wait_until
from tests.system.gateway import FIXMESH, Gateway

pytestmark = [pytest.mark.slow]

ORDERS = 300


@pytest.fixture
def gateway(tmp_path: Path, children: Children) -> Iterator[Gateway]:
    with Gateway(tmp_path / "gateway", children) as gw:
        yield gw


def ctl(gateway: Gateway, *args: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run([str(FIXMESH), "ctl", "--config", str(gateway.topology), "venue", *args],
                          capture_output=True, text=True, timeout=60, env=gateway.env())
    return done.returncode, json.loads(done.stdout)


def test_while_connected_set_seqnums_may_only_raise_the_next_outgoing_number(
        tmp_path: Path, children: Children, gateway: Gateway) -> None:
    venue = children.start("venue", endpoint_command("acceptor", gateway.ports.venue, "VENUE", "GATEWAY",
                                                     tmp_path / "venue", send=0, rate=100.0))
    children.start("trader", endpoint_command("initiator", gateway.ports.handler, "TRADER", "GATEWAY",
                                              tmp_path / "trader", send=ORDERS, rate=100.0))
    venue_log = tmp_path / "venue" / "received.log"
    wait_until(lambda: count_received(venue_log) >= 50, 60, "50 orders at the venue", children)

    code, lowered = ctl(gateway, "set_seqnums", "--next-sender", "1")
    assert code == 1 and "which would send numbers the peer has had" in str(lowered.get("error")), lowered
    code, target = ctl(gateway, "set_seqnums", "--next-target", "2")
    assert code == 1 and "set only while the session is disconnected" in str(target.get("error")), target

    code, status = ctl(gateway, "status")
    assert code == 0, status
    raised = int(status["status"]["next_sender_seq"]) + 1000  # type: ignore[index]  # past what the flow sends meanwhile
    code, reply = ctl(gateway, "set_seqnums", "--next-sender", str(raised))
    assert code == 0 and reply["ok"] is True, reply

    wait_until(lambda: count_received(venue_log) >= ORDERS, 60, "every order at the venue", children)
    assert not exactly_once_problems(read_received(venue_log), ORDERS)
    text = venue.log_text()
    assert "Logout" not in text and "too low" not in text, text[-3000:]
    assert "ResendRequest" in text or "gap" in text.lower(), text[-3000:]
