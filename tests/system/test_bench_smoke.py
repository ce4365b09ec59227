"""``python -m bench --smoke`` runs every section end to end and prints every row of its table.

The smoke mode starts the same processes as a full run (engines, QuickFIX,
broker, both actors, venue, clients, restarts, N pairs, pairs over namespace
hosts) with tiny sizes. Nothing here looks at a figure: timings belong to
``docs/performance.md``, not to tests.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import build_rows
from bench.sections import SMOKE

pytestmark = [pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_prints_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--json", str(out)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-5000:]}"
    data = json.loads(out.read_text())

    # The same rows, in the same order, as the table builder makes from no results at all.
    expected = [row.key for row in build_rows({}, SMOKE)]
    assert [row["key"] for row in data["rows"]] == expected
    for row in data["rows"]:
        assert row["label"] in result.stdout, f"row {row['key']} not printed"
        assert row["result"] and not row["result"].startswith(("error", "not run")), row

    # Scale: three rows (round trip, memory, CPU) per number of pairs, each with figures, every order answered;
    # and the largest size through pass-through actors.
    scale = {row["key"]: row["result"] for row in data["rows"] if row["key"].startswith("scale.")}
    assert sorted(scale) == sorted([f"scale.{n}.{what}" for n in SMOKE.scale_pairs
                                    for what in ("round_trip", "memory", "cpu")] + ["scale.shape.round_trip"])
    for key, text in scale.items():
        assert "TODO" not in text and any(c.isdigit() for c in text), (key, text)
    for n in SMOKE.scale_pairs:
        run = data["results"]["scale"][str(n)]["phases"]["run"]
        assert run["received"] == run["sent"] > 0, (n, run)

    # The pass-through actors (bench.relay) carried every order both ways: one pair's phases, and as many
    # pairs as the largest scale size.
    for name in ("r200", "r1000", "max"):
        phase = data["results"]["shape"]["phases"][name]
        assert phase["received"] == phase["sent"] > 0, (name, phase)
    shape = data["results"]["scale_shape"]
    assert shape["pairs"] == max(SMOKE.scale_pairs), shape
    assert shape["phases"]["run"]["received"] == shape["phases"]["run"]["sent"] > 0, shape

    # Scale over hosts: pairs spread over three network namespaces (the bench runs as root here), every order
    # answered; its rows have figures, not the reason it could not run.
    hosts = data["results"]["scale_hosts"]
    assert "unavailable" not in hosts and "error" not in hosts, hosts
    assert hosts["pairs"] == SMOKE.scale_hosts_pairs and sorted(hosts["hosts"]) == ["bus", "edge", "exch"]
    run = hosts["phases"]["run"]
    assert run["received"] == run["sent"] > 0, run
    for key in ("scale-hosts.round_trip", "scale-hosts.cpu"):
        text = next(row["result"] for row in data["rows"] if row["key"] == key)
        assert any(c.isdigit() for c in text) and "not measured" not in text, (key, text)

    # Every process the run started was stopped, by its pid.
    assert data["children"]
    for child in data["children"]:
        assert not _running(child["pid"], child["command"]), f"still running: {child}"

    if importlib.util.find_spec("matplotlib") is not None:
        assert data["histogram"] and Path(data["histogram"]).is_file()


def _running(pid: int, command: list[str]) -> bool:
    """The process is still there with the same command line (a pid the kernel reused is someone else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except OSError:
        return False
    return [part.decode(errors="replace") for part in cmdline] == command
