"""Hosts and placement in the topology, and ``fixmesh deploy``: render and check.

The committed ``supervisord.conf`` is the rendering of ``deploy/topology.yaml``
for its one host; a placement mistake is one error naming the file, the key
and the fix; a rendering holds exactly the host's programs, started through
``fixmesh``; ``check`` connects to each bus endpoint and finds a host's keys.
"""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest

from actors.gateway.topology import LOCAL_HOST, ConfigError, load_topology
from actors.tools import deploy, keys
from actors.tools.deploy import RenderOptions, programs_on, render
from tests.interop import free_ports, listening_on

ROOT = Path(__file__).resolve().parents[2]

THREE_HOSTS = """
hosts:
  a: {address: 198.18.0.1}
  b: {address: 198.18.0.2}
  c: {address: 198.18.0.3}
broker: {runs_on: a, router: 'tcp://198.18.0.1:5570', xsub: 'tcp://198.18.0.1:5571', xpub: 'tcp://198.18.0.1:5572'}
bus: {keys_dir: keys, subscribers: [watcher]}
sessions:
  client: {role: handler, runs_on: b, sender_comp_id: GW, target_comp_id: T, host: 198.18.0.2, port: 9876}
  venue: {role: driven, runs_on: c, sender_comp_id: GW, target_comp_id: V, host: 198.18.0.9, port: 9877}
pairs:
  - {handler: client, driven: venue}
programs:
  coordinator: {runs_on: a}
  monitor: {runs_on: a, key: watcher}
  venue-sim: {runs_on: c, command: venue-sim --port 9877, priority: 5}
"""

ONE_HOST = """
sessions:
  client: {role: handler, sender_comp_id: GW, target_comp_id: T, port: 9876}
  venue: {role: driven, sender_comp_id: GW, target_comp_id: V, port: 9877}
pairs:
  - {handler: client, driven: venue}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------- the demo


def test_the_committed_supervisord_conf_is_the_rendered_demo_topology() -> None:
    topology = load_topology(ROOT / "deploy" / "topology.yaml")
    rendered = render(topology, LOCAL_HOST, RenderOptions(config="deploy/topology.yaml"))
    committed = (ROOT / "supervisord.conf").read_text(encoding="utf-8")
    assert committed == rendered, ("supervisord.conf differs from its rendering; run: fixmesh deploy render "
                                   "--config deploy/topology.yaml --host local --out supervisord.conf")


def test_the_demo_runs_every_program_on_its_one_host_through_fixmesh() -> None:
    topology = load_topology(ROOT / "deploy" / "topology.yaml")
    programs = {p.name: p for p in programs_on(topology, LOCAL_HOST, "deploy/topology.yaml")}
    assert list(programs) == ["broker", "client", "venue", "coordinator", "monitor", "venue-sim"]
    assert programs["broker"].args == ("broker", "--config", "deploy/topology.yaml")
    assert programs["client"].args == ("session", "--config", "deploy/topology.yaml", "--session", "client")
    assert programs["venue-sim"].priority < programs["broker"].priority < programs["client"].priority
    assert programs["client"].priority < programs["coordinator"].priority < programs["monitor"].priority


# --------------------------------------------------------------------- placement


def test_without_hosts_everything_runs_on_one_local_host(tmp_path: Path) -> None:
    topology = load_topology(write(tmp_path, ONE_HOST))
    assert list(topology.hosts) == [LOCAL_HOST] and topology.hosts[LOCAL_HOST].address == "127.0.0.1"
    assert topology.broker.runs_on == LOCAL_HOST
    assert {s.runs_on for s in topology.sessions.values()} == {LOCAL_HOST}
    assert list(topology.programs) == ["coordinator"]  # the pair needs it; on one host it needs no placing
    assert topology.programs["coordinator"].runs_on == (LOCAL_HOST,)


def test_without_hosts_the_bus_may_bind_a_reachable_address_with_keys(tmp_path: Path) -> None:
    """As before ``hosts:`` existed: the one implicit host does not pin the broker's endpoints to loopback."""
    broker = "broker: {router: 'tcp://198.18.0.7:5570', xsub: 'tcp://198.18.0.7:5571', xpub: 'tcp://198.18.0.7:5572'}\n"
    topology = load_topology(write(tmp_path, broker + "bus: {keys_dir: keys}\n" + ONE_HOST))
    assert topology.broker.runs_on == LOCAL_HOST
    with pytest.raises(ConfigError, match="broker.router: tcp://198.18.0.7:5570 is not a loopback address"):
        load_topology(write(tmp_path, broker + ONE_HOST))


def test_three_hosts_place_each_program_on_its_host(tmp_path: Path) -> None:
    topology = load_topology(write(tmp_path, THREE_HOSTS))
    placed = {host: [p.name for p in programs_on(topology, host, "t.yaml")] for host in topology.hosts}
    assert placed == {"a": ["broker", "coordinator", "monitor"], "b": ["client"], "c": ["venue", "venue-sim"]}


@pytest.mark.parametrize(("change", "message"), [
    (("runs_on: b,", "runs_on: bb,"), "sessions.client.runs_on: no host named 'bb' (the hosts are a, b, c); "
                                      "did you mean 'b'?"),
    (("runs_on: b,", ""), "sessions.client.runs_on: missing; with several hosts (a, b, c) every program says "
                          "where it runs: add runs_on: HOST"),
    (("broker: {runs_on: a, ", "broker: {"), "broker.runs_on: missing"),
    (("xpub: 'tcp://198.18.0.1:5572'", "xpub: 'tcp://198.18.0.2:5572'"),
     "broker.xpub: tcp://198.18.0.2:5572 is not on a (198.18.0.1), the host the broker runs_on; the broker binds "
     "it there and every other host connects to it there: use tcp://198.18.0.1:5572"),
    (("router: 'tcp://198.18.0.1:5570'", "router: 'tcp://127.0.0.1:5570'"),
     "broker.router: tcp://127.0.0.1:5570 is not on a (198.18.0.1)"),
    (("router: 'tcp://198.18.0.1:5570'", "router: 'ipc:///tmp/bus'"),
     "broker.router: ipc:///tmp/bus is a local socket, which the other hosts cannot reach"),
    (("  coordinator: {runs_on: a}\n", ""),
     "programs.coordinator: missing; the topology has pairs, so the coordinator runs on one of the hosts (a, b, c): "
     "add programs: {coordinator: {runs_on: HOST}}"),
    (("monitor: {runs_on: a, key: watcher}", "monitor: {key: watcher}"), "programs.monitor.runs_on: missing"),
    (("monitor: {runs_on: a, key: watcher}", "monitor: {runs_on: a}"),
     "programs.monitor.key: missing; on a bus with keys the monitor reads events with a key that may"),
    (("monitor: {runs_on: a, key: watcher}", "monitor: {runs_on: a, key: client}"),
     "programs.monitor.key: 'client' is not listed under bus.subscribers or bus.operators"),
    (("venue-sim: {runs_on: c, command: venue-sim --port 9877, priority: 5}", "venue-sim: {runs_on: c}"),
     "programs.venue-sim.command: missing; venue-sim is not one of coordinator, listener, monitor"),
    (("command: venue-sim --port 9877", "command: fixmesh venue-sim --port 9877"),
     "programs.venue-sim.command: write the command without the leading 'fixmesh'"),
    (("venue-sim: {runs_on: c,", "client: {runs_on: c,"),
     "programs.client: is already the name of session client, and supervisord names each program once"),
    (("venue-sim: {runs_on: c,", "broker: {runs_on: c,"), "programs.broker: is already the name of the broker"),
    (("c: {address: 198.18.0.3}", "c: {address: 198.18.0.2}"),
     "hosts.c.address: 198.18.0.2 is already the address of hosts.b; each host has an address of its own"),
    (("c: {address: 198.18.0.3}", "c: {address: gw-c}"), "hosts.c.address: is 'gw-c'; expected an IP address"),
    (("c: {address: 198.18.0.3}", "c: {address: 0.0.0.0}"), "hosts.c.address: is 0.0.0.0, which names no host"),
    (("c: {address: 198.18.0.3}", "c: {adress: 198.18.0.3}"), "hosts.c.adress: unknown key; did you mean 'address'?"),
    (("host: 198.18.0.2, port: 9876", "host: 198.18.0.3, port: 9876"),
     "sessions.client.host: 198.18.0.3 is the address of host c, but the session runs_on b; an acceptor listens on "
     "its own host: use 198.18.0.2 (or 0.0.0.0), or move the session with runs_on: c"),
    (("bus: {keys_dir: keys, subscribers: [watcher]}\n", ""),
     "broker.router: tcp://198.18.0.1:5570 is not a loopback address, and a bus between hosts refuses to start "
     "without keys"),
    (("key: watcher", "key: watcher, command: monitor --json"), None),
    (("programs:", "programz:"), "programz: unknown key; did you mean 'programs'?"),
    (("coordinator: {runs_on: a}", "coordinator: {runs_on: [a, b]}"),
     "programs.coordinator.runs_on: is ['a', 'b']; expected the name of a host under hosts: (the coordinator runs "
     "on one host)"),
    (("monitor: {runs_on: a, key: watcher}", "monitor: {runs_on: [a, a], key: watcher}"),
     "programs.monitor.runs_on: is ['a', 'a']; expected a host name, or a list of distinct host names"),
    (("monitor: {runs_on: a, key: watcher}", "monitor: {runs_on: [a, d], key: watcher}"),
     "programs.monitor.runs_on[1]: no host named 'd'"),
    (("monitor: {runs_on: a, key: watcher}", "metrics: {runs_on: [a, b]}"),
     "programs.metrics.key: missing; on a bus with keys the metrics reads events with a key that may"),
    (("venue-sim: {runs_on: c, command: venue-sim --port 9877, priority: 5}",
      "venue-sim: {runs_on: c, command: venue-sim --port 9877, key: watcher}"),
     "programs.venue-sim.key: only monitor and metrics join the bus with a key named here; remove it"),
])
def test_a_placement_mistake_names_the_file_the_key_and_the_fix(
        tmp_path: Path, change: tuple[str, str], message: str | None) -> None:
    old, new = change
    assert old in THREE_HOSTS
    path = write(tmp_path, THREE_HOSTS.replace(old, new))
    if message is None:
        load_topology(path)
        return
    with pytest.raises(ConfigError) as caught:
        load_topology(path)
    assert str(caught.value).startswith(f"{path}: {message}"), str(caught.value)


def test_hosts_that_are_not_loopback_need_a_bus_with_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts: {gw: {address: 198.18.0.1}}\n" + ONE_HOST)
    with pytest.raises(ConfigError, match=r"hosts.gw.address: 198.18.0.1 is not a loopback address, and a bus "
                                          r"between hosts refuses to start without keys"):
        load_topology(path)
    topology = load_topology(write(tmp_path, "hosts: {gw: {address: 127.0.0.1}}\n" + ONE_HOST))
    assert topology.broker.runs_on == "gw"  # one named host on loopback: no runs_on anywhere


def test_metrics_may_run_on_every_host_with_its_key(tmp_path: Path) -> None:
    text = THREE_HOSTS + "  metrics: {runs_on: [a, b, c], key: watcher}\n"
    topology = load_topology(write(tmp_path, text))
    for host in ("a", "b", "c"):
        metrics = [p for p in programs_on(topology, host, "t.yaml") if p.name == "metrics"]
        assert len(metrics) == 1 and metrics[0].args == ("metrics", "--config", "t.yaml", "--key", "watcher")
        assert metrics[0].bus_key == "watcher"


def test_sessions_sharing_a_port_run_where_the_listener_does(tmp_path: Path) -> None:
    text = """
hosts: {a: {address: 198.18.0.1}, b: {address: 198.18.0.2}}
broker: {runs_on: a, router: 'tcp://198.18.0.1:5570', xsub: 'tcp://198.18.0.1:5571', xpub: 'tcp://198.18.0.1:5572'}
bus: {keys_dir: keys}
sessions:
  desk1: {role: handler, runs_on: b, sender_comp_id: GW, target_comp_id: T, session_qualifier: d1, port: 9876}
  desk2: {role: handler, runs_on: a, sender_comp_id: GW, target_comp_id: T, session_qualifier: d2, port: 9876}
programs:
  listener: {runs_on: b}
"""
    with pytest.raises(ConfigError, match=r"sessions.desk2.runs_on: the session shares 127.0.0.1:9876 with desk1, "
                                          r"whose connections the listener hands over a Unix socket on its own "
                                          r"host, b; put the session on b"):
        load_topology(write(tmp_path, text))
    placed = load_topology(write(tmp_path, text.replace("runs_on: a, sender", "runs_on: b, sender")))
    assert [p.name for p in programs_on(placed, "b", "t.yaml")] == ["desk1", "desk2", "listener"]
    with pytest.raises(ConfigError, match=r"programs.listener: missing; sessions share a port"):
        load_topology(write(tmp_path, text.replace("  listener: {runs_on: b}\n", "")))


# --------------------------------------------------------------------- render


def test_a_host_renders_to_a_supervisord_configuration_of_its_programs_only(tmp_path: Path) -> None:
    topology = load_topology(write(tmp_path, THREE_HOSTS))
    options = RenderOptions(config="/srv/fixmesh/topology.yaml", root="/srv/fixmesh", fixmesh="/opt/fm/bin/fixmesh",
                            user="fixmesh")
    text = render(topology, "c", options)
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    assert parser.sections() == ["supervisord", "unix_http_server", "supervisorctl", "rpcinterface:supervisor",
                                 "program:venue", "program:venue-sim"]
    assert parser["supervisord"]["user"] == "fixmesh"
    assert parser["unix_http_server"]["password"] == "%(ENV_FIXMESH_SUPERVISOR_PASSWORD)s"
    assert parser["supervisorctl"]["username"] == parser["unix_http_server"]["username"]
    venue = parser["program:venue"]
    assert venue["command"] == "/opt/fm/bin/fixmesh session --config /srv/fixmesh/topology.yaml --session venue"
    assert venue["directory"] == "/srv/fixmesh" and venue["stdout_logfile"] == "/srv/fixmesh/var/log/venue.log"
    assert venue["autorestart"] == "true" and int(venue["stopwaitsecs"]) >= 10
    assert parser["program:venue-sim"]["command"] == "/opt/fm/bin/fixmesh venue-sim --port 9877"
    assert parser["program:venue-sim"]["priority"] == "5"
    a = configparser.RawConfigParser()
    a.read_string(render(topology, "a", options))
    assert a["program:monitor"]["command"].endswith("monitor --config /srv/fixmesh/topology.yaml --key watcher")
    assert a["program:broker"]["priority"] < a["program:coordinator"]["priority"]
    with pytest.raises(ConfigError, match="hosts: no host named 'd'"):
        render(topology, "d", options)


def test_a_percent_sign_is_escaped_for_supervisord_and_odd_paths_are_quoted(tmp_path: Path) -> None:
    topology = load_topology(write(tmp_path, ONE_HOST))
    text = render(topology, LOCAL_HOST, RenderOptions(config="my deploy/100%.yaml"))
    assert "command=fixmesh broker --config 'my deploy/100%%.yaml'" in text


def test_a_backup_broker_renders_on_its_own_host(tmp_path: Path) -> None:
    """``broker.backup`` (a pair of brokers) runs ``fixmesh broker --config T --backup`` on the backup's host."""
    pair = ("broker: {runs_on: a, router: 'tcp://198.18.0.1:5570', xsub: 'tcp://198.18.0.1:5571', "
            "xpub: 'tcp://198.18.0.1:5572', peer: 'tcp://198.18.0.1:5573',\n"
            "         backup: {runs_on: b, router: 'tcp://198.18.0.2:5570', xsub: 'tcp://198.18.0.2:5571', "
            "xpub: 'tcp://198.18.0.2:5572', peer: 'tcp://198.18.0.2:5573'}}")
    one = THREE_HOSTS.splitlines()[5]
    assert one.startswith("broker:")
    topology = load_topology(write(tmp_path, THREE_HOSTS.replace(one, pair)))
    programs = {p.name: p for p in programs_on(topology, "b", "t.yaml")}
    assert programs["broker-backup"].args == ("broker", "--config", "t.yaml", "--backup")
    assert programs["broker-backup"].priority < programs["client"].priority
    assert "broker-backup" not in [p.name for p in programs_on(topology, "a", "t.yaml")]
    with pytest.raises(ConfigError, match=r"broker.backup.router: tcp://198.18.0.2:5570 is not on c \(198.18.0.3\)"):
        load_topology(write(tmp_path, THREE_HOSTS.replace(one, pair.replace("backup: {runs_on: b", "backup: "
                                                                               "{runs_on: c"))))


def test_render_all_writes_one_file_per_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, THREE_HOSTS)
    assert deploy.main(["render", "--config", str(path), "--all", "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.conf", "b.conf", "c.conf"]
    assert "host b (198.18.0.2): client" in capsys.readouterr().out
    assert deploy.main(["render", "--config", str(path), "--host", "x"]) == 2
    assert "no host named 'x'" in capsys.readouterr().err


# --------------------------------------------------------------------- check


def test_check_connects_to_each_bus_endpoint_and_fails_on_one_that_is_down(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    router, xsub, xpub = free_ports(3)
    path = write(tmp_path, f"broker: {{router: 'tcp://127.0.0.1:{router}', xsub: 'tcp://127.0.0.1:{xsub}', "
                           f"xpub: 'tcp://127.0.0.1:{xpub}'}}\n" + ONE_HOST)
    with listening_on((router, xsub)):
        assert deploy.main(["check", "--config", str(path), "--host", LOCAL_HOST, "--timeout-s", "1"]) == 1
        out = capsys.readouterr().out
        assert f"router tcp://127.0.0.1:{router}  reachable (" in out
        assert f"xpub   tcp://127.0.0.1:{xpub}  UNREACHABLE: Connection refused" in out
        assert "host local (127.0.0.1): broker, client, venue, coordinator" in out
        assert "PROBLEM: broker.xpub" in out and out.rstrip().endswith("1 problem(s)")
        with listening_on((xpub,)):
            assert deploy.main(["check", "--config", str(path), "--timeout-s", "1"]) == 0
            assert capsys.readouterr().out.rstrip().endswith("OK")


def test_check_finds_a_hosts_missing_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ports = free_ports(3)
    text = (ONE_HOST + "bus: {keys_dir: keys}\n" +
            "broker: {" + ", ".join(f"{k}: 'tcp://127.0.0.1:{p}'" for k, p in zip(("router", "xsub", "xpub"), ports,
                                                                                 strict=True)) + "}\n")
    path = write(tmp_path, text)
    for name in ("broker", "client", "venue", "coordinator"):
        keys.create(tmp_path / "keys", name)
    (tmp_path / "keys" / "venue.key_secret").unlink()
    with listening_on(ports):
        assert deploy.main(["check", "--config", str(path), "--host", LOCAL_HOST]) == 1
    out = capsys.readouterr().out
    assert "client: the key pair client and the broker's public key" in out
    assert "broker: its key pair and the public keys of 3 principal(s)" in out
    assert "PROBLEM: venue:" in out and "venue.key_secret" in out, out


def test_fixmesh_deploy_is_a_command() -> None:
    import subprocess

    done = subprocess.run([str(Path(sys.executable).parent / "fixmesh"), "deploy", "render", "--config",
                           str(ROOT / "deploy" / "topology.yaml"), "--host", LOCAL_HOST],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "[program:broker]" in done.stdout, done.stderr
