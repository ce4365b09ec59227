"""Tracing orders through the gateway: every process stamps each order's steps, ``bench.trace`` lines them up.

The benchmark's routed pair (client, Handler, broker, Driven, venue: real
processes on loopback) runs 300 orders with ``FIXMESH_TRACE_DIR`` set; every
order must then be found from the client's send to its receipt of the
ExecutionReport through the ten steps of the five processes, in that order.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actors.gateway.trace import TRACE_DIR_ENV
from bench import sections
from bench.trace import complete, hop_table, read_steps
from tests.interop import spec_file

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Every step an order takes, in order: Handler "client", Driven "venue" (the benchmark's session names).
PATH = ["trader send", "client fix_in", "client bus_out", "venue bus_in", "venue fix_out", "venue-sim venue",
        "venue fix_in", "venue bus_out", "client bus_in", "client fix_out", "trader recv"]


def test_every_order_is_traced_through_every_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    traces = tmp_path / "traces"
    monkeypatch.setenv(TRACE_DIR_ENV, str(traces))
    result = sections.routed(tmp_path / "run", sections.SMOKE, spec_file("FIX44.xml"),
                             phases=["r=paced:300:1"])
    sent = result["phases"]["r"]["sent"]
    assert sent == result["phases"]["r"]["received"] == 300

    orders = complete(read_steps(traces))
    assert len(orders) == sent
    for steps in orders.values():
        assert [name for _, name in steps] == PATH
    hops = hop_table(orders)
    assert [hop for hop, *_ in hops] == [f"{a} -> {b}" for a, b in zip(PATH, PATH[1:], strict=False)]
    assert all(p50 >= 0 and count == sent for _, p50, _, count in hops)

    shown = subprocess.run([sys.executable, "-m", "bench.trace", str(traces), "--slowest", "1"], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "300 complete orders" in shown.stdout and shown.stdout.count("trader recv") == 2  # hop table, timeline


def test_without_the_variable_nothing_is_traced(tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    shown = subprocess.run([sys.executable, "-m", "bench.trace", str(empty)], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 1 and "no complete order" in shown.stderr
