"""A whole gateway under a real supervisord, for system tests.

``Gateway`` writes a topology (one Handler/Driven pair on free loopback
ports, and the programs a test asks for) and starts supervisord with the
configuration ``fixmesh deploy render`` writes for it (``actors/tools/deploy.py``),
so a test runs what an operator runs: every program through
``fixmesh <command> --config <the topology>``, the same priorities, stop
times, restarts and log files. supervisord is a child of the test; the gateway
asks it for states and pids over its XML-RPC socket (``bench/supervisor_rpc.py``)
and runs commands through supervisorctl. The FIX counterparties
(trader and venue) are started by the tests themselves, outside supervisord.

Where a test departs from the rendering, ``_supervisord_conf`` says so: it
keeps only the programs the test asks for (a one-host topology with pairs
always places a coordinator), leaves the programs of a "lost host" stopped
(``no_restart``), leaves the programs of a host that comes up later to the
test (``held``), and may start the Handler under a lower descriptor limit
(``client_nofile``).
"""

from __future__ import annotations

import configparser
import io
import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from actors.gateway.topology import LOCAL_HOST, load_topology
from actors.tools.deploy import PASSWORD_ENV, RenderOptions, render
from bench.supervisor_rpc import Supervisor
from tests.interop import Child, Children, free_ports, wait_until

FIXMESH = Path(sys.executable).parent / "fixmesh"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: supervisorctl's password (the rendered configuration reads it from the environment, as on a real host).
PASSWORD = "gateway-test"

TOPOLOGY = """\
broker:
  router: tcp://127.0.0.1:{router}
  xsub: tcp://127.0.0.1:{xsub}
  xpub: tcp://127.0.0.1:{xpub}
defaults:
  heartbeat_interval: {heartbeat}
  store: {{path: {store}, durability: batch}}
sessions:
  client: {{role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER, port: {handler_port}{client_extra}}}
  venue: {{role: driven, sender_comp_id: GATEWAY, target_comp_id: VENUE, port: {venue_port},
          reconnect_interval: 0.5, connect_on_start: {connect_on_start}{patience}{venue_extra}}}
pairs:
  - {{handler: client, driven: venue}}
"""

SECURE_BUS = """\
bus:
  keys_dir: keys
  operators: [ops]
  subscribers: [watcher]
"""

#: ``backup_broker``: the brokers are a pair (docs/bus.md), both on this host.
BACKUP_BROKER = """\
broker:
  peer: tcp://127.0.0.1:{peer}
  backup: {{router: 'tcp://127.0.0.1:{router}', xsub: 'tcp://127.0.0.1:{xsub}', xpub: 'tcp://127.0.0.1:{xpub}',
           peer: 'tcp://127.0.0.1:{backup_peer}'}}
"""

#: The programs besides the broker(s) and the sessions, as ``programs:`` entries of the topology.
PROGRAMS = """\
programs:
  monitor: {{command: '{monitor}'}}
  coordinator: {{command: 'coordinator --config {topology} --driven-grace-s 5'}}
"""
METRICS = "  metrics: {{command: 'metrics --config {topology} --listen 127.0.0.1:{port}{key}'}}\n"
SECOND_COORDINATOR = ("  coordinator-b: {{command: 'coordinator --config {topology} --driven-grace-s 5 "
                      "--name coordinator-b'}}\n")


#: Programs that say nothing of themselves on the bus (``Gateway.start`` waits until the monitor heard the others).
NOT_ACTORS = ("broker", "broker-backup", "monitor", "metrics")


@dataclass(frozen=True)
class Ports:
    router: int
    xsub: int
    xpub: int
    handler: int
    venue: int


class Gateway:
    def __init__(self, directory: Path, children: Children, heartbeat_s: int = 30, *, coordinator: bool = False,
                 client_extra: str = "", venue_extra: str = "", client_nofile: int | None = None,
                 secure: bool = False, metrics: bool = False, backup_broker: bool = False,
                 second_coordinator: bool = False, no_restart: tuple[str, ...] = (),
                 held: tuple[str, ...] = ()) -> None:
        """``coordinator``: run the coordinator too (the Driven then connects only when told to);
        ``backup_broker``: a pair of brokers, ``broker`` the primary and ``broker-backup``; every program
        follows the active one. ``second_coordinator``: ``coordinator-b`` too (with ``coordinator``).
        ``no_restart``: programs supervisord does not restart (a lost host stays lost);
        ``held``: programs supervisord does not start with the others (a host that comes up later):
        ``start`` does not wait for them, the test starts them (``ctl("start", name)``);
        ``client_extra`` / ``venue_extra``: more settings of each session, as ``, key: value`` YAML;
        ``client_nofile``: the Handler runs with this RLIMIT_NOFILE (soft and hard, as ``ulimit -n``)."""
        self.client_nofile = client_nofile
        self.actors = ("broker", "client", "venue", "monitor") + (("coordinator",) if coordinator else ()) \
            + (("metrics",) if metrics else ()) + (("broker-backup",) if backup_broker else ()) \
            + (("coordinator-b",) if second_coordinator else ())
        self.backup_broker = backup_broker
        self.no_restart = no_restart
        self.held = held
        #: ``metrics``: run ``fixmesh metrics`` too (Prometheus endpoint and status page) on this port.
        self.metrics_port = free_ports(1)[0] if metrics else 0
        self.dir = directory
        self.children = children
        #: Where the rendered configuration puts supervisord's log and each program's (``var/log/NAME.log``).
        self.logs = directory / "var" / "log"
        self.logs.mkdir(parents=True, exist_ok=True)
        ports = free_ports(10)
        self.ports = Ports(*ports[:5])
        #: The backup broker's router, xsub, xpub and peer, and the primary's peer (``backup_broker``).
        self.backup_ports = ports[5:]
        self.topology = directory / "topology.yaml"
        # Without a coordinator the Driven connects at start and nobody tells it to try again once it gave up,
        # while the test starts the venue only after the gateway runs (a QuickFIX venue takes seconds to listen
        # on a busy machine): it keeps trying, unless the test sets its own budget.
        patience = "" if coordinator or "reconnect_max_tries" in venue_extra else ", reconnect_max_tries: unlimited"
        self.topology.write_text(TOPOLOGY.format(
            router=self.ports.router, xsub=self.ports.xsub, xpub=self.ports.xpub, heartbeat=heartbeat_s,
            store=directory / "store", handler_port=self.ports.handler, venue_port=self.ports.venue,
            connect_on_start="false" if coordinator else "true", patience=patience, client_extra=client_extra,
            venue_extra=venue_extra))
        if backup_broker:
            router, xsub, xpub, backup_peer, peer = self.backup_ports
            text = self.topology.read_text().replace("broker:\n", BACKUP_BROKER.format(
                peer=peer, router=router, xsub=xsub, xpub=xpub, backup_peer=backup_peer), 1)
            self.topology.write_text(text)
        #: ``secure``: a bus with keys (docs/bus.md), every key made by `fixmesh keys create --config`; the
        #: broker starts from the topology, the monitor reads with the key ``watcher``, ``ops`` is an operator.
        self.secure = secure
        if secure:
            with self.topology.open("a", encoding="utf-8") as topology:
                topology.write(SECURE_BUS)
            made = subprocess.run([str(FIXMESH), "keys", "create", "--config", str(self.topology)],
                                  capture_output=True, text=True, timeout=30)
            assert made.returncode == 0, made.stderr
        key = " --key watcher" if secure else ""
        monitor = f"monitor --json --config {self.topology}{key} --silence-s 1.3"
        programs = PROGRAMS.format(monitor=monitor, topology=self.topology)
        if metrics:
            programs += METRICS.format(topology=self.topology, port=self.metrics_port, key=key)
        if second_coordinator:
            programs += SECOND_COORDINATOR.format(topology=self.topology)
        with self.topology.open("a", encoding="utf-8") as topology:
            topology.write(programs)
        self.conf = directory / "supervisord.conf"
        self.conf.write_text(self._supervisord_conf())
        self.supervisord: Child | None = None
        #: Questions to supervisord (states, pids, the stop) over its socket; ``ctl`` runs supervisorctl commands.
        self.supervisor = Supervisor(directory / "var" / "supervisor.sock", PASSWORD)

    def _supervisord_conf(self) -> str:
        """What ``fixmesh deploy render --config T --host local --root DIR`` writes, with the test's departures.

        Only the programs of ``actors`` are kept (the loader places a coordinator on a one-host topology with
        pairs, but tests without ``coordinator`` let the Driven connect at start with no one to log it out);
        ``no_restart`` programs get ``autorestart=false`` and ``held`` ones ``autostart=false``;
        ``client_nofile`` starts the Handler through a shell that lowers its limit first (and execs it, so
        supervisord's pid is the actor's).
        """
        options = RenderOptions(config=str(self.topology), root=str(self.dir), fixmesh=str(FIXMESH))
        conf = configparser.ConfigParser(interpolation=None)  # the rendering's %(ENV_...)s stay for supervisord
        conf.read_string(render(load_topology(self.topology), LOCAL_HOST, options))
        rendered = {section.removeprefix("program:") for section in conf.sections() if section.startswith("program:")}
        assert set(self.actors) <= rendered, f"not in the rendering: {set(self.actors) - rendered}"
        for name in rendered - set(self.actors):
            conf.remove_section(f"program:{name}")
        for name in self.no_restart:
            conf[f"program:{name}"]["autorestart"] = "false"
        for name in self.held:
            conf[f"program:{name}"]["autostart"] = "false"
        if self.client_nofile is not None:
            client = conf["program:client"]
            client["command"] = f'/bin/sh -c "ulimit -n {self.client_nofile} && exec {client["command"]}"'
        text = io.StringIO()
        conf.write(text)
        return text.getvalue()

    def env(self) -> dict[str, str]:
        """supervisord's and supervisorctl's environment: the socket's password, as on a deployed host, and this
        checkout first on the import path, so the programs run this tree's code whatever checkout the ``fixmesh``
        command was installed from."""
        path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, PASSWORD_ENV: PASSWORD, "PYTHONPATH": path}

    def start(self) -> None:
        self.supervisord = self.children.start(
            "supervisord", [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(self.conf)], env=self.env())
        wait_until(self._all_running, 30, "all programs RUNNING", self.children)
        wait_until(self._all_heard, 30, "every actor heard on the bus by the monitor (and the metrics program)",
                   self.children)

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _all_running(self) -> bool:
        states = self.supervisor.states()
        return all(states.get(n, ("UNKNOWN", 0))[0] == "RUNNING" for n in self.actors if n not in self.held)

    def _all_heard(self) -> bool:
        """Every program at work, not only alive for supervisord's ``startsecs``: the monitor printed an event of
        each actor (so it is subscribed, the broker runs, and a Handler, which listens before it says hello on the
        bus, listens), and the metrics program shows each session's counters (so it is subscribed too)."""
        actors = [n for n in self.actors if n not in self.held and n not in NOT_ACTORS]
        heard = {str(e.get("topic", "")).split(".")[1] for e in self.events()
                 if str(e.get("topic", "")).startswith("actor.")}
        if not set(actors) <= heard:
            return False
        if not self.metrics_port:
            return True
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
                page = response.read().decode()
        except OSError:
            return False
        return all(f'fixmesh_session_up{{session="{n}"}} 1.0' in page for n in ("client", "venue")
                   if n not in self.held)

    def ctl(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args],
                                capture_output=True, text=True, timeout=30, env=self.env())
        return result.stdout.strip()

    def state(self, name: str) -> str:
        return self.supervisor.states().get(name, ("UNKNOWN", 0))[0]

    def pid(self, name: str) -> int:
        return self.supervisor.states().get(name, ("UNKNOWN", 0))[1]

    def stop(self) -> None:
        """Every program stopped (they log out), then supervisord shut down; killed if it does not stop."""
        if self.supervisord is not None:
            self.supervisor.shut_down(self.supervisord, fallback=lambda: self.ctl("shutdown"), wait_s=30)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def events(self) -> list[dict[str, object]]:
        """What the JSON monitor printed so far."""
        out = []
        for line in self.log("monitor").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out


def start_venue_sim(children: Children, port: int, store_dir: Path, name: str = "venue-sim",
                    comp_id: str = "VENUE") -> Child:
    """The venue simulator (fills at once) on ``port``, outside supervisord; returned once it listens."""
    sim = children.start(name, [sys.executable, "-m", "actors.sim.venue_sim", "--port", str(port), "--sender", comp_id,
                                "--fill-delay-ms", "0", "--store-dir", str(store_dir)])
    wait_until(lambda: f"listening on 127.0.0.1:{port}" in sim.log_text(), 30, f"{name} listening", children)
    return sim
