"""A short chaos run (``python -m bench.chaos``, docs/chaos.md): 50 random faults over namespace hosts, then the
ledger.

Two Handler/Driven pairs over five network namespaces, a pair of brokers and
two coordinators, a steady flow of orders from two users to two venues, and
50 faults about a second apart: kill -9 of any program, a gateway host lost
and rebooted, a link cut and restored. The run is the program an operator
runs, started as one (it must not need pytest); this test only reads what it
reports. Every order must be at its venue once and every ExecutionReport at
its user once, nothing unsent may appear, no sequence gap may be left, every
program must be running at the end, and every fault must have been recovered
from (an order sent after it completed through each pair it interrupted).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
FAULTS = 50


def test_fifty_random_faults_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--pairs", "2", "--rate", "20", "--faults", str(FAULTS),
         "--fault-interval", "1.0", "--tail", "3", "--settle", "90", "--seed", "14", "--json", str(out),
         "--work", str(tmp_path / "run")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-6000:]}"
    figures = json.loads(out.read_text())
    assert figures["ok"] and figures["problems"] == [], figures["problems"]
    assert figures["faults"]["total"] == FAULTS
    assert all(figures["faults"]["by_kind"][kind] > 0 for kind in ("kill", "host", "link")), figures["faults"]
    assert figures["orders_sent"] > 1000
    assert figures["orders_at_venues"] == figures["reports_at_users"] == figures["orders_sent"]
    assert figures["lost"] == {"orders": 0, "reports": 0} and figures["duplicated"] == {"orders": 0, "reports": 0}
    assert figures["unsent"] == 0 and figures["unexpected_reports"] == 0
    assert figures["gaps"] == [] and figures["sequence_problems"] == [] and figures["links_checked"] == 8
    assert figures["not_running"] == [] and figures["settled"]
    never = [f for f in figures["fault_log"] if f["recovery_s"] is None]
    assert not never, f"faults never recovered from: {never}"
    assert "OK: nothing lost, nothing duplicated" in done.stdout, done.stdout
