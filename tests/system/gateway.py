"""A whole gateway under a real supervisord, for system tests.

``Gateway`` writes a topology (one Handler/Driven pair on free loopback
ports) and a supervisord configuration running the broker, both session
actors and a JSON monitor, starts supervisord as a child of the test, and
answers questions through supervisorctl. The FIX counterparties (trader and
venue) are started by the tests themselves, outside supervisord.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.interop import Child, Children, free_ports, wait_until

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
          reconnect_interval: 0.5, connect_on_start: {connect_on_start}{venue_extra}}}
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

PROGRAM = """\
[program:{name}]
command={command}
directory={cwd}
autorestart={autorestart}
startsecs=0
startretries=100
stopsignal=TERM
stopwaitsecs=10
redirect_stderr=true
stdout_logfile={logs}/{name}.log
stdout_logfile_maxbytes=0
environment=PYTHONUNBUFFERED="1"
"""


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
                 second_coordinator: bool = False, no_restart: tuple[str, ...] = ()) -> None:
        """``coordinator``: run the coordinator too (the Driven then connects only when told to);
        ``backup_broker``: a pair of brokers, ``broker`` the primary and ``broker-backup``; every program
        follows the active one. ``second_coordinator``: ``coordinator-b`` too (with ``coordinator``).
        ``no_restart``: programs supervisord does not restart (a lost host stays lost);
        ``client_extra`` / ``venue_extra``: more settings of each session, as ``, key: value`` YAML;
        ``client_nofile``: the Handler runs with this RLIMIT_NOFILE (soft and hard, as ``ulimit -n``)."""
        self.client_nofile = client_nofile
        self.actors = ("broker", "client", "venue", "monitor") + (("coordinator",) if coordinator else ()) \
            + (("metrics",) if metrics else ()) + (("broker-backup",) if backup_broker else ()) \
            + (("coordinator-b",) if second_coordinator else ())
        self.backup_broker = backup_broker
        self.no_restart = no_restart
        #: ``metrics``: run ``fixmesh metrics`` too (Prometheus endpoint and status page) on this port.
        self.metrics_port = free_ports(1)[0] if metrics else 0
        self.dir = directory
        self.children = children
        self.logs = directory / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        ports = free_ports(10)
        self.ports = Ports(*ports[:5])
        #: The backup broker's router, xsub, xpub and peer, and the primary's peer (``backup_broker``).
        self.backup_ports = ports[5:]
        self.topology = directory / "topology.yaml"
        self.topology.write_text(TOPOLOGY.format(
            router=self.ports.router, xsub=self.ports.xsub, xpub=self.ports.xpub, heartbeat=heartbeat_s,
            store=directory / "store", handler_port=self.ports.handler, venue_port=self.ports.venue,
            connect_on_start="false" if coordinator else "true", client_extra=client_extra, venue_extra=venue_extra))
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
            made = subprocess.run([str(Path(sys.executable).parent / "fixmesh"), "keys", "create", "--config",
                                   str(self.topology)], capture_output=True, text=True, timeout=30)
            assert made.returncode == 0, made.stderr
        self.conf = directory / "supervisord.conf"
        self.conf.write_text(self._supervisord_conf())
        self.supervisord: Child | None = None

    def _supervisord_conf(self) -> str:
        # Programs start as a deployment starts them: through the ``fixmesh`` command.
        fixmesh = Path(sys.executable).parent / "fixmesh"
        p = self.ports
        commands = {
            "broker": f"{fixmesh} broker --router tcp://127.0.0.1:{p.router} --xsub tcp://127.0.0.1:{p.xsub} "
                      f"--xpub tcp://127.0.0.1:{p.xpub}",
            "client": f"{fixmesh} session --config {self.topology} --session client",
            "venue": f"{fixmesh} session --config {self.topology} --session venue",
            "monitor": f"{fixmesh} monitor --json --endpoint tcp://127.0.0.1:{p.xpub} --silence-s 1.3",
            "coordinator": f"{fixmesh} coordinator --config {self.topology} --driven-grace-s 5",
            "metrics": f"{fixmesh} metrics --config {self.topology} --listen 127.0.0.1:{self.metrics_port}",
            "broker-backup": f"{fixmesh} broker --config {self.topology} --backup",
            "coordinator-b": f"{fixmesh} coordinator --config {self.topology} --driven-grace-s 5 --name coordinator-b",
        }
        if self.backup_broker:
            commands["broker"] = f"{fixmesh} broker --config {self.topology}"
            commands["monitor"] = f"{fixmesh} monitor --json --config {self.topology} --silence-s 1.3"
        if self.secure:
            commands["broker"] = f"{fixmesh} broker --config {self.topology}"
            commands["monitor"] = f"{fixmesh} monitor --json --config {self.topology} --key watcher --silence-s 1.3"
            commands["metrics"] += " --key watcher"
        if self.client_nofile is not None:  # the shell execs the actor: supervisord's pid is the actor's
            commands["client"] = f'/bin/sh -c "ulimit -n {self.client_nofile} && exec {commands["client"]}"'
        commands = {name: command for name, command in commands.items() if name in self.actors}
        cwd = Path(__file__).resolve().parents[2]
        head = (f"[supervisord]\nlogfile={self.logs}/supervisord.log\npidfile={self.dir}/supervisord.pid\n"
                f"childlogdir={self.logs}\nnodaemon=true\n\n"
                f"[unix_http_server]\nfile={self.dir}/supervisor.sock\n\n"
                f"[supervisorctl]\nserverurl=unix://{self.dir}/supervisor.sock\n\n"
                "[rpcinterface:supervisor]\n"
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n")
        return head + "\n".join(PROGRAM.format(name=n, command=c, cwd=cwd, logs=self.logs,
                                               autorestart="false" if n in self.no_restart else "true")
                                for n, c in commands.items())

    def start(self) -> None:
        self.supervisord = self.children.start(
            "supervisord", [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(self.conf)])
        wait_until(lambda: all(self.state(n) == "RUNNING" for n in self.actors), 30, "all programs RUNNING",
                   self.children)

    def ctl(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args],
                                capture_output=True, text=True, timeout=30)
        return result.stdout.strip()

    def state(self, name: str) -> str:
        parts = self.ctl("status", name).split()
        return parts[1] if len(parts) > 1 else "UNKNOWN"

    def pid(self, name: str) -> int:
        text = self.ctl("pid", name)
        return int(text) if text.isdigit() else 0

    def stop(self) -> None:
        if self.supervisord is not None and self.supervisord.exit_code is None:
            self.ctl("shutdown")
            try:
                self.supervisord.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.supervisord.kill()
            self.supervisord.stopped = True

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
