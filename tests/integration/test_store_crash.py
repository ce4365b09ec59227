"""kill -9 a real process that is writing to a FileStore, then check what survived.

The child reports each sequence number on stdout only after the save call
returned; every reported message must come back intact after the kill, and
the recovered sequence numbers must continue from the last save. Each mode is
killed several times in a row, the child each time resuming from the store
it recovered, like a session actor restarted by supervisord.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from actors.store import Durability, FileStore

REPO = Path(__file__).resolve().parents[2]
SID = "FIX.4.4:CRASH->TEST"
ROUNDS = 3
#: The child stops by itself after this many messages or seconds, so a parent
#: that dies before the kill cannot leave it running; the kill comes long before.
CHILD_LIMIT = 20_000
CHILD_SECONDS = 10.0


def payload(seq: int) -> bytes:
    """Sizes from 20 bytes to 3 kB, and every 16th 512 kB, so a kill can also land
    inside a long write (the unit tests cut records at every byte deterministically)."""
    head = b"8=FIX.4.4\x0135=D\x0134=%d\x01" % seq
    size = 512 * 1024 if seq % 16 == 0 else seq * 7919 % 3000
    return head + bytes([65 + seq % 26]) * size


CHILD_BODY = """
import sys
import time
from actors.store import Durability, FileStore

directory, session_id, mode, limit = sys.argv[1], sys.argv[2], Durability(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + float(sys.argv[5])
store = FileStore(directory, session_id, now_ns=1, durability=mode, keep_incoming=True)
out_seq, in_seq = store.next_sender_seq, store.next_target_seq
write = sys.stdout.write
write(f"ready {out_seq} {in_seq}\\n")
sys.stdout.flush()
for _ in range(limit):
    if time.monotonic() > deadline:
        break
    store.save_outgoing(out_seq, payload(out_seq))
    write(f"out {out_seq}\\n")
    sys.stdout.flush()
    store.save_incoming(in_seq, b"in %d" % in_seq)
    write(f"in {in_seq}\\n")
    sys.stdout.flush()
    out_seq += 1
    in_seq += 1
    if out_seq % 16 == 0:
        store.sync()
"""
CHILD = textwrap.dedent(inspect.getsource(payload)) + CHILD_BODY


@dataclass
class Report:
    """What the killed child said it had saved."""

    start_out: int = 0
    start_in: int = 0
    out: list[int] = field(default_factory=list)
    incoming: list[int] = field(default_factory=list)

    def take(self, line: str) -> None:
        kind, *numbers = line.split()
        if kind == "ready":
            self.start_out, self.start_in = int(numbers[0]), int(numbers[1])
        elif kind == "out":
            self.out.append(int(numbers[0]))
        elif kind == "in":
            self.incoming.append(int(numbers[0]))


def run_and_kill(directory: Path, mode: Durability, kill_after: int) -> Report:
    """Start the writer, kill -9 it once it has reported ``kill_after`` saves."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", CHILD, str(directory), SID, mode.value, str(CHILD_LIMIT), str(CHILD_SECONDS)]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    report = Report()
    try:
        assert proc.stdout is not None
        while len(report.out) < kill_after:
            line = proc.stdout.readline()
            if not line:
                break
            report.take(line)
        os.kill(proc.pid, signal.SIGKILL)
        # Read through the same buffered reader: lines it already holds were reported too.
        rest = proc.stdout.read()
        assert proc.stderr is not None
        errors = proc.stderr.read()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for line in rest.splitlines():
        report.take(line)
    assert proc.returncode == -signal.SIGKILL, f"the writer ended on its own:\n{errors}"
    assert len(report.out) >= kill_after, f"the writer stopped early:\n{errors}"
    return report


def check_recovered(directory: Path, report: Report) -> None:
    with FileStore(directory, SID, now_ns=2, keep_incoming=True, durability=Durability.OS_BUFFER) as store:
        last_out, last_in = report.out[-1], report.incoming[-1]
        # At most one save can have returned without being reported.
        assert store.next_sender_seq in (last_out + 1, last_out + 2)
        assert store.next_target_seq in (last_in + 1, last_in + 2)
        stored = store.get_outgoing(1, store.next_sender_seq - 1)
        assert [seq for seq, _ in stored] == list(range(1, store.next_sender_seq))
        assert all(data == payload(seq) for seq, data in stored)
        journal = store.get_incoming(1, store.next_target_seq - 1)
        assert [seq for seq, _ in journal] == list(range(1, store.next_target_seq))
        assert all(data == b"in %d" % seq for seq, data in journal)
        assert store.creation_time_ns == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", list(Durability), ids=lambda mode: mode.value)
def test_kill_9_mid_stream_loses_and_repeats_nothing(tmp_path: Path, mode: Durability) -> None:
    expected_start = 1
    for round_number in range(ROUNDS):
        report = run_and_kill(tmp_path, mode, kill_after=150 + 97 * round_number)
        assert report.start_out >= expected_start, "a restart must never reuse a sequence number"
        assert report.out[0] == report.start_out and report.incoming[0] == report.start_in
        check_recovered(tmp_path, report)
        expected_start = report.out[-1] + 1
