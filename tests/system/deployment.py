"""A deployment over namespace hosts, set up as an operator would: keys, rendered configurations, supervisords.

One folder per host (the topology, only the keys that host needs,
its rendered ``supervisord.conf``, ``var/``), and a supervisord started in
the host's namespace by ``start``. Used by the system tests that run
fixmesh over several hosts (``tests/hosts.py`` makes the hosts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.hosts import Hosts
from tests.interop import Child, Children, wait_until

FIXMESH = Path(sys.executable).parent / "fixmesh"


class Deployment:
    """The hosts of ``programs``, each with its folder and its supervisord.

    ``topology`` is the topology's text with ``{host}`` placeholders for each
    host's address; ``programs`` says which programs each host runs (what
    ``running`` expects); ``keys`` which key files each host's folder gets.
    """

    def __init__(self, tmp_path: Path, children: Children, hosts: Hosts, *, topology: str,
                 programs: Mapping[str, Sequence[str]], keys: Mapping[str, Sequence[str]], password: str) -> None:
        self.tmp = tmp_path
        self.children = children
        self.hosts = hosts
        self.programs = programs
        self.password = password
        self.supervisords: dict[str, Child] = {}
        source = tmp_path / "source"
        source.mkdir()
        (source / "topology.yaml").write_text(topology.format(**{h: hosts.address(h) for h in programs}),
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
        done = subprocess.run([str(FIXMESH), *args], capture_output=True, text=True, timeout=60, cwd=cwd)
        assert done.returncode == 0, f"fixmesh {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def env(self, name: str) -> dict[str, str]:
        return {**os.environ, "FIXMESH_ROOT": str(self.roots[name]), "FIXMESH_SUPERVISOR_PASSWORD": self.password,
                "PATH": os.pathsep.join([str(FIXMESH.parent), os.environ.get("PATH", "")])}

    def start(self, name: str) -> Child:
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

    def running(self, name: str) -> bool:
        lines = self.ctl(name, "status").splitlines()
        states = {line.split()[0]: line.split()[1] for line in lines if len(line.split()) > 1}
        return sorted(states) == sorted(self.programs[name]) and all(s == "RUNNING" for s in states.values())

    def wait_running(self, *names: str) -> None:
        wait_until(lambda: all(self.running(name) for name in names), 60,
                   f"every program RUNNING on {', '.join(names)}", self.children)

    def log(self, host: str, program: str) -> str:
        logs = sorted((self.roots[host] / "var" / "log").glob(f"{program}*.log"))
        return "".join(p.read_text(errors="replace") for p in logs if not p.name.startswith("supervisord"))

    def stop(self) -> None:
        for name, child in self.supervisords.items():
            if child.exit_code is None:
                self.ctl(name, "shutdown")
                try:
                    child.popen.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.hosts.kill(name)
                child.stopped = True
