"""A pair of brokers from the topology to the command line, the peer-state frame, and the monitor's follower.

No process is started: ``fixmesh broker`` is stopped at its ``exec`` and the command it would run is read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from actors.gateway import coordinator
from actors.gateway.bus import BrokerAddress
from actors.gateway.topology import ConfigError, load_topology
from actors.tools import broker_program
from actors.tools.monitor import BROKER_SILENCE_S, MIN_SWITCH_S, BrokerFollower, describe
from broker import protocol
from broker.protocol import PeerState, ProtocolError

SESSIONS = """
sessions:
  client: {role: handler, sender_comp_id: GW, target_comp_id: T, port: 9876}
  venue: {role: driven, sender_comp_id: GW, target_comp_id: V, port: 9877}
pairs:
  - {handler: client, driven: venue}
"""
PAIR = """
broker:
  router: tcp://127.0.0.1:5570
  xsub: tcp://127.0.0.1:5571
  xpub: tcp://127.0.0.1:5572
  peer: tcp://127.0.0.1:5573
  backup: {router: 'tcp://127.0.0.1:5580', xsub: 'tcp://127.0.0.1:5581', xpub: 'tcp://127.0.0.1:5582',
           peer: 'tcp://127.0.0.1:5583'}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return path


def test_a_pair_of_brokers_loads_and_clients_get_the_backups_endpoints(tmp_path: Path) -> None:
    topology = load_topology(write(tmp_path, PAIR + SESSIONS))
    broker = topology.broker
    assert broker.peer == "tcp://127.0.0.1:5573" and broker.backup is not None
    assert broker.backup.peer == "tcp://127.0.0.1:5583" and broker.backup.runs_on == "local"
    assert broker.backup_address == BrokerAddress("tcp://127.0.0.1:5580", "tcp://127.0.0.1:5581",
                                                  "tcp://127.0.0.1:5582")
    assert load_topology(write(tmp_path, SESSIONS)).broker.backup_address is None


@pytest.mark.parametrize(("change", "error"), [
    (("  peer: tcp://127.0.0.1:5573\n", ""), r"broker\.peer: missing; a pair of brokers needs broker\.peer"),
    (("  backup: {", "  other: {"), r"broker\.other: unknown key"),
    (("xpub: 'tcp://127.0.0.1:5582',\n", ""), r"broker\.backup\.xpub: missing"),
    (("'tcp://127.0.0.1:5583'", "'tcp://127.0.0.1:5570'"), r"broker\.backup: .* eight different endpoints"),
    (("'tcp://127.0.0.1:5580'", "'tcp://10.9.8.7:5580'"), r"broker\.backup\.router: tcp://10\.9\.8\.7:5580"),
    (("'tcp://127.0.0.1:5581'", "'udp://x'"), r"broker\.backup\.xsub: is 'udp://x'; expected a ZeroMQ endpoint"),
])
def test_a_pair_that_cannot_work_is_one_clear_error(tmp_path: Path, change: tuple[str, str], error: str) -> None:
    old, new = change
    assert old in PAIR
    with pytest.raises(ConfigError, match=error):
        load_topology(write(tmp_path, PAIR.replace(old, new) + SESSIONS))


def test_a_peer_without_a_backup_is_refused(tmp_path: Path) -> None:
    text = "broker: {peer: 'tcp://127.0.0.1:5573'}\n" + SESSIONS
    with pytest.raises(ConfigError, match=r"broker\.backup: missing; broker\.peer is only for a pair"):
        load_topology(write(tmp_path, text))


class Execd(Exception):
    def __init__(self, argv: list[str]) -> None:
        super().__init__(argv)
        self.argv = argv


def broker_argv(monkeypatch: pytest.MonkeyPatch, *args: str) -> list[str]:
    """The ``python -m broker`` arguments ``fixmesh broker`` would exec."""
    def execv(path: str, argv: list[str]) -> Any:
        raise Execd(argv)

    monkeypatch.setattr(os, "execv", execv)
    with pytest.raises(Execd) as done:
        broker_program.main(list(args))
    return done.value.argv[3:]


def test_fixmesh_broker_runs_the_primary_or_the_backup_of_the_pair(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    config = str(write(tmp_path, PAIR + SESSIONS))
    primary = broker_argv(monkeypatch, "--config", config)
    assert primary[:12] == ["--router", "tcp://127.0.0.1:5570", "--xsub", "tcp://127.0.0.1:5571",
                            "--xpub", "tcp://127.0.0.1:5572", "--role", "primary", "--peer-bind",
                            "tcp://127.0.0.1:5573", "--peer-connect", "tcp://127.0.0.1:5583"]
    backup = broker_argv(monkeypatch, "--config", config, "--backup")
    assert backup[:12] == ["--router", "tcp://127.0.0.1:5580", "--xsub", "tcp://127.0.0.1:5581",
                           "--xpub", "tcp://127.0.0.1:5582", "--role", "backup", "--peer-bind",
                           "tcp://127.0.0.1:5583", "--peer-connect", "tcp://127.0.0.1:5573"]
    alone = broker_argv(monkeypatch, "--config", str(write(tmp_path, SESSIONS)))
    assert "--role" not in alone


def test_fixmesh_broker_backup_without_a_backup_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert broker_program.main(["--config", str(write(tmp_path, SESSIONS)), "--backup"]) == 2
    assert "broker.backup: missing" in capsys.readouterr().err


def test_python_m_broker_needs_every_pair_option_or_none() -> None:
    from broker.__main__ import parse_args
    with pytest.raises(SystemExit):
        parse_args(["--role", "primary", "--peer-bind", "tcp://127.0.0.1:1"])
    args = parse_args(["--role", "backup", "--peer-bind", "tcp://127.0.0.1:1", "--peer-connect", "tcp://127.0.0.1:2"])
    assert args.role == "backup"


def test_a_second_coordinators_name_starts_with_coordinator_dash(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write(tmp_path, SESSIONS))
    assert coordinator.main(["--config", config, "--name", "boss"]) == 2
    assert coordinator.main(["--config", config, "--name", "coordinator-"]) == 2
    assert "coordinator-" in capsys.readouterr().err
    topology = load_topology(config)
    assert topology.bus is None  # the rights below are a bus with keys'; an open bus has none to check


def test_the_coordinators_key_may_use_a_second_coordinators_name(tmp_path: Path) -> None:
    from actors.tools.keys import main as keys_main
    keys = tmp_path / "keys"
    config = write(tmp_path, SESSIONS + "bus: {keys_dir: keys}\n")
    assert keys_main(["create", "--config", str(config)]) == 0
    assert keys.is_dir()
    rights = {p.name: p for p in load_topology(config).bus_principals()}
    coordinator_key = rights["coordinator"]
    assert coordinator_key.may_use("coordinator") and coordinator_key.may_use("coordinator-b")
    assert not coordinator_key.may_use("coordinatorx") and not coordinator_key.may_use("coordinator-")


def test_a_peer_state_round_trips_and_anything_else_is_refused() -> None:
    state = PeerState(protocol.ROLE_BACKUP, protocol.STATE_PASSIVE, "b1", "p1")
    assert PeerState.decode(state.encode()) == state
    for bad in (b"\xc1", PeerState("tertiary", "active", "x").encode(), PeerState("primary", "asleep", "x").encode()):
        with pytest.raises(ProtocolError):
            PeerState.decode(bad)


# ----------------------------------------------------------------- the monitor follows the active broker


def test_the_monitor_follows_the_broker_that_serves() -> None:
    follower = BrokerFollower(["tcp://p", "tcp://b"], 0.0)
    follower.heard("broker.heartbeat", {"state": "active"}, 1.0)
    assert follower.switch(1.0 + BROKER_SILENCE_S - 0.01) is None
    moved = follower.switch(1.0 + BROKER_SILENCE_S)
    assert moved is not None and "nothing from it" in moved and follower.endpoint == "tcp://b"
    now = 1.0 + BROKER_SILENCE_S
    follower.heard("broker.heartbeat", {"state": "passive"}, now + 0.01)
    assert follower.switch(now + 0.01) is None, "never twice within the minimum"
    moved = follower.switch(now + MIN_SWITCH_S)
    assert moved is not None and "it is passive" in moved and follower.endpoint == "tcp://p"
    follower.heard("session.venue.state", {"state": "passive"}, now + 1)  # a session's word is not the broker's
    assert follower.switch(now + 1.1) is None


def test_a_monitor_of_one_broker_never_moves() -> None:
    follower = BrokerFollower(["tcp://p"], 0.0)
    follower.heard("broker.heartbeat", {"state": "passive"}, 1.0)
    assert follower.next_deadline_s() is None and follower.switch(1000.0) is None


def test_the_monitor_reads_a_switch_as_one_sentence() -> None:
    body = {"actor": "broker", "instance": "6fb92bac457c7200", "role": "backup", "state": "active",
            "from": "passive", "to": "active", "why": "fail-over: a client came and the primary is silent"}
    assert describe("broker.switch", body) == ("backup broker 6fb92bac457c7200: passive -> active: fail-over: a "
                                               "client came and the primary is silent")
