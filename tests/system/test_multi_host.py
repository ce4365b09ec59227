"""A gateway over three hosts: ``fixmesh deploy render --all`` brought up as three supervisords.

Three network namespaces on a bridge (``tests/hosts.py``) play three machines:

    a  198.18.N.1   broker, coordinator, monitor, and the venue simulator (programs: venue-sim)
    b  198.18.N.2   the Handler ``client`` (the trader logs on here)
    c  198.18.N.3   the Driven ``venue``; the trader runs here too

so every hop of an order crosses hosts: trader (c) -> Handler (b) -> broker (a)
-> Driven (c) -> venue (a), and the ExecutionReports come back the same way.
The bus has keys (``fixmesh keys create --config``), each host's folder gets
only the keys its programs use (docs/deploy.md), its configuration is the
rendered ``<host>.conf``, and supervisord starts in the host's namespace.
``fixmesh deploy check`` fails while the broker is down and passes once it
runs; stopping a host's supervisord stops its programs; a lost Handler host
makes the coordinator log the Driven out, and when the host comes back the
trader trades again; a cut link to the Driven's host heals and the pair
trades again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop import Children, wait_until
from tests.system import deployment as deployment_module
from tests.system.deployment import FIXMESH, deployed

pytestmark = [pytest.mark.slow]

PASSWORD = "multi-host-test"

TOPOLOGY = """\
hosts:
  a: {{address: {a}}}
  b: {{address: {b}}}
  c: {{address: {c}}}
broker: {{runs_on: a, router: 'tcp://{a}:5570', xsub: 'tcp://{a}:5571', xpub: 'tcp://{a}:5572'}}
bus: {{keys_dir: keys, subscribers: [watcher]}}
defaults:
  store: {{path: var/store}}
sessions:
  client: {{role: handler, runs_on: b, sender_comp_id: GATEWAY, target_comp_id: TRADER, host: {b}, port: 9876}}
  venue: {{role: driven, runs_on: c, sender_comp_id: GATEWAY, target_comp_id: VENUE, host: {a}, port: 9877,
          reconnect_interval: 0.5}}
pairs:
  - {{handler: client, driven: venue}}
programs:
  coordinator: {{runs_on: a, command: coordinator --config topology.yaml --driven-grace-s 5}}
  monitor: {{runs_on: a, key: watcher}}
  venue-sim:
    runs_on: a
    command: venue-sim --host {a} --port 9877 --sender VENUE --target GATEWAY --store-dir var/venue-sim
"""

#: Which programs each host runs, and which keys its folder gets: each secret only where it is used,
#: every public key on the broker's host, the broker's public key everywhere.
PROGRAMS = {"a": ("broker", "coordinator", "monitor", "venue-sim"), "b": ("client",), "c": ("venue",)}
KEYS = {
    "a": ("broker.key", "broker.key_secret", "coordinator.key", "coordinator.key_secret", "watcher.key",
          "watcher.key_secret", "client.key", "venue.key"),
    "b": ("broker.key", "client.key", "client.key_secret"),
    "c": ("broker.key", "venue.key", "venue.key_secret"),
}


class Deployment(deployment_module.Deployment):
    """The three hosts of this test, with ``deploy check`` and the monitor's log on host a."""

    def check(self, on: str, host: str) -> subprocess.CompletedProcess[str]:
        return self.hosts.run(on, [str(FIXMESH), "deploy", "check", "--config", "topology.yaml", "--host", host,
                                   "--timeout-s", "1"], cwd=self.roots[on], env=self.env(on))

    def monitor(self) -> str:
        path = self.roots["a"] / "var" / "log" / "monitor.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def deployment(tmp_path: Path, children: Children) -> Iterator[Deployment]:
    with deployed(tmp_path, children, topology=TOPOLOGY, programs=PROGRAMS, keys=KEYS, password=PASSWORD,
                  kind=Deployment) as d:
        yield d


def trade(d: Deployment, *orders: str, on: str = "c") -> list[dict[str, str]]:
    """``fixmesh client`` on host ``on`` against the Handler on host b; its ExecutionReports, one dict each."""
    done = d.hosts.run(on, [str(FIXMESH), "client", "--host", d.hosts.address("b"), "--port", "9876", "--json",
                             "--timeout-s", "30", "--connect-timeout", "2", "--max-tries", "10", *orders],
                       cwd=d.tmp, timeout_s=90)
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_three_hosts_rendered_by_deploy_trade_across_hosts(deployment: Deployment) -> None:
    d = deployment
    for name, programs in PROGRAMS.items():
        assert f"host {name} ({d.hosts.address(name)}): {', '.join(programs)}" in d.rendered, d.rendered
    # Before anything runs: the check finds the broker unreachable, and says so.
    early = d.check("b", "b")
    assert early.returncode == 1 and "UNREACHABLE" in early.stdout, early.stdout + early.stderr

    for name in PROGRAMS:
        d.start(name)
    d.wait_running(*PROGRAMS)
    for name in PROGRAMS:
        log = (d.roots[name] / "var" / "log" / "supervisord.log").read_text()
        assert "CRIT" not in log, log

    # From each host: its address is its own, the bus is reachable from it, its keys are there.
    for name in PROGRAMS:
        checked = d.check(name, name)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        last = checked.stdout.rstrip().splitlines()[-1]  # "OK", or "OK, N warning(s)" on a machine short of disk
        assert checked.stdout.count("reachable (") == 3 and last.startswith("OK"), checked.stdout
    wrong = d.check("c", "a")  # run on c as if it were a: not this machine's address
    assert wrong.returncode == 1 and "this machine has no address" in wrong.stdout, wrong.stdout

    reports = trade(d, "buy 100 MSFT@101.5", "sell 250 IBM", "buy 10 REJECT@1")
    exec_ids = [r["exec_id"] for r in reports]
    assert len(exec_ids) == len(set(exec_ids)), f"an ExecutionReport arrived twice: {reports}"
    statuses = {order: [r["status"] for r in reports if r["order"] == order] for order in ("ORD-1", "ORD-2", "ORD-3")}
    assert statuses["ORD-1"] == ["NEW", "FILLED"], reports
    assert statuses["ORD-2"] == ["NEW", "PARTIAL", "FILLED"], reports
    assert statuses["ORD-3"] == ["REJECTED"], reports
    monitor = d.monitor()
    assert "pair.client-venue.connect" in monitor and "session.venue.state" in monitor, monitor[-3000:]

    # Stopping host b's supervisord stops its programs: nothing runs there, the Handler's port is closed.
    client_pid = int(d.ctl("b", "pid", "client").strip())
    d.ctl("b", "shutdown")
    d.supervisords["b"].popen.wait(timeout=30)
    d.supervisords["b"].stopped = True
    assert d.hosts.pids("b") == [], f"still running on b after its supervisord stopped: {d.hosts.pids('b')}"
    assert not Path(f"/proc/{client_pid}").exists()
    connect = f"import socket; socket.create_connection(('{d.hosts.address('b')}', 9876), timeout=2)"
    probe = d.hosts.run("c", [sys.executable, "-c", connect])
    assert probe.returncode != 0 and "Connection refused" in probe.stderr, probe.stderr


def test_losing_the_handlers_host_logs_the_venue_session_out_and_it_comes_back(deployment: Deployment) -> None:
    d = deployment
    for name in PROGRAMS:
        d.start(name)
    d.wait_running(*PROGRAMS)
    # A trader that stays logged on (and reconnects), on host c.
    trader = d.hosts.start("c", "trader", [
        str(FIXMESH), "endpoint", "--role", "initiator", "--host", d.hosts.address("b"), "--port", "9876",
        "--sender", "TRADER", "--target", "GATEWAY", "--store-dir", str(d.tmp / "trader"), "--heartbeat", "2",
        "--reconnect-interval", "1", "--connect-timeout", "1", "--reconnect-after-logout"], cwd=d.tmp)
    wait_until(lambda: d.monitor().count("pair.client-venue.connect") >= 1, 30,
               "the coordinator to connect the Driven", d.children)

    # Host b is lost (kill -9 of everything on it): the broker marks the Handler down and the coordinator
    # logs the Driven out of the venue, so the venue never keeps a session nobody trades on.
    d.hosts.kill("b")
    assert d.hosts.pids("b") == []
    lost = "pair.client-venue.disconnect"
    wait_until(lambda: lost in d.monitor(), 30, "the coordinator to disconnect the Driven after the Handler's host "
                                                 "was lost", d.children)
    told = next(line for line in d.monitor().splitlines() if lost in line)
    assert "end user's session ended: the end user's session process ended" in told, told
    assert "actor.client.down" in d.monitor()

    # Host b comes back (its supervisord started again): the trader logs on again and the Driven reconnects.
    d.start("b")
    d.wait_running("b")
    wait_until(lambda: d.monitor().count("pair.client-venue.connect") >= 2, 60,
               "the Driven connected again once the Handler's host was back", d.children)
    assert trader.exit_code is None, trader.report("the trader exited")
    trader.terminate()


def test_a_cut_link_to_the_drivens_host_heals_and_the_pair_trades_again(deployment: Deployment) -> None:
    d = deployment
    for name in PROGRAMS:
        d.start(name)
    d.wait_running(*PROGRAMS)
    assert [r["status"] for r in trade(d, "buy 100 MSFT@101.5", on="b")] == ["NEW", "FILLED"]

    # Host c is cut off: its Driven runs on, but the broker no longer hears it.
    d.hosts.cut("c")
    wait_until(lambda: "actor.venue.down" in d.monitor(), 20, "the broker to mark the cut Driven down", d.children)
    assert d.running("c")  # nothing on c noticed anything that stops it
    d.hosts.heal("c")
    wait_until(lambda: d.monitor().rfind("actor.venue.up") > d.monitor().rfind("actor.venue.down"), 30,
               "the Driven back on the bus after the link healed", d.children)
    reports = trade(d, "sell 250 IBM", on="b")
    assert [r["status"] for r in reports] == ["NEW", "PARTIAL", "FILLED"], reports
