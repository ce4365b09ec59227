"""The test harness's children (``bench/children.py``): a killed child takes the processes it started with it.

A test that fails before its gateway's own stop leaves the harness to kill supervisord; its programs must not
go on running, orphaned, after the test (they would hold ports and take CPU from every later test).
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.children import Children, descendants


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # killed; its reaper (pid 1 of this machine) has not collected it yet


def test_a_killed_child_takes_its_children_and_theirs_with_it(tmp_path: Path) -> None:
    children = Children(tmp_path)
    parent = children.start("tree", ["sh", "-c", "sleep 600 & sh -c 'sleep 600 & wait' & wait"])
    below: list[int] = []
    deadline = time.monotonic() + 10
    for _ in range(200):  # until the two sleeps and the inner shell run
        below = descendants(parent.pid)
        if len(below) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(below) == 3, below
    parent.kill()
    for _ in range(100):
        if all(_gone(pid) for pid in below):
            break
        time.sleep(0.05)
    assert [pid for pid in below if not _gone(pid)] == []
    assert parent.exit_code is not None
