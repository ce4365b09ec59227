"""``fixmesh deploy stop`` on a host with six pairs under a real supervisord.

The host is rendered by ``fixmesh deploy render`` (broker, six Handler /
Driven pairs, the coordinator the loader places, a monitor: 15 programs in
four priorities) and one pair trades with a trader and a venue outside
supervisord. ``fixmesh deploy stop`` must stop the priorities in
supervisord's order (monitor, coordinator, the twelve sessions, the broker
last), send every session its SIGTERM together (supervisord's own shutdown
sends them one at a time: 5.7 s for this host against 1.2 s), let the trading pair
log both counterparties out, and shut supervisord down.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from bench.supervisor_rpc import Supervisor
from tests.interop import Children, endpoint_command, free_ports, wait_for_orders, wait_until
from tests.system.gateway import FIXMESH

pytestmark = [pytest.mark.slow]

PASSWORD = "stop-test"
PAIRS = 6
#: The twelve sessions get SIGTERM in one pass; supervisord's shutdown would spread them over several seconds.
TOGETHER_S = 2.0

HEAD = """\
broker: {{router: 'tcp://127.0.0.1:{router}', xsub: 'tcp://127.0.0.1:{xsub}', xpub: 'tcp://127.0.0.1:{xpub}'}}
defaults:
  heartbeat_interval: 30
  store: {{path: store, durability: batch}}
programs:
  monitor: {{command: 'monitor --json --config topology.yaml'}}
sessions:
"""
SESSIONS = """\
  client{i}: {{role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER{i}, port: {client}}}
  venue{i}: {{role: driven, sender_comp_id: GATEWAY, target_comp_id: VENUE{i}, port: {venue}, reconnect_interval: 0.5}}
"""
STOPPED = re.compile(r"^(\S+ \S+) \S+ stopped: (\S+) ", re.MULTILINE)
STOPPING = re.compile(r"^(\S+ \S+) INFO fixmesh\.host: \S+: stopping: ", re.MULTILINE)


def _time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")


def test_a_hosts_programs_stop_a_priority_at_a_time_each_priority_together(tmp_path: Path,
                                                                          children: Children) -> None:
    root = tmp_path / "host"
    (root / "var" / "log").mkdir(parents=True)
    router, xsub, xpub, *ports = free_ports(3 + 2 * PAIRS)
    text = HEAD.format(router=router, xsub=xsub, xpub=xpub)
    text += "".join(SESSIONS.format(i=i, client=ports[2 * i], venue=ports[2 * i + 1]) for i in range(PAIRS))
    text += "pairs:\n" + "".join(f"  - {{handler: client{i}, driven: venue{i}}}\n" for i in range(PAIRS))
    (root / "topology.yaml").write_text(text, encoding="utf-8")
    conf = root / "supervisord.conf"
    rendered = subprocess.run([str(FIXMESH), "deploy", "render", "--config", "topology.yaml", "--host", "local",
                               "--root", str(root), "--fixmesh", str(FIXMESH), "--out", str(conf)],
                              capture_output=True, text=True, timeout=60, cwd=root)
    assert rendered.returncode == 0, rendered.stderr
    env = {**os.environ, "FIXMESH_SUPERVISOR_PASSWORD": PASSWORD}
    supervisord = children.start("supervisord", [sys.executable, "-m", "supervisor.supervisord", "-n", "-c",
                                                 str(conf)], env=env)
    supervisor = Supervisor(root / "var" / "supervisor.sock", PASSWORD)
    sessions = [f"{half}{i}" for i in range(PAIRS) for half in ("client", "venue")]
    programs = {"broker", "coordinator", "monitor", *sessions}
    wait_until(lambda: {n for n, (state, _) in supervisor.states().items() if state == "RUNNING"} == programs, 60,
               "every program RUNNING", children)

    venue = children.start("venue", endpoint_command("acceptor", ports[1], "VENUE0", "GATEWAY", tmp_path / "venue",
                                                     send=5, rate=50))
    trader = children.start("trader", endpoint_command("initiator", ports[0], "TRADER0", "GATEWAY",
                                                       tmp_path / "trader", send=5, rate=50))
    wait_for_orders(children, 5, [tmp_path / "venue" / "received.log", tmp_path / "trader" / "received.log"], 60)
    trader.stopped = venue.stopped = True  # logged out by the stop: they may exit or try again, as they like

    done = subprocess.run([str(FIXMESH), "deploy", "stop", "--conf", str(conf)], capture_output=True, text=True,
                          timeout=120, env=env)
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    priorities = [int(p) for p in re.findall(r"priority (\d+): stopped", done.stdout)]
    assert priorities == sorted(set(priorities), reverse=True) and len(priorities) == 4, done.stdout
    assert "supervisord: shut down" in done.stdout
    assert supervisord.popen.wait(timeout=30) == 0
    supervisord.stopped = True

    order = [name for _, name in STOPPED.findall((root / "var" / "log" / "supervisord.log").read_text())]
    assert set(order) == programs, order
    assert order.index("monitor") < order.index("coordinator") < min(order.index(s) for s in sessions)
    assert max(order.index(s) for s in sessions) < order.index("broker") == len(order) - 1, order

    logs = {name: (root / "var" / "log" / f"{name}.log").read_text(errors="replace") for name in sessions}
    stopping = [_time(m) for name in sessions for m in STOPPING.findall(logs[name])]
    assert len(stopping) == len(sessions), stopping
    assert (max(stopping) - min(stopping)).total_seconds() < TOGETHER_S, sorted(stopping)
    for name in ("client0", "venue0"):
        assert "Logout exchange complete" in logs[name], logs[name][-2000:]
