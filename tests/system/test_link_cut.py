"""A Handler's host cut off from the broker's host under a steady flow of orders, twice: nothing lost, nothing twice.

Three network namespaces (``tests/hosts.py``), each running the supervisord
configuration ``fixmesh deploy render --all`` wrote for it, on a bus with keys:

    a  198.18.N.1   the broker, the coordinator and the monitor
    b  198.18.N.2   the Handler ``client``, and the trader (a fixmesh endpoint) that logs on to it
    c  198.18.N.3   the Driven ``venue``, and the venue (a fixmesh endpoint) it connects to

The trader and the venue each send ``TOTAL`` numbered NewOrderSingles (the
venue's stand for its ExecutionReports: every application message crosses
the gateway the same way, trader -> b -> a -> c -> venue and back). Both FIX
connections stay on their own host, so a cut of host b's link touches only
the bus: the Handler runs on, its trader keeps sending, and what it forwards
waits in its outbox.

Two cuts of host b's link, each healed after a fixed pause:

* a short one (``SHORT_CUT_S``), under the bus's detection time
  (``LIVENESS`` x ``HEARTBEAT_INTERVAL_S`` = 3 s): TCP retransmits what was
  in flight once the link is back;
* a long one (``LONG_CUT_S``), over it but within the coordinator's
  ``--handler-grace-s`` (10 s): the broker marks the Handler down and, once
  the link heals, up again; the coordinator leaves the venue session alone
  (the trader never left: a Handler out of reach for seconds is not a user
  gone), and everything that waited goes.

After each heal, everything sent before it must arrive (and 20 more) within
``RESUME_BOUND_S``. At the end every order is at the venue and every venue
message at the trader exactly once and in order (a PossDup resend of the FIX layer is not a
second message), and every program of every host is running.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.sim.endpoint import counter_path, session_id_of
from tests.interop import Child, Children, count_received, exactly_once_problems, read_received, wait_until
from tests.system import deployment as deployment_module
from tests.system.deployment import FIXMESH, deployed

pytestmark = [pytest.mark.slow]

PASSWORD = "link-cut-test"
TOTAL = 3000
RATE = 100.0
SHORT_CUT_AT = 500
LONG_CUT_AT = 1200
#: Under the bus's detection time (3 s) and under TCP's retransmission after 1 s of loss (at 1.4 s).
SHORT_CUT_S = 1.0
#: Well over the detection time: the broker marks the Handler down and the coordinator acts on it.
LONG_CUT_S = 7.0
#: From the heal until every message sent before it has arrived, and 20 more: the Handler's bus connection
#: comes back at TCP's next try (SYN retransmissions back off 1, 2, 4 s: at most 4 s after a 7 s cut), the
#: broker takes its first heartbeat as a return, the coordinator connects the Driven (at once on the
#: Handler's ``up``, or at its next 2 s poll), the venue's Logon completes, and what waited (about
#: LONG_CUT_S x RATE messages each way) is sent and written; a few seconds more for a busy machine.
RESUME_BOUND_S = 15.0

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
  venue: {{role: driven, runs_on: c, sender_comp_id: GATEWAY, target_comp_id: VENUE, host: {c}, port: 9877,
          reconnect_interval: 0.5}}
pairs:
  - {{handler: client, driven: venue}}
programs:
  coordinator: {{runs_on: a, command: coordinator --config topology.yaml --driven-grace-s 5}}
  monitor: {{runs_on: a, key: watcher}}
"""

PROGRAMS = {"a": ("broker", "coordinator", "monitor"), "b": ("client",), "c": ("venue",)}
KEYS = {
    "a": ("broker.key", "broker.key_secret", "coordinator.key", "coordinator.key_secret", "watcher.key",
          "watcher.key_secret", "client.key", "venue.key"),
    "b": ("broker.key", "client.key", "client.key_secret"),
    "c": ("broker.key", "venue.key", "venue.key_secret"),
}

Deployment = deployment_module.Deployment


@pytest.fixture
def deployment(tmp_path: Path, children: Children) -> Iterator[Deployment]:
    with deployed(tmp_path, children, topology=TOPOLOGY, programs=PROGRAMS, keys=KEYS, password=PASSWORD) as d:
        yield d


def endpoint(d: Deployment, host: str, role: str, port: int, sender: str, work: Path) -> Child:
    """``fixmesh endpoint`` inside ``host`` on that host's address, sending ``TOTAL`` numbered orders."""
    return d.hosts.start(host, sender.lower(), [
        str(FIXMESH), "endpoint", "--role", role, "--host", d.hosts.address(host), "--port", str(port),
        "--sender", sender, "--target", "GATEWAY", "--store-dir", str(work / "store"),
        "--received-log", str(work / "received.log"), "--send", str(TOTAL), "--rate", str(RATE),
        "--reconnect-interval", "0.5", "--connect-timeout", "1"], cwd=d.tmp)


def sent(work: Path, sender: str) -> int:
    """How many orders the endpoint working in ``work`` has sent or stored (its ClOrdID counter)."""
    path = counter_path(work / "store", session_id_of("FIX.4.4", sender, "GATEWAY"))
    try:
        return int(path.read_text(encoding="ascii").split()[0]) - 1
    except (OSError, ValueError, IndexError):
        return 0


def monitor(d: Deployment) -> str:
    return d.log("a", "monitor")


def cut_and_heal(d: Deployment, flows: list[tuple[Path, Path, str]], pause_s: float, what: str) -> float:
    """Host b's link down for ``pause_s``, then up; seconds from the heal until each receiver has every message
    its sender had sent by then, and 20 more. ``flows``: (receiver's log, sender's folder, sender) each way."""
    d.hosts.cut("b")
    time.sleep(pause_s)  # the fault's length: nothing to wait for, the link stays down this long
    d.hosts.heal("b")
    healed_s = time.monotonic()
    goals = [(log, sent(work, sender) + 20) for log, work, sender in flows]
    assert all(goal < TOTAL - 200 for _, goal in goals), f"the flow was nearly over at the end of {what}: {goals}"
    wait_until(lambda: all(count_received(log) >= goal for log, goal in goals), 60,
               f"orders flowing both ways after {what}", d.children)
    return time.monotonic() - healed_s


def test_a_handlers_host_cut_off_from_the_broker_short_and_long_loses_nothing(deployment: Deployment) -> None:
    d = deployment
    for name in PROGRAMS:
        d.start(name)
    d.wait_running(*PROGRAMS)
    venue_work, trader_work = d.tmp / "venue", d.tmp / "trader"
    logs = [venue_work / "received.log", trader_work / "received.log"]
    flows = [(logs[0], trader_work, "TRADER"), (logs[1], venue_work, "VENUE")]
    venue = endpoint(d, "c", "acceptor", 9877, "VENUE", venue_work)
    trader = endpoint(d, "b", "initiator", 9876, "TRADER", trader_work)
    wait_until(lambda: all(count_received(log) >= SHORT_CUT_AT for log in logs), 90,
               f"{SHORT_CUT_AT} orders each way", d.children)

    short_s = cut_and_heal(d, flows, SHORT_CUT_S, f"a {SHORT_CUT_S:g} s cut")
    print(f"everything sent before the heal delivered, and more, {short_s:.2f} s after a {SHORT_CUT_S:g} s cut "
          "healed")
    short_noticed = "actor.client.down" in monitor(d)

    wait_until(lambda: all(count_received(log) >= LONG_CUT_AT for log in logs), 90,
               f"{LONG_CUT_AT} orders each way", d.children)
    downs_before = monitor(d).count("actor.client.down")
    long_s = cut_and_heal(d, flows, LONG_CUT_S, f"a {LONG_CUT_S:g} s cut")
    print(f"everything sent before the heal delivered, and more, {long_s:.2f} s after a {LONG_CUT_S:g} s cut healed "
          f"(the short cut {'was' if short_noticed else 'was not'} noticed by the broker)")

    wait_until(lambda: all(count_received(log) >= TOTAL for log in logs), 120, "every order each way", d.children)
    for log in logs:
        problems = exactly_once_problems(read_received(log), TOTAL)
        assert not problems, f"{log}:\n" + "\n".join(problems[:20])

    # The long cut was seen for what it is: the Handler marked down, then back; within the grace nobody was
    # told to leave the venue (the trader was logged on all along).
    events = monitor(d)
    assert events.count("actor.client.down") > downs_before, events[-3000:]
    assert events.rfind("actor.client.up") > events.rfind("actor.client.down"), events[-3000:]
    assert "pair.client-venue.disconnect" not in events, events[-3000:]
    assert long_s < RESUME_BOUND_S and short_s < RESUME_BOUND_S, (short_s, long_s)

    # Every program on every host ran through both cuts, and the trader never lost its session.
    for name in PROGRAMS:
        assert d.running(name), d.ctl(name, "status")
        for program in PROGRAMS[name]:
            assert "Traceback" not in d.log(name, program), d.log(name, program)[-3000:]
    assert trader.exit_code is None, trader.report("the trader exited")
    assert "Logout" not in trader.log_text(), trader.report("the trader was logged out")
    assert "Logout" not in venue.log_text(), venue.report("the venue session was logged out")
