"""``fixmesh log``: a real file store read back through the command, decoded, filtered and followed."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actors.fix.codec import encode
from actors.store import Durability, FileStore
from tests.acceptance import conformance_dir

FIXMESH = str(Path(sys.executable).parent / "fixmesh")


def message(msg_type: bytes, seq: int, second: int, body: list[tuple[int, bytes]], *, out: bool) -> bytes:
    sender, target = (b"GATEWAY", b"TRADER") if out else (b"TRADER", b"GATEWAY")
    header = [(34, b"%d" % seq), (49, sender), (52, b"20261130-09:30:%02d.000" % second), (56, target)]
    return encode(b"FIX.4.4", msg_type, header, body)


def order(clordid: bytes) -> list[tuple[int, bytes]]:
    return [(11, clordid), (21, b"1"), (38, b"100"), (40, b"2"), (44, b"10.5"), (54, b"1"), (55, b"ACME"),
            (60, b"20261130-09:30:00")]


@pytest.fixture
def topology(tmp_path: Path) -> Path:
    """A topology whose Handler 'client' keeps incoming messages, with a store already written."""
    store_dir = tmp_path / "store"
    store = FileStore(store_dir, "client", now_ns=0, durability=Durability.OS_BUFFER, keep_incoming=True)
    store.save_incoming(1, message(b"A", 1, 0, [(98, b"0"), (108, b"30"), (553, b"trader1"), (554, b"hunter2")],
                                   out=False))
    store.save_outgoing(1, message(b"A", 1, 1, [(98, b"0"), (108, b"30")], out=True))
    store.save_incoming(2, message(b"D", 2, 2, order(b"ORD-1"), out=False))
    store.save_outgoing(2, message(b"8", 2, 3, [(6, b"0"), (11, b"ORD-1"), (14, b"0"), (17, b"E1"), (37, b"O1"),
                                                (39, b"0"), (54, b"1"), (55, b"ACME"), (150, b"0"), (151, b"100")],
                                   out=True))
    store.save_incoming(3, message(b"D", 3, 4, order(b"ORD-2"), out=False))
    store.set_next_target_seq(4)
    store.close()
    spec = conformance_dir() / "spec" / "FIX44.xml"
    path = tmp_path / "topology.yaml"
    path.write_text(f"""
sessions:
  client:
    role: handler
    sender_comp_id: GATEWAY
    target_comp_id: TRADER
    port: 9876
    data_dictionary: {spec}
    store: {{path: {store_dir}, keep_incoming: true}}
""")
    return path


def fixmesh_log(topology: Path, *args: str) -> list[str]:
    result = subprocess.run([FIXMESH, "log", "--config", str(topology), "client", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_both_directions_read_as_the_conversation_with_names_and_enums(topology: Path) -> None:
    lines = fixmesh_log(topology)
    assert [line.split()[1:4] for line in lines] == [
        ["IN", "1", "Logon"], ["OUT", "1", "Logon"], ["IN", "2", "NewOrderSingle"], ["OUT", "2", "ExecutionReport"],
        ["IN", "3", "NewOrderSingle"]]
    assert lines[0].startswith("2026-11-30T09:30:00.000")
    assert "Side=1(BUY)" in lines[2] and "ClOrdID=ORD-1" in lines[2] and "OrdType=2(LIMIT)" in lines[2]
    assert "OrdStatus=0(NEW)" in lines[3]
    assert "Password=***" in lines[0] and "hunter2" not in "\n".join(lines)


def test_filters_select_by_direction_type_sequence_time_and_clordid(topology: Path) -> None:
    assert [line.split()[2] for line in fixmesh_log(topology, "--direction", "in", "--type", "D")] == ["2", "3"]
    assert len(fixmesh_log(topology, "--type", "NewOrderSingle", "--type", "8")) == 3
    assert [line.split()[1] for line in fixmesh_log(topology, "--seq", "2-2")] == ["IN", "OUT"]
    clordid = fixmesh_log(topology, "--clordid", "ORD-1")
    assert [line.split()[3] for line in clordid] == ["NewOrderSingle", "ExecutionReport"]
    since = fixmesh_log(topology, "--since", "2026-11-30T09:30:02", "--until", "2026-11-30T09:30:03")
    assert [line.split()[3] for line in since] == ["NewOrderSingle", "ExecutionReport"]


def test_raw_shows_the_wire_form_with_secrets_masked(topology: Path) -> None:
    first = fixmesh_log(topology, "--raw", "--seq", "1")[0]
    assert "|35=A|" in first and "|554=***|" in first and "hunter2" not in first


class Lines:
    """A child's output line by line, each line awaited at most ``timeout_s`` (no read blocks for ever)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def next(self, timeout_s: float = 10.0) -> str:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0.0, left))
            assert ready, f"no line within {timeout_s} s; so far {self.buffer!r}"
            chunk = os.read(self.fd, 65536)
            assert chunk, f"the output ended; so far {self.buffer!r}"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


def test_follow_prints_what_the_session_stores_next(topology: Path) -> None:
    command = [FIXMESH, "log", "--config", str(topology), "client", "--follow", "--direction", "out"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0) as follower:
        try:
            assert follower.stdout is not None
            lines = Lines(follower.stdout.fileno())
            assert "Logon" in lines.next() and "ExecutionReport" in lines.next()
            store_dir = topology.parent / "store"
            # The writer holds the store's lock as a running session does; the follower does not need it.
            store = FileStore(store_dir, "client", now_ns=0, durability=Durability.OS_BUFFER, keep_incoming=True,
                              archive_days=0)
            store.save_outgoing(3, message(b"8", 3, 5, [(11, b"ORD-2"), (39, b"2"), (150, b"F")], out=True))
            store.sync()
            line = lines.next()
            assert "OUT" in line and "ORD-2" in line and "OrdStatus=2(FILLED)" in line
            # The next day: the sequence is reset and archived; the follower says where the ended one went.
            store.reset(1_796_162_400 * 1_000_000_000)
            store.save_outgoing(1, message(b"A", 1, 6, [(98, b"0"), (108, b"30")], out=True))
            store.sync()
            assert lines.next() == ("-- the session's sequence numbers were reset (store generation 2); the ended "
                                    "sequence is archived as 20261201T220000Z-00000001 "
                                    "(--archive 20261201T220000Z-00000001)")
            assert "OUT        1  Logon" in lines.next()
            store.close()
        finally:
            follower.terminate()
            follower.wait(timeout=10)


def test_an_archived_sequence_is_listed_and_read_with_the_same_filters(topology: Path) -> None:
    with FileStore(topology.parent / "store", "client", now_ns=0, durability=Durability.OS_BUFFER,
                   keep_incoming=True, archive_days=0) as store:
        store.reset(1_796_162_400 * 1_000_000_000)
    assert fixmesh_log(topology, "--archives") == [
        "20261201T220000Z-00000001  ended 2026-12-01T22:00:00.000  store generation 1"]
    live = subprocess.run([FIXMESH, "log", "--config", str(topology), "client"], capture_output=True, text=True,
                          timeout=60)
    assert (live.returncode, live.stdout) == (1, ""), live  # the live sequence holds nothing yet
    archived = fixmesh_log(topology, "--archive", "20261201T220000Z-00000001", "--type", "NewOrderSingle")
    assert [line.split()[1:4] for line in archived] == [["IN", "2", "NewOrderSingle"], ["IN", "3", "NewOrderSingle"]]
    result = subprocess.run([FIXMESH, "log", "--config", str(topology), "client", "--archive", "yesterday"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no archived sequence 'yesterday'" in result.stderr, result.stderr
    assert "the archived ones: 20261201T220000Z-00000001" in result.stderr


def test_a_bad_argument_or_session_gets_one_clear_error(topology: Path) -> None:
    for args, words in ((["client", "--seq", "9-2"], "--seq '9-2'"), (["nosuch"], "no session named 'nosuch'"),
                        (["client", "--since", "yesterday"], "--since 'yesterday'")):
        result = subprocess.run([FIXMESH, "log", "--config", str(topology), *args], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2 and words in result.stderr, result.stderr
