"""The README's demo: the top-level supervisord.conf runs, and a trader's orders get filled.

The demo topology (broker, Handler, Driven, coordinator, venue simulator,
monitor) starts under a real supervisord from the repository's own
supervisord.conf, with its var/ folder in a temporary directory, and
``fixmesh client`` sends orders through it, as the README shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interop import REPO_ROOT, Children, wait_listening, wait_until

pytestmark = [pytest.mark.slow]

PROGRAMS = ("broker", "client", "venue", "venue-sim", "coordinator", "monitor")


def test_the_demo_topology_fills_a_traders_orders(tmp_path: Path, children: Children) -> None:
    root = tmp_path / "demo"
    shutil.copytree(REPO_ROOT / "deploy", root / "deploy")
    (root / "var" / "log").mkdir(parents=True)
    # As `fixmesh demo` does: the programs are `fixmesh <command>`, found on PATH beside this interpreter.
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "FIXMESH_ROOT": str(root), "PATH": os.pathsep.join([bindir, os.environ.get("PATH", "")])}
    conf = REPO_ROOT / "supervisord.conf"

    def ctl(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), *args],
                              capture_output=True, text=True, env=env, timeout=30).stdout

    original_environ = dict(os.environ)
    os.environ.update(env)  # supervisord takes FIXMESH_ROOT and PATH from its environment
    try:
        supervisord = children.start("supervisord", [sys.executable, "-m", "supervisor.supervisord", "-n",
                                                     "-c", str(conf)])
    finally:
        os.environ.clear()
        os.environ.update(original_environ)
    try:
        wait_until(lambda: all(f"{p} " in ctl("status") and "RUNNING" in ctl("status", p) for p in PROGRAMS),
                   30, "every demo program RUNNING", children)
        wait_listening(9876, supervisord, children)
        client = subprocess.run(
            [sys.executable, "-m", "actors.cli", "client", "--store-dir", str(root / "var" / "trader"),
             "buy 100 MSFT@101.5", "sell 250 IBM", "buy 10 REJECT@1"],
            capture_output=True, text=True, timeout=60, cwd=root)
        assert client.returncode == 0, client.stdout + client.stderr
        out = client.stdout
        assert "ORD-1 MSFT buy 100@101.5: FILLED 100 @ 101.5" in out, out
        assert "ORD-2 IBM sell 250@MKT: PARTIAL 125" in out and "ORD-2 IBM sell 250@MKT: FILLED 125" in out, out
        assert "ORD-3 REJECT buy 10@1: REJECTED" in out, out
        monitor = (root / "var" / "log" / "monitor.log").read_text()
        assert "pair.client-venue.connect" in monitor and "session.venue.state" in monitor
    finally:
        ctl("shutdown")
        supervisord.popen.wait(timeout=30)
        supervisord.stopped = True
