"""Two sessions with one pair of CompIDs, told apart by the session qualifier in the Logon.

Both Handlers share one port; the listener process hands each connection to
the session its Logon's qualifier (tag 9012) names. Each desk's orders reach
its own venue session only; an unknown qualifier is refused.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.interop import (
    Children,
    count_received,
    endpoint_command,
    exactly_once_problems,
    free_ports,
    read_received,
    wait_listening,
    wait_until,
)

pytestmark = [pytest.mark.slow]

TOPOLOGY = """\
broker: {{router: "tcp://127.0.0.1:{r}", xsub: "tcp://127.0.0.1:{x}", xpub: "tcp://127.0.0.1:{p}"}}
runtime_dir: run
defaults:
  store: {{path: store}}
sessions:
  desk1: {{role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER, session_qualifier: desk1, port: {shared}}}
  desk2: {{role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER, session_qualifier: desk2, port: {shared}}}
  venue1: {{role: driven, sender_comp_id: GW1, target_comp_id: VENUE, port: {v1}, connect_on_start: true}}
  venue2: {{role: driven, sender_comp_id: GW2, target_comp_id: VENUE, port: {v2}, connect_on_start: true}}
pairs:
  - {{handler: desk1, driven: venue1}}
  - {{handler: desk2, driven: venue2}}
"""


def test_each_qualifier_reaches_its_own_session_and_an_unknown_one_is_refused(
    tmp_path: Path, children: Children
) -> None:
    r, x, p, shared, v1, v2 = free_ports(6)
    topology = tmp_path / "topology.yaml"
    topology.write_text(TOPOLOGY.format(r=r, x=x, p=p, shared=shared, v1=v1, v2=v2))
    py = sys.executable
    for n, (sender, port) in enumerate((("GW1", v1), ("GW2", v2)), 1):
        children.start(f"venue{n}", endpoint_command("acceptor", port, "VENUE", sender, tmp_path / f"venue{n}",
                                                     send=0, rate=0))
    children.start("broker", [py, "-m", "broker", "--router", f"tcp://127.0.0.1:{r}",
                              "--xsub", f"tcp://127.0.0.1:{x}", "--xpub", f"tcp://127.0.0.1:{p}"])
    for name in ("desk1", "desk2", "venue1", "venue2"):
        children.start(name, [py, "-m", "actors.gateway.session_actor", "--config", str(topology), "--session", name])
    wait_until(lambda: all((tmp_path / "run" / f"desk{n}.sock").exists() for n in (1, 2)), 20,
               "both desks ready for handovers", children)
    listener = children.start("listener", [py, "-m", "actors.gateway.listener", "--config", str(topology)])
    wait_listening(shared, listener, children)

    for desk, count in (("desk1", 30), ("desk2", 20)):
        children.start(f"trader-{desk}", endpoint_command(
            "initiator", shared, "TRADER", "GATEWAY", tmp_path / f"trader-{desk}", send=count, rate=100,
            extra=["--session-qualifier", desk]))
    wait_until(lambda: count_received(tmp_path / "venue1" / "received.log") == 30
               and count_received(tmp_path / "venue2" / "received.log") == 20, 30, "each desk's orders", children)
    assert not exactly_once_problems(read_received(tmp_path / "venue1" / "received.log"), 30)
    assert not exactly_once_problems(read_received(tmp_path / "venue2" / "received.log"), 20)

    stranger = children.start("trader-desk9", endpoint_command(
        "initiator", shared, "TRADER", "GATEWAY", tmp_path / "trader-desk9", send=1, rate=1,
        extra=["--session-qualifier", "desk9", "--max-tries", "1"]))
    stranger.stopped = True  # it is expected to give up
    wait_until(lambda: "no session FIX.4.4 GATEWAY<-TRADER qualifier desk9" in listener.log_text(), 20,
               "the listener to refuse desk9", children)
    assert "logon: logged on" not in stranger.log_text(), stranger.report("an unknown qualifier was logged on")
