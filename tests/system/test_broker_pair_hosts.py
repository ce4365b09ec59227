"""The broker's host lost for real: a pair of brokers and two coordinators on four hosts (network namespaces).

    a  198.18.N.1   the primary broker and the coordinator
    b  198.18.N.2   the backup broker, a second coordinator (coordinator-b) and the monitor
    c  198.18.N.3   the Handler ``client``, and the venue (a fixmesh endpoint) the Driven connects to
    d  198.18.N.4   the Driven ``venue``, and the trader (a fixmesh endpoint) that logs on to the Handler

Each host runs the supervisord configuration ``fixmesh deploy render --all`` wrote for it, with only
the keys its programs use; the bus has keys, so the two brokers' state link is CURVE with the broker's
key. Orders flow both ways (trader -> c -> a -> d -> venue on c, and back). Host a is then lost:
every process on it is killed at once (``Hosts.kill``: the primary broker and the coordinator). The
orders must flow again through the backup within ``RESUME_BOUND_S``, coordinator-b must take the lease,
and every order must reach the venue, and every venue message the trader, exactly once. Host a then
comes back: its broker rejoins passive, its coordinator stands by, and nothing is active twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop import Child, Children, count_received, exactly_once_problems, read_received, wait_until
from tests.system import deployment as deployment_module
from tests.system.deployment import FIXMESH, deployed

pytestmark = [pytest.mark.slow]

PASSWORD = "broker-pair-hosts-test"
RESUME_BOUND_S = 5.0
TOTAL = 2500
RATE = 250.0
LOSE_AT = 600

TOPOLOGY = """\
hosts:
  a: {{address: {a}}}
  b: {{address: {b}}}
  c: {{address: {c}}}
  d: {{address: {d}}}
broker:
  runs_on: a
  router: 'tcp://{a}:5570'
  xsub: 'tcp://{a}:5571'
  xpub: 'tcp://{a}:5572'
  peer: 'tcp://{a}:5573'
  backup: {{runs_on: b, router: 'tcp://{b}:5570', xsub: 'tcp://{b}:5571', xpub: 'tcp://{b}:5572',
           peer: 'tcp://{b}:5573'}}
bus: {{keys_dir: keys, subscribers: [watcher]}}
defaults:
  store: {{path: var/store}}
sessions:
  client: {{role: handler, runs_on: c, sender_comp_id: GATEWAY, target_comp_id: TRADER, host: {c}, port: 9876}}
  venue: {{role: driven, runs_on: d, sender_comp_id: GATEWAY, target_comp_id: VENUE, host: {c}, port: 9877,
          reconnect_interval: 0.5}}
pairs:
  - {{handler: client, driven: venue}}
programs:
  coordinator: {{runs_on: a, command: coordinator --config topology.yaml --driven-grace-s 5}}
  coordinator-b: {{runs_on: b, command: coordinator --config topology.yaml --driven-grace-s 5 --name coordinator-b}}
  monitor: {{runs_on: b, key: watcher}}
"""

PROGRAMS = {"a": ("broker", "coordinator"), "b": ("broker-backup", "coordinator-b", "monitor"), "c": ("client",),
            "d": ("venue",)}
#: Each secret only where it is used; both brokers' hosts have every public key (each broker writes its policy).
BROKER_KEYS = ("broker.key", "broker.key_secret", "client.key", "venue.key", "coordinator.key", "watcher.key")
KEYS = {
    "a": (*BROKER_KEYS, "coordinator.key_secret"),
    "b": (*BROKER_KEYS, "coordinator.key_secret", "watcher.key_secret"),
    "c": ("broker.key", "client.key", "client.key_secret"),
    "d": ("broker.key", "venue.key", "venue.key_secret"),
}


Deployment = deployment_module.Deployment


@pytest.fixture
def deployment(tmp_path: Path, children: Children) -> Iterator[Deployment]:
    with deployed(tmp_path, children, topology=TOPOLOGY, programs=PROGRAMS, keys=KEYS, password=PASSWORD) as d:
        yield d


def endpoint(d: Deployment, host: str, role: str, connect_to: str, port: int, sender: str, work: Path) -> Child:
    """``fixmesh endpoint`` inside ``host``, sending ``TOTAL`` numbered orders and logging what it receives."""
    return d.hosts.start(host, sender.lower(), [
        str(FIXMESH), "endpoint", "--role", role, "--host", connect_to, "--port", str(port), "--sender", sender,
        "--target", "GATEWAY", "--store-dir", str(work / "store"), "--received-log", str(work / "received.log"),
        "--send", str(TOTAL), "--rate", str(RATE), "--reconnect-interval", "0.5", "--connect-timeout", "1"],
        cwd=d.tmp)


def transitions(log_text: str) -> list[tuple[str, str]]:
    return re.findall(r"(?:primary|backup) broker \w+: (\w+) -> (\w+):", log_text)


def test_the_primary_brokers_host_lost_orders_go_on_through_the_backup_and_it_comes_back_passive(
        deployment: Deployment) -> None:
    d = deployment
    # Host a first, so that its coordinator holds the lease when the host is lost (its hello is also the client
    # vote that makes the lone primary active).
    d.start("a")
    wait_until(lambda: "coordinator holds the lease" in d.log("a", "coordinator"), 30, "the coordinator on a leading",
               d.children)
    for name in ("b", "c", "d"):
        d.start(name)
    wait_until(lambda: all(d.running(name) for name in PROGRAMS), 60, "every program RUNNING", d.children)
    assert "holds the lease" not in d.log("b", "coordinator-b"), "two coordinators leading"
    venue_work, trader_work = d.tmp / "venue", d.tmp / "trader"
    logs = [venue_work / "received.log", trader_work / "received.log"]
    c = d.hosts.address("c")
    endpoint(d, "c", "acceptor", c, 9877, "VENUE", venue_work)
    endpoint(d, "d", "initiator", c, 9876, "TRADER", trader_work)
    wait_until(lambda: all(count_received(log) >= LOSE_AT for log in logs), 90, f"{LOSE_AT} orders each way",
               d.children)

    before = [count_received(log) for log in logs]
    d.hosts.kill("a")  # the primary broker's host is lost, the coordinator with it
    lost_s = time.monotonic()
    assert d.hosts.pids("a") == []
    wait_until(lambda: all(count_received(log) >= n + 20 for log, n in zip(logs, before, strict=True)), 30,
               "orders flowing again through the backup", d.children)
    resumed_s = time.monotonic() - lost_s
    print(f"orders flowing again {resumed_s:.2f} s after host a was lost")
    wait_until(lambda: "coordinator-b holds the lease" in d.log("b", "coordinator-b"), 20,
               "coordinator-b taking the lease over", d.children)

    wait_until(lambda: all(count_received(log) >= TOTAL for log in logs), 180, "every order each way", d.children)
    for log in logs:
        problems = exactly_once_problems(read_received(log), TOTAL)
        assert not problems, f"{log}:\n" + "\n".join(problems[:20])
    assert resumed_s < RESUME_BOUND_S

    # Host a comes back: its broker rejoins passive, its coordinator stands by; the backup keeps serving.
    d.start("a")
    wait_until(lambda: d.running("a"), 60, "host a's programs RUNNING again", d.children)
    wait_until(lambda: ("starting", "passive") in transitions(d.log("a", "broker")), 30, "the primary back, passive",
               d.children)
    wait_until(lambda: "does not hold the lease" in d.log("a", "coordinator")
               or "held by another actor" in d.log("a", "coordinator"), 30, "the coordinator on a standing by",
               d.children)
    primary, backup = d.log("a", "broker"), d.log("b", "broker-backup")
    assert transitions(primary) == [("starting", "active"), ("starting", "passive")], transitions(primary)
    assert transitions(backup) == [("starting", "passive"), ("passive", "active")], transitions(backup)
    assert "yields" not in primary + backup
    monitor = d.log("b", "monitor")
    assert "reading tcp://" in monitor, "the monitor did not follow the backup"
    active_lines = [line for line in monitor.splitlines() if "coordinator.active" in line]
    assert active_lines and "coordinator-b" in active_lines[-1], active_lines
