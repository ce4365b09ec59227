"""``fixmesh deploy reload`` under a real supervisord: pairs added, changed and removed while a pair trades.

A deployment as an operator runs one: the topology rendered by ``fixmesh
deploy render`` for its one host (broker, the pair ``client``/``venue``, the
coordinator) under supervisord, with two venue simulators outside it. A
trader in this process (``tests.system.raw_fix``) sends an order to
``client`` every 20 ms for the whole test and times each fill. Meanwhile the
topology is edited three times and reloaded:

1. a second pair ``client2``/``venue2`` is added: the reload starts exactly
   its two sessions, the coordinator learns the pair (SIGHUP), and a second
   trader logs on to ``client2`` and gets an order filled through ``venue2``;
2. a setting of ``client2`` changes: only ``client2`` restarts;
3. the second pair is removed: its two programs are stopped and gone.

The first pair never notices: the processes of ``client``, ``venue``, the
broker and the coordinator keep their pids, its trader sees no Logon,
Logout, ResendRequest or Reject and gap-free sequence numbers, every order
is filled, and no fill takes longer than a bound (the figures are printed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.supervisor_rpc import Supervisor
from tests.interop import Children, free_ports, wait_until
from tests.system.gateway import start_venue_sim
from tests.system.raw_fix import RawInitiator

pytestmark = [pytest.mark.slow]

FIXMESH = Path(sys.executable).parent / "fixmesh"
PASSWORD = "reload-test"
ORDER_EVERY_S = 0.02
#: The slowest fill the first pair's trader may see while the others are reloaded. A reconnect would show as
#: a Logon and a pid change (both checked); this bounds CPU contention from the programs a reload starts,
#: which on a loaded 2-core machine costs a few hundred milliseconds.
MAX_FILL_S = 2.0

TOPOLOGY = """\
broker: {{router: 'tcp://127.0.0.1:{router}', xsub: 'tcp://127.0.0.1:{xsub}', xpub: 'tcp://127.0.0.1:{xpub}'}}
defaults:
  heartbeat_interval: 30
  store: {{path: store, durability: batch}}
sessions:
  client: {{role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER, port: {client}}}
  venue: {{role: driven, sender_comp_id: GATEWAY, target_comp_id: VENUE, port: {venue}, reconnect_interval: 0.5}}
{more_sessions}pairs:
  - {{handler: client, driven: venue}}
{more_pairs}"""

SECOND_SESSIONS = """\
  client2: {{role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER2, port: {client2}{client2_extra}}}
  venue2: {{role: driven, sender_comp_id: GATEWAY, target_comp_id: VENUE2, port: {venue2}, reconnect_interval: 0.5}}
"""
SECOND_PAIR = "  - {handler: client2, driven: venue2}\n"


class Deployment:
    """One host's topology, rendered and run under supervisord as ``fixmesh deploy render`` makes it."""

    def __init__(self, root: Path, children: Children) -> None:
        self.root = root
        self.children = children
        (root / "var" / "log").mkdir(parents=True)
        ports = free_ports(7)
        self.ports = dict(zip(("router", "xsub", "xpub", "client", "venue", "client2", "venue2"), ports, strict=True))
        self.topology = root / "topology.yaml"
        self.conf = root / "supervisord.conf"
        self.env = {**os.environ, "FIXMESH_SUPERVISOR_PASSWORD": PASSWORD}
        self.supervisor = Supervisor(root / "var" / "supervisor.sock", PASSWORD)
        #: (start, end) monotonic times of each ``reload`` command.
        self.reloading: list[tuple[float, float]] = []

    def write(self, second_pair: bool, client2_extra: str = "") -> None:
        more = SECOND_SESSIONS.format(client2_extra=client2_extra, **self.ports) if second_pair else ""
        self.topology.write_text(TOPOLOGY.format(more_sessions=more, more_pairs=SECOND_PAIR if second_pair else "",
                                                 **self.ports), encoding="utf-8")

    def start(self) -> None:
        rendered = subprocess.run([str(FIXMESH), "deploy", "render", "--config", str(self.topology), "--host",
                                   "local", "--root", str(self.root), "--fixmesh", str(FIXMESH),
                                   "--out", str(self.conf)], capture_output=True, text=True, timeout=60)
        assert rendered.returncode == 0, rendered.stderr
        self.supervisord = self.children.start(
            "supervisord", [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(self.conf)], env=self.env)
        wait_until(self._all_running, 30, "every program RUNNING", self.children)

    def _all_running(self) -> bool:
        states = self.states()
        return states.get("coordinator") == "RUNNING" and len(states) == 4 and set(states.values()) == {"RUNNING"}

    def reload(self) -> str:
        started = time.monotonic()
        done = subprocess.run([str(FIXMESH), "deploy", "reload", "--conf", str(self.conf)], capture_output=True,
                              text=True, timeout=120, env=self.env)
        assert done.returncode == 0, done.stdout + done.stderr
        print(done.stdout, end="")
        self.reloading.append((started, time.monotonic()))
        return done.stdout

    def ctl(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=30, env=self.env).stdout

    def states(self) -> dict[str, str]:
        return {name: state for name, (state, _) in self.supervisor.states().items()}

    def pids(self) -> dict[str, int]:
        return {name: pid for name, (_, pid) in self.supervisor.states().items() if pid}

    def log(self, name: str) -> str:
        path = self.root / "var" / "log" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.supervisor.shut_down(self.supervisord, fallback=lambda: self.ctl("shutdown"), wait_s=60)
        self.supervisord.stopped = True


class OrderFlow(threading.Thread):
    """Orders to one Handler at a steady pace until stopped: ClOrdID -> the monotonic time it was sent."""

    def __init__(self, trader: RawInitiator) -> None:
        super().__init__(name="order-flow", daemon=True)
        self.trader = trader
        self.sent: dict[str, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        for n in range(1, 100_000):
            if self.stopping.is_set():
                return
            cl_ord_id = f"F{n}"
            self.sent[cl_ord_id] = self.trader.order(cl_ord_id)[1]
            pause = started + n * ORDER_EVERY_S - time.monotonic()
            if pause > 0:
                time.sleep(pause)

    def fills(self) -> dict[str, float]:
        """ClOrdID -> when its fill (OrdStatus 2) arrived."""
        out: dict[str, float] = {}
        for t, m in self.trader.received("8"):
            if m.get(39) == b"2" and (cl_ord_id := m.get_str(11)) is not None:
                out.setdefault(cl_ord_id, t)
        return out


def start_venue(children: Children, tmp_path: Path, name: str, port: int, comp_id: str) -> None:
    start_venue_sim(children, port, tmp_path / name, name, comp_id)


def test_pairs_added_changed_and_removed_by_reload_while_a_pair_trades_without_a_gap(
        tmp_path: Path, children: Children) -> None:
    deployment = Deployment(tmp_path / "host", children)
    deployment.write(second_pair=False)
    start_venue(children, tmp_path, "venue-sim", deployment.ports["venue"], "VENUE")
    start_venue(children, tmp_path, "venue-sim2", deployment.ports["venue2"], "VENUE2")
    deployment.start()
    traders: list[RawInitiator] = []
    flow: OrderFlow | None = None
    try:
        trader = RawInitiator(deployment.ports["client"])
        traders.append(trader)
        trader.logon()
        # The coordinator connects the Driven once the user is logged on: the flow starts when it has.
        wait_until(lambda: "-> CONNECTED" in deployment.log("venue"), 30, "the Driven logged on", children)
        flow = OrderFlow(trader)
        flow.start()
        trader.wait_count(lambda: len(flow.fills()) if flow else 0, 25, 30, "the first pair's fills")
        steady = deployment.pids()
        assert set(steady) == {"broker", "client", "venue", "coordinator"}, steady

        # 1. A pair added: its two sessions start, nothing else restarts, and it trades.
        deployment.write(second_pair=True)
        added_at = time.monotonic()
        out = deployment.reload()
        assert "started    client2, venue2" in out and "restarted  -" in out and "stopped    -" in out, out
        assert "unchanged  broker, client, coordinator, venue" in out, out
        assert "coordinator: told to re-read the pairs (SIGHUP)" in out, out
        wait_until(lambda: "added client2-venue2" in deployment.log("coordinator"), 10,
                   "the coordinator to learn the new pair", children)
        trader2 = RawInitiator(deployment.ports["client2"], sender="TRADER2")
        traders.append(trader2)
        trader2.logon()
        trader2.order("T2-1")
        trader2.wait_for(lambda m: m.msg_type == "8" and m.get(11) == b"T2-1" and m.get(39) == b"2", 20,
                         "the new pair's fill")
        added_s = time.monotonic() - added_at
        pids = deployment.pids()
        assert {n: pids[n] for n in steady} == steady, "a program of the first pair was restarted"
        trader2.logout()
        trader2.close()
        traders.remove(trader2)

        # 2. A setting of client2 changes: client2 alone restarts.
        deployment.write(second_pair=True, client2_extra=", logon_timeout: 12")
        out = deployment.reload()
        assert "restarted  client2" in out and "started    -" in out and "stopped    -" in out, out
        changed = deployment.pids()
        assert changed["client2"] != pids["client2"], "client2 was not restarted"
        assert {n: changed[n] for n in (*steady, "venue2")} == {n: pids[n] for n in (*steady, "venue2")}

        # 3. The second pair removed: its programs are stopped and gone.
        deployment.write(second_pair=False)
        out = deployment.reload()
        assert "stopped    client2, venue2" in out, out
        gone = deployment.states()
        assert "client2" not in gone and "venue2" not in gone, gone
        for name in ("client2", "venue2"):
            pid = changed[name]
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        wait_until(lambda: "removed client2-venue2" in deployment.log("coordinator"), 10,
                   "the coordinator to forget the pair", children)

        time.sleep(0.5)
        flow.stopping.set()
        flow.join(timeout=10)
        last = f"F{len(flow.sent)}"
        trader.wait_for(lambda m: m.msg_type == "8" and m.get_str(11) == last and m.get(39) == b"2", 10,
                        "the last order's fill")
        assert deployment.pids() == steady, "a program of the first pair was restarted"
    finally:
        if flow is not None:
            flow.stopping.set()
        for t in traders:
            t.close()
        deployment.stop()

    # The first pair saw nothing: every order filled, no session message but the first Logon, no gap.
    fills = flow.fills()
    missing = [c for c in flow.sent if c not in fills]
    assert not missing, f"{len(missing)} orders without a fill, first {missing[:5]}"
    latency_s = sorted(fills[c] - flow.sent[c] for c in flow.sent)
    during = sorted(fills[c] - t for c, t in flow.sent.items()
                    if any(start <= t <= end for start, end in deployment.reloading))
    before = sorted(fills[c] - t for c, t in flow.sent.items() if t < deployment.reloading[0][0])
    arrivals = sorted(fills.values())
    widest_gap_s = max(b - a for a, b in zip(arrivals, arrivals[1:], strict=False))
    print(f"reload while trading: {len(flow.sent)} orders every {ORDER_EVERY_S * 1000:.0f} ms through three "
          f"reloads (pair added and trading in {added_s:.1f} s); fill latency median "
          f"{latency_s[len(latency_s) // 2] * 1000:.1f} ms, p99 {latency_s[int(len(latency_s) * 0.99)] * 1000:.1f} ms, "
          f"max {latency_s[-1] * 1000:.1f} ms ({len(during)} orders sent while a reload ran: median "
          f"{during[len(during) // 2] * 1000:.1f} ms, max {during[-1] * 1000:.1f} ms; {len(before)} before the "
          f"first: median {before[len(before) // 2] * 1000:.1f} ms, max {before[-1] * 1000:.1f} ms); "
          f"widest gap between fills {widest_gap_s * 1000:.0f} ms")
    assert latency_s[-1] < MAX_FILL_S
    assert widest_gap_s < MAX_FILL_S
    session_types = [m.msg_type for _, m in trader.received() if m.msg_type in ("A", "5", "2", "3", "4")]
    assert session_types == ["A"], session_types
    seqs = [m.seq_num for _, m in trader.received()]
    assert seqs == list(range(1, len(seqs) + 1)), "a gap or a repeat in the first pair's sequence numbers"
    for name in ("client", "venue"):
        assert deployment.log(name).count("-> CONNECTED") == 1, f"{name} logged on more than once"
