"""The one view of every session (``fixmesh status``, the status page) and what the metrics program makes of it.

All pure: readings and a fake time in; rows, a table, the page's JSON and
the Prometheus text out. The ``/proc`` scan reads a fake ``/proc`` made in
the test's folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from actors.fix.states import SessionState as S
from actors.fix.timefmt import NS_PER_S, Instant
from actors.gateway.topology import Topology, load_topology
from actors.gateway.vocabulary import HistogramBody, SessionStats
from actors.tools.board import Board
from actors.tools.metrics import FAMILIES, PROCESS_FAMILIES, FixmeshCollector, ProcessScanner, cpu_seconds, identify
from actors.tools.overview import (
    CHANGING,
    DOWN,
    IDLE,
    NO_ANSWER,
    UNKNOWN,
    UP,
    USER_SIDE_DOWN,
    VENUE_SIDE_DOWN,
    pair_health,
    rows,
    table,
)

T_NS = 1_767_225_600 * NS_PER_S

TOPOLOGY = """\
broker: {router: "tcp://127.0.0.1:5570", xsub: "tcp://127.0.0.1:5571", xpub: "tcp://127.0.0.1:5572"}
sessions:
  client: {role: handler, sender_comp_id: GW, target_comp_id: TRADER, port: 9876}
  venue: {role: driven, sender_comp_id: GW, target_comp_id: VENUE, port: 9877}
  dropcopy: {role: acceptor, sender_comp_id: GW, target_comp_id: DC, port: 9878}
pairs:
  - {handler: client, driven: venue}
"""


@pytest.fixture
def topology(tmp_path: Path) -> Topology:
    path = tmp_path / "topology.yaml"
    path.write_text(TOPOLOGY)
    return load_topology(path)


def stats(state: S = S.CONNECTED, time_ns: int = T_NS, incarnation: str = "7-1", **changes: Any) -> SessionStats:
    fields: dict[str, Any] = dict(time_ns=time_ns, state=state, role="handler", pid=7, incarnation=incarnation,
                                  next_sender=12, next_target=10, remote_address="127.0.0.1:40000",
                                  logged_on_since_ns=T_NS - 90 * NS_PER_S, last_received_ns=T_NS - NS_PER_S,
                                  sent={"A": 1, "0": 3, "8": 10}, received={"D": 10})
    fields.update(changes)
    return SessionStats(**fields)


# ------------------------------------------------------------------ health and rows

HEALTH = [
    (S.CONNECTED, S.CONNECTED, UP),
    (S.DISCONNECTED, S.RECONNECTING, DOWN),
    (S.DISCONNECTED, S.DISCONNECTED, IDLE),
    (S.DISCONNECTED_ABNORMALLY, S.DISCONNECTED, DOWN),
    (S.DEAD, S.DEAD, DOWN),
    (S.CONNECTED, S.DISCONNECTED_ABNORMALLY, VENUE_SIDE_DOWN),
    (S.DISCONNECTED, S.CONNECTED, USER_SIDE_DOWN),
    (S.CONNECTED, S.CONNECTING, CHANGING),
    (S.WAITING_FOR_LOGOFF, S.CONNECTED, CHANGING),
    (None, S.CONNECTED, UNKNOWN),
    (S.CONNECTED, None, UNKNOWN),
]


@pytest.mark.parametrize(("handler", "driven", "health"), HEALTH)
def test_a_pairs_health_follows_its_halves(handler: S | None, driven: S | None, health: str) -> None:
    assert pair_health(handler, driven) == health


def test_every_session_of_the_topology_has_a_row_and_one_that_gave_no_reading_says_why(topology: Topology) -> None:
    found = rows(topology, {"client": stats(), "venue": "no answer within 2 s"})
    assert [(r.name, r.role, r.pair, r.state, r.health) for r in found] == [
        ("client", "handler", "client-venue", "CONNECTED", UNKNOWN),
        ("venue", "driven", "client-venue", NO_ANSWER, UNKNOWN),
        ("dropcopy", "acceptor", "", NO_ANSWER, ""),
    ]
    text = table(found, T_NS).splitlines()
    assert text[0].split()[:4] == ["SESSION", "ROLE", "PAIR", "STATE"]
    client = text[1].split()
    assert client[:5] == ["client", "handler", "client-venue", "CONNECTED", "12/10"]
    assert "127.0.0.1:40000" in client and "(1m30s)" in client and "1.0s" in client
    assert client[client.index("(1m30s)") + 1: client.index("(1m30s)") + 3] == ["10", "10"]  # app in, app out
    assert text[-2:] == ["venue: no answer within 2 s", "dropcopy: no answer"]


def test_json_rows_carry_the_table_and_the_whole_reading(topology: Topology) -> None:
    row = rows(topology, {"client": stats(), "venue": stats(S.CONNECTING)})[0].to_json()
    assert row["session"] == "client" and row["pair_health"] == CHANGING and row["messages_out"] == 10
    assert row["logged_on_since"] == "2025-12-31T23:58:30Z" and row["stats"]["sent"] == {"A": 1, "0": 3, "8": 10}


# ------------------------------------------------------------------ the board


def event(topic: str, body: dict[str, Any], actor: str = "client") -> tuple[str, dict[str, Any]]:
    return topic, {"actor": actor, **body}


def test_the_board_keeps_fresh_readings_rates_and_events(topology: Topology) -> None:
    board = Board(topology, stale_after_s=3.0)
    board.receive(*event("session.client.stats", stats(received={"D": 10}).to_body()), now_s=100.0)
    board.receive(*event("session.client.stats", stats(time_ns=T_NS + 2 * NS_PER_S, received={"D": 30}).to_body()),
                  now_s=102.0)
    board.receive(*event("session.client.state", {"time_ns": T_NS, "old": "LOGON_RECEIVED", "new": "CONNECTED",
                                                  "reason": "Logon accepted", "next_sender": 2, "next_target": 2}),
                  now_s=102.0)
    board.receive(*event("pair.client-venue.connect", {"time_ns": T_NS, "session": "venue", "cmd": "connect"},
                         actor="coordinator"), now_s=102.0)
    assert board.rates("client") == (10.0, 0.0)
    readings = board.readings(104.0)
    assert isinstance(readings["client"], SessionStats) and readings["venue"] == "no reading heard yet"
    assert board.readings(105.5)["client"] == "not reporting: last reading 4 s ago"

    page = board.page(Instant(104.0, T_NS + 3 * NS_PER_S))
    pair = page["pairs"][0]
    assert pair["name"] == "client-venue" and pair["health"] == UNKNOWN
    client = pair["handler"]
    assert (client["session"], client["state"], client["messages_in"], client["rate_in"]) == ("client", "CONNECTED",
                                                                                             30, 10.0)
    assert client["events"][0]["text"] == "LOGON_RECEIVED -> CONNECTED: Logon accepted (out 2, in 2)"
    assert pair["events"][0]["what"] == "connect"
    assert pair["driven"]["state"] == NO_ANSWER and [s["session"] for s in page["sessions"]] == ["dropcopy"]


def test_a_new_incarnation_starts_the_rates_again_and_a_down_actor_stops_counting(topology: Topology) -> None:
    board = Board(topology)
    board.receive(*event("session.venue.stats", stats(received={"D": 500}).to_body()), now_s=1.0)
    board.receive(*event("session.venue.stats", stats(time_ns=T_NS + NS_PER_S, received={"D": 5},
                                                      incarnation="8-1").to_body()), now_s=2.0)
    assert board.rates("venue") == (0.0, 0.0)  # not a negative rate across the restart
    board.receive(*event("actor.venue.down", {"time_ns": T_NS}, actor="venue"), now_s=2.5)
    assert board.fresh("venue", 2.5) is None
    board.receive(*event("session.venue.stats", {"state": "nonsense"}), now_s=3.0)
    assert board.malformed == 1


# ------------------------------------------------------------------ processes and the collector

ROUTER = "tcp://127.0.0.1:5570"


def test_processes_of_the_topology_are_known_by_their_command_lines(tmp_path: Path) -> None:
    topo = tmp_path / "t.yaml"
    topo.write_text("")
    venv = "/venv/bin/fixmesh"
    assert identify(["/venv/bin/python", venv, "session", "--config", str(topo), "--session", "client"], None, topo,
                    ROUTER) == ("session", "client")
    assert identify(["python", venv, "coordinator", "--config", "t.yaml"], tmp_path, topo, ROUTER) == (
        "coordinator", "coordinator")
    assert identify(["python", "-m", "broker", "--router", ROUTER, "--xsub", "x"], None, topo, ROUTER) == (
        "broker", "broker")
    assert identify(["python", "-m", "actors.cli", "metrics", f"--config={topo}"], None, topo, ROUTER) == (
        "metrics", "metrics")
    assert identify(["python", "-m", "broker", "--router", "tcp://127.0.0.1:1"], None, topo, ROUTER) is None
    assert identify(["python", venv, "session", "--config", "/other.yaml", "--session", "x"], None, topo,
                    ROUTER) is None
    assert identify(["bash"], None, topo, ROUTER) is None


def fake_proc(root: Path, pid: int, argv: list[str], utime: int, stime: int, rss_pages: int) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    fields = ["S", *["0"] * 10, str(utime), str(stime), *["0"] * 6, "4242", "0"]
    (d / "stat").write_text(f"{pid} (python3 (x)) {' '.join(fields)}\n")
    (d / "statm").write_text(f"1000 {rss_pages} 0 0 0 0 0\n")


def test_cpu_seconds_read_past_a_command_name_with_parentheses() -> None:
    fields = ["S", *["0"] * 10, "250", "150", *["0"] * 8]
    assert cpu_seconds(f"1 (a) b)) {' '.join(fields)}") == pytest.approx(400 / 100)


def test_the_collector_exports_this_hosts_sessions_and_processes(topology: Topology, tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    fixmesh = "/venv/bin/fixmesh"
    fake_proc(proc, 10, ["python", fixmesh, "session", "--config", str(topology.path), "--session", "client"],
              100, 50, 1000)
    fake_proc(proc, 11, ["python", "-m", "broker", "--router", topology.broker.router], 10, 0, 500)
    fake_proc(proc, 12, ["python", fixmesh, "session", "--config", "/elsewhere.yaml", "--session", "venue"], 1, 1, 1)
    board = Board(topology)
    latency = HistogramBody((0.001, 0.01), (5, 2, 1), 0.05, 8)
    board.receive(*event("session.client.stats", stats(
        forward_latency=latency, rejects={"sent": {"required_tag_missing": 2}}, queues={"outbox": 3},
        events={"gap": 1}, logons=1, tls_expires_s=1_830_000_000).to_body()), now_s=50.0)
    board.receive(*event("session.venue.stats", stats().to_body(), actor="venue"), now_s=50.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FixmeshCollector(board, ProcessScanner(topology, proc), now=lambda: Instant(51.0, T_NS)))
    text = generate_latest(registry).decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}

    def value(family: str, **labels: str) -> float:
        return samples[(family, tuple(sorted(labels.items())))]

    assert value("fixmesh_session_up", session="client") == 1
    assert not any(labels and dict(labels).get("session") == "venue" for _, labels in samples)  # not this host's
    assert value("fixmesh_messages_received_total", session="client", msg_type="D") == 10
    assert value("fixmesh_messages_sent_total", session="client", msg_type="8") == 10
    assert value("fixmesh_session_state", session="client", state="CONNECTED") == 1
    assert value("fixmesh_session_state", session="client", state="DISCONNECTED") == 0
    assert value("fixmesh_rejects_total", session="client", direction="sent", reason="required_tag_missing") == 2
    assert value("fixmesh_bus_queue_depth", session="client", queue="outbox") == 3
    assert value("fixmesh_session_tls_expiry_timestamp_seconds", session="client") == 1_830_000_000
    assert value("fixmesh_forward_latency_seconds_bucket", session="client", le="0.01") == 7
    assert value("fixmesh_forward_latency_seconds_bucket", session="client", le="+Inf") == 8
    assert value("fixmesh_forward_latency_seconds_count", session="client") == 8
    assert value("fixmesh_session_next_sender_seqnum", session="client") == 12
    assert value("fixmesh_process_cpu_seconds_total", program="session", name="client") == pytest.approx(1.5)
    assert value("fixmesh_process_resident_memory_bytes", program="broker", name="broker") > 0
    assert ("fixmesh_process_cpu_seconds_total", (("name", "venue"), ("program", "session"))) not in samples

    # With every session exported, the other one shows too; a stale reading leaves only "up 0".
    everything = CollectorRegistry(auto_describe=False)
    everything.register(FixmeshCollector(board, ProcessScanner(topology, proc), "all",
                                         now=lambda: Instant(60.0, T_NS)))
    later = generate_latest(everything).decode()
    assert 'fixmesh_session_up{session="venue"} 0.0' in later and "fixmesh_messages_sent_total{" not in later


def test_every_family_follows_the_naming_conventions() -> None:
    for name, kind, _, _ in FAMILIES:
        assert name.startswith("fixmesh_")
        assert name.endswith("_total") == (kind == "counter"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name


def test_the_grafana_dashboard_asks_only_for_metrics_the_endpoint_exports() -> None:
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json").read_text())
    exported = {name for name, _, _, _ in FAMILIES} | {name for name, _, _ in PROCESS_FAMILIES}
    histograms = {name for name, kind, _, _ in FAMILIES if kind == "histogram"}
    exported |= {f"{h}{suffix}" for h in histograms for suffix in ("_bucket", "_sum", "_count")}
    asked = {name for panel in dashboard["panels"] for target in panel.get("targets", [])
             for name in re.findall(r"\bfixmesh_[a-z_]+", target["expr"])}
    assert asked and asked <= exported, asked - exported


def test_the_monitor_shows_a_reading_in_one_line() -> None:
    from actors.tools.monitor import describe

    body = stats(cpu_s=1.25, rss_bytes=41 << 20).to_body()
    assert describe("session.client.stats", body) == (
        "CONNECTED: sent 14 received 10, cpu 1.2 s, rss 41 MiB (out 12, in 10)")
    assert describe("session.client.stats", {"time_ns": 1, "actor": "client", "odd": 1}) == "actor=client odd=1"
