"""The README's demo: ``fixmesh demo`` greets, and a trader's orders get filled.

The demo topology (broker, Handler, Driven, coordinator, venue simulator,
monitor) starts as ``fixmesh demo`` starts it, under a real supervisord from
the repository's own supervisord.conf, with its var/ folder in a temporary
directory (``--root``). Once every program runs the demo prints what runs,
the commands to try and where the logs are; ``fixmesh client`` sends orders
through it, as the README shows; ``fixmesh demo ctl`` answers with the
password of the run; supervisord logs no CRIT line (as root it is told to
stay root, and its socket has a password); SIGTERM stops every program.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interop import REPO_ROOT, Children, wait_listening, wait_until

pytestmark = [pytest.mark.slow]

PROGRAMS = ("broker", "client", "venue", "venue-sim", "coordinator", "monitor")
FIXMESH = Path(sys.executable).parent / "fixmesh"


def test_the_demo_greets_and_fills_a_traders_orders(tmp_path: Path, children: Children) -> None:
    root = tmp_path / "demo"
    shutil.copytree(REPO_ROOT / "deploy", root / "deploy")
    demo = children.start("demo", [str(FIXMESH), "demo", "--root", str(root)])
    try:
        wait_until(lambda: "Ctrl-C stops every program." in demo.log_text(), 60, "the demo's greeting", children)
        out = demo.log_text()
        greeting = out[out.index("fixmesh demo: "):]
        assert greeting.startswith(f"fixmesh demo: {len(PROGRAMS)} programs running in {root}:"), greeting
        for program in PROGRAMS:
            assert f"\n  {program} " in greeting, greeting
        assert "Handler: the trader logs on here (127.0.0.1:9876, GATEWAY <- TRADER)" in greeting
        assert "client 'buy 100 MSFT@101.5' 'sell 250 IBM' 'buy 10 REJECT@1'" in greeting
        assert f"status --config {root / 'deploy' / 'topology.yaml'}" in greeting
        assert f"monitor --config {root / 'deploy' / 'topology.yaml'}" in greeting
        assert f"demo ctl --root {root} status" in greeting
        assert f"Logs: {root / 'var' / 'log'}" in greeting

        wait_listening(9876, demo, children)
        client = subprocess.run(
            [str(FIXMESH), "client", "--store-dir", str(root / "var" / "trader"),
             "buy 100 MSFT@101.5", "sell 250 IBM", "buy 10 REJECT@1"],
            capture_output=True, text=True, timeout=60, cwd=root)
        assert client.returncode == 0, client.stdout + client.stderr
        traded = client.stdout
        assert "ORD-1 MSFT buy 100@101.5: FILLED 100 @ 101.5" in traded, traded
        assert "ORD-2 IBM sell 250@MKT: PARTIAL 125" in traded and "ORD-2 IBM sell 250@MKT: FILLED 125" in traded
        assert "ORD-3 REJECT buy 10@1: REJECTED" in traded, traded
        monitor = (root / "var" / "log" / "monitor.log").read_text()
        assert "pair.client-venue.connect" in monitor and "session.venue.state" in monitor

        # supervisorctl through the demo (the password of this run), and not without it.
        status = subprocess.run([str(FIXMESH), "demo", "ctl", "--root", str(root), "status"],
                                capture_output=True, text=True, timeout=60)
        assert all(f"{p} " in status.stdout for p in PROGRAMS) and status.stdout.count("RUNNING") == len(PROGRAMS)
        env = {k: v for k, v in os.environ.items() if k != "FIXMESH_SUPERVISOR_PASSWORD"}
        anonymous = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c",
                                    str(REPO_ROOT / "supervisord.conf"), "status"], capture_output=True, text=True,
                                   timeout=60, env={**env, "FIXMESH_ROOT": str(root),
                                                    "FIXMESH_SUPERVISOR_PASSWORD": "wrong"})
        assert "RUNNING" not in anonymous.stdout, anonymous.stdout
    finally:
        demo.stopped = True
        if demo.exit_code is None:
            os.kill(demo.pid, signal.SIGTERM)  # as Ctrl-C: the demo stops supervisord, which stops every program
            try:
                demo.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                _kill_supervisord(root)
                raise
    assert demo.exit_code == 0, demo.report("the demo did not stop cleanly")
    supervisord_log = (root / "var" / "log" / "supervisord.log").read_text()
    for program in PROGRAMS:
        assert f"stopped: {program} (exit status 0)" in supervisord_log, supervisord_log
    assert "CRIT" not in supervisord_log, supervisord_log
    assert "CRIT" not in demo.log_text(), demo.log_text()


def _kill_supervisord(root: Path) -> None:
    """A demo that did not stop: its supervisord (by the pid it wrote) and so its programs, by signal."""
    try:
        pid = int((root / "var" / "supervisord.pid").read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
