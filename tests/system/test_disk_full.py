"""The stores' file system fills up under a steady flow both ways, stays full, then has room again.

The gateway keeps its stores and journals on a small tmpfs the test mounts
(root, as CI). While it is full each session stops at its first failed
write, having sent nothing it could not store, says why in one log line,
and at its restart waits for room instead of failing again (supervisord
would give up on it as FATAL after a few quick failures). Once the test
frees the space, both sessions go on by themselves and every order and
report reaches the far side exactly once, in order.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop import Children, count_received, endpoint_command, exactly_once_problems, read_received, wait_until
from tests.system.gateway import Gateway

pytestmark = [pytest.mark.slow]

TOTAL = 600
RATE = 40
#: Long enough for supervisord to have given up on a program that failed at every start (startretries 3).
FULL_FOR_S = 15.0
SESSIONS = ("client", "venue")


@pytest.fixture
def small_store(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs where the gateway keeps its stores."""
    assert os.geteuid() == 0, "this test mounts a tmpfs: run it as root (CI does)"
    store = tmp_path / "gateway" / "store"
    store.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "fixmesh-test", str(store)], check=True, timeout=10)
    try:
        yield store
    finally:
        subprocess.run(["umount", "--lazy", str(store)], check=True, timeout=10)


def fill(directory: Path) -> Path:
    """Write a file until the file system refuses (ENOSPC); the file."""
    filler = directory / "filler"
    chunk = b"\0" * (64 << 10)
    with filler.open("wb") as file:
        for _ in range(1024):  # 64 MiB at most: far more than the tmpfs holds
            try:
                file.write(chunk)
                file.flush()
            except OSError:
                break
        else:
            raise AssertionError(f"{directory} never filled up")
    return filler


def test_a_full_disk_stops_the_sessions_and_they_go_on_with_nothing_lost_once_it_has_room(
        tmp_path: Path, children: Children, small_store: Path) -> None:
    gateway = Gateway(tmp_path / "gateway", children)
    gateway.start()
    try:
        venue_log, trader_log = tmp_path / "venue" / "received.log", tmp_path / "trader" / "received.log"
        children.start("venue", endpoint_command("acceptor", gateway.ports.venue, "VENUE", "GATEWAY",
                                                 tmp_path / "venue", send=TOTAL, rate=RATE))
        children.start("trader", endpoint_command("initiator", gateway.ports.handler, "TRADER", "GATEWAY",
                                                  tmp_path / "trader", send=TOTAL, rate=RATE))
        wait_until(lambda: min(count_received(venue_log), count_received(trader_log)) >= 60, 60,
                   "the first 60 messages each way", children)
        filler = fill(small_store)

        # A session stops at its first failed write and says why, once, without a traceback. (Which one writes
        # first depends on the flow: with the Handler down nothing reaches the Driven to store, until its next
        # heartbeat.)
        def stopped() -> list[str]:
            return [name for name in SESSIONS if "stopping: cannot write the" in gateway.log(name)]

        wait_until(stopped, 30, "a session to stop on the full disk", children)
        counts = (count_received(venue_log), count_received(trader_log))
        time.sleep(FULL_FOR_S)
        # Nothing got through while the disk was full; the restarted session waits, supervisord has not given up.
        assert (count_received(venue_log), count_received(trader_log)) == counts
        waited = stopped()
        for name in waited:
            log = gateway.log(name)
            assert f"{name}: not starting: " in log and "free space on it" in log, log[-2000:]
            assert gateway.state(name) == "RUNNING", gateway.state(name)
        for name in SESSIONS:
            assert "Traceback" not in gateway.log(name), gateway.log(name)[-4000:]

        filler.unlink()
        wait_until(lambda: min(count_received(venue_log), count_received(trader_log)) >= TOTAL, 90,
                   f"{TOTAL} messages each way after the disk has room again", children)
        for log_path in (venue_log, trader_log):
            problems = exactly_once_problems(read_received(log_path), TOTAL)
            assert not problems, f"{log_path}:\n" + "\n".join(problems[:20])
        for name in waited:
            assert "the store's file system takes writes again" in gateway.log(name)
    finally:
        gateway.stop()
