"""A deployment over namespace hosts, set up as an operator would: keys, rendered configurations, supervisords.

    deployment = Deployment(work, children, hosts, topology=TEXT, programs={...}, keys={...}, password=...)
    deployment.start("hub"); deployment.wait_running("hub")
    deployment.pid("hub", "broker")          # the program's pid, from its supervisord
    deployment.stop()

One folder per host (the topology, only the keys that host needs, its
rendered ``supervisord.conf``, ``var/``), and a supervisord started in the
host's namespace by ``start``. ``topology`` is the topology's text with
``{host}`` placeholders for each host's address; ``programs`` says which
programs each host runs (what ``running`` expects); ``keys`` which key files
each host's folder gets (docs/deploy.md). supervisord is asked over its
XML-RPC Unix socket, a file, so the caller reaches it from outside the
namespace. The chaos run and the system tests (``tests/system/deployment.py``)
use it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.children import REPO_ROOT, Child, Children, wait_until
from bench.netns import Hosts
from bench.supervisor_rpc import Supervisor

FIXMESH = Path(sys.executable).parent / "fixmesh"
STOP_WAIT_S = 30.0


def checkout_env() -> dict[str, str]:
    """This environment, with this checkout first on the import path: the programs run this tree's code (and its
    compiled core) whatever checkout the ``fixmesh`` command was installed from."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


class DeploymentError(RuntimeError):
    """A step of setting the deployment up failed (a ``fixmesh`` command); the message has its output."""


class Deployment:
    """The hosts of ``programs``, each with its folder and its supervisord."""

    def __init__(self, tmp_path: Path, children: Children, hosts: Hosts, *, topology: str,
                 programs: Mapping[str, Sequence[str]], keys: Mapping[str, Sequence[str]], password: str) -> None:
        self.tmp = tmp_path
        self.children = children
        self.hosts = hosts
        self.programs = programs
        self.password = password
        self.supervisords: dict[str, Child] = {}
        source = tmp_path / "source"
        source.mkdir(parents=True)
        (source / "topology.yaml").write_text(topology.format(**{h: hosts.address(h) for h in hosts.names}),
                                              encoding="utf-8")
        # As an operator would: keys for every principal, then one configuration per host.
        self.fixmesh(source, "keys", "create", "--config", "topology.yaml")
        self.rendered = self.fixmesh(source, "deploy", "render", "--config", "topology.yaml", "--all",
                                     "--out", "rendered", "--fixmesh", str(FIXMESH))
        self.roots: dict[str, Path] = {}
        for name in programs:
            root = tmp_path / name
            (root / "keys").mkdir(parents=True, mode=0o700)
            (root / "var" / "log").mkdir(parents=True)
            shutil.copy(source / "topology.yaml", root / "topology.yaml")
            shutil.copy(source / "rendered" / f"{name}.conf", root / "supervisord.conf")
            for key in keys[name]:
                shutil.copy2(source / "keys" / key, root / "keys" / key)
            self.roots[name] = root

    @staticmethod
    def fixmesh(cwd: Path, *args: str) -> str:
        done = subprocess.run([str(FIXMESH), *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                              env=checkout_env())
        if done.returncode != 0:
            raise DeploymentError(f"fixmesh {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def env(self, name: str) -> dict[str, str]:
        return {**checkout_env(), "FIXMESH_ROOT": str(self.roots[name]), "FIXMESH_SUPERVISOR_PASSWORD": self.password,
                "PATH": os.pathsep.join([str(FIXMESH.parent), os.environ.get("PATH", "")])}

    def start(self, name: str) -> Child:
        """Host ``name``'s supervisord, in the host's namespace (again, after the host was lost)."""
        conf = self.roots[name] / "supervisord.conf"
        command = [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)]
        if os.geteuid() == 0:
            command += ["-u", "root"]
        child = self.hosts.start(name, f"supervisord-{name}", command, env=self.env(name), cwd=self.roots[name])
        self.supervisords[name] = child
        return child

    def ctl(self, name: str, *args: str) -> str:
        """supervisorctl of host ``name`` (its Unix socket is a file: reachable from outside the namespace)."""
        done = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c",
                               str(self.roots[name] / "supervisord.conf"), *args],
                              capture_output=True, text=True, timeout=30, env=self.env(name))
        return done.stdout

    def supervisor(self, name: str) -> Supervisor:
        """host ``name``'s supervisord over XML-RPC: no process to start per question."""
        return Supervisor(self.roots[name] / "var" / "supervisor.sock", self.password)

    def states(self, name: str) -> dict[str, tuple[str, int]]:
        """Each program of host ``name``: (state, pid); empty when its supervisord does not answer."""
        return self.supervisor(name).states()

    def pid(self, name: str, program: str) -> int:
        """The pid of ``program`` on host ``name``, 0 when it does not run."""
        state, pid = self.states(name).get(program, ("UNKNOWN", 0))
        return pid if state == "RUNNING" else 0

    def not_running(self, name: str) -> list[str]:
        """The programs of host ``name`` that are not RUNNING, with their state (all of them if supervisord is gone)."""
        states = self.states(name)
        return [f"{program} {states.get(program, ('absent', 0))[0]}" for program in self.programs[name]
                if states.get(program, ("absent", 0))[0] != "RUNNING"] + \
               [f"{program} (not expected)" for program in states if program not in self.programs[name]]

    def running(self, name: str) -> bool:
        return not self.not_running(name)

    def wait_running(self, *names: str, timeout_s: float = 60.0) -> None:
        wait_until(lambda: all(self.running(name) for name in names), timeout_s,
                   f"every program RUNNING on {', '.join(names)}", self.children)

    def log(self, host: str, program: str) -> str:
        logs = sorted((self.roots[host] / "var" / "log").glob(f"{program}*.log"))
        return "".join(p.read_text(errors="replace") for p in logs if not p.name.startswith("supervisord"))

    def stop(self) -> None:
        """Each supervisord that runs: its programs stopped together (they log out), then shut down; or its host
        killed if it does not stop."""
        for name, child in self.supervisords.items():
            self.supervisor(name).shut_down(child, fallback=lambda host=name: self.ctl(host, "shutdown"),
                                            wait_s=STOP_WAIT_S, kill=lambda host=name: self.hosts.kill(host))
