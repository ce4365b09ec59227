"""A reset keeps the ended sequence's messages in the store's archive: real files, real resets, real crashes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actors.store import (
    Durability,
    FileStore,
    StoreNotFoundError,
    StoreWriteError,
    archived_sequences,
    remove_store,
)
from actors.store import layout as layout_module
from actors.store.__main__ import main as store_cli
from actors.store.archive import NS_PER_DAY, archive_root, stamp
from actors.store.layout import data_path, session_dir

SID = "FIX.4.4:GATEWAY->VENUE"
#: 2026-12-01 22:00:00 UTC, the end of a trading day.
EVENING_NS = 1_796_162_400 * 1_000_000_000
REPO = Path(__file__).resolve().parents[2]


def msg(seq: int) -> bytes:
    return b"8=FIX.4.4\x0134=%d\x0111=ORDER-%d\x01" % (seq, seq)


def open_store(directory: Path, *, archive_days: int | None = 0, now_ns: int = EVENING_NS - NS_PER_DAY,
               durability: Durability = Durability.OS_BUFFER) -> FileStore:
    return FileStore(directory, SID, now_ns=now_ns, durability=durability, keep_incoming=True,
                     archive_days=archive_days)


def a_day_of_orders(store: FileStore, count: int = 3) -> None:
    for seq in range(1, count + 1):
        store.save_incoming(seq, b"in-%d" % seq)
        store.save_outgoing(seq, msg(seq))


def root_entries(directory: Path) -> list[str]:
    return sorted(p.name for p in session_dir(directory, SID).iterdir())


@pytest.mark.parametrize("durability", [Durability.OS_BUFFER, Durability.BATCH])
def test_a_reset_archives_the_ended_sequence_and_the_archive_reads_like_a_store(
        tmp_path: Path, durability: Durability) -> None:
    with open_store(tmp_path, durability=durability) as store:
        a_day_of_orders(store)
        store.reset(EVENING_NS)
        assert (store.next_sender_seq, store.next_target_seq, store.outgoing_count) == (1, 1, 0)
        store.save_outgoing(1, b"the next day")
    (sequence,) = archived_sequences(tmp_path, SID)
    assert sequence.name == "20261201T220000Z-00000001"
    assert (sequence.ended_ns, sequence.generation) == (EVENING_NS, 1)
    with FileStore.inspect(tmp_path, SID, archived=sequence.name) as kept:
        assert kept.get_outgoing(1, 10) == [(seq, msg(seq)) for seq in (1, 2, 3)]
        assert kept.get_incoming(1, 10) == [(seq, b"in-%d" % seq) for seq in (1, 2, 3)]
        assert (kept.next_sender_seq, kept.next_target_seq) == (4, 4)
        assert kept.creation_time_ns == EVENING_NS - NS_PER_DAY
    assert root_entries(tmp_path) == ["00000002.in.log", "00000002.out.idx", "00000002.out.log", "00000002.seq",
                                      "archive", "lock", "store.json"]
    with open_store(tmp_path) as store:
        assert store.get_outgoing(1, 10) == [(1, b"the next day")]


def test_a_reset_of_a_sequence_without_messages_archives_nothing(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.reset(EVENING_NS)
        store.set_next_target_seq(5)
        store.reset(EVENING_NS + 1)
    assert archived_sequences(tmp_path, SID) == []
    assert "00000001.out.log" not in root_entries(tmp_path)


def test_without_an_archive_a_reset_deletes_the_ended_sequence(tmp_path: Path) -> None:
    with open_store(tmp_path, archive_days=None) as store:
        a_day_of_orders(store)
        store.reset(EVENING_NS)
    assert archived_sequences(tmp_path, SID) == []
    assert "archive" not in root_entries(tmp_path)
    assert "00000001.out.log" not in root_entries(tmp_path)


def test_archives_older_than_archive_days_are_removed_at_a_reset_and_at_open(tmp_path: Path) -> None:
    with open_store(tmp_path, archive_days=2) as store:
        for day in range(4):
            a_day_of_orders(store)
            store.reset(EVENING_NS + day * NS_PER_DAY)
        names = [s.name for s in archived_sequences(tmp_path, SID)]
        assert names == ["20261202T220000Z-00000002", "20261203T220000Z-00000003", "20261204T220000Z-00000004"]
    open_store(tmp_path, archive_days=1, now_ns=EVENING_NS + 3 * NS_PER_DAY + NS_PER_DAY // 2).close()
    assert [s.name for s in archived_sequences(tmp_path, SID)] == ["20261204T220000Z-00000004"]
    open_store(tmp_path, archive_days=0, now_ns=EVENING_NS + 900 * NS_PER_DAY).close()
    assert len(archived_sequences(tmp_path, SID)) == 1


def test_a_failure_after_the_commit_leaves_the_files_for_the_next_open_to_archive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk refuses the archive's renames: the reset stands, nothing is deleted, the next open finishes."""
    store = open_store(tmp_path)
    a_day_of_orders(store)
    real_replace = os.replace

    def refused(src: object, dst: object) -> None:
        if "archive" in str(dst) and not str(dst).endswith("store.json"):
            raise OSError(5, "Input/output error")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", refused)
    store.reset(EVENING_NS)
    assert store.next_sender_seq == 1
    store.reset(EVENING_NS + 1)  # an empty sequence ends too: the unarchived one must survive it
    monkeypatch.undo()
    store.close()
    assert "00000001.out.log" in root_entries(tmp_path)
    open_store(tmp_path).close()
    (sequence,) = archived_sequences(tmp_path, SID)
    with FileStore.inspect(tmp_path, SID, archived=sequence.name) as kept:
        assert [seq for seq, _ in kept.get_outgoing(1, 10)] == [1, 2, 3]
    assert "00000001.out.log" not in root_entries(tmp_path)


def test_a_reset_that_fails_before_its_commit_keeps_the_live_sequence(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path)
    a_day_of_orders(store)

    real_write = layout_module.write_identity

    def refused(root: Path, identity: layout_module.Identity, *, durable: bool) -> None:
        if identity.generation == 2:  # the commit; the archive's own identity (generation 1) is written
            raise OSError(28, "No space left on device")
        real_write(root, identity, durable=durable)

    monkeypatch.setattr(layout_module, "write_identity", refused)
    with pytest.raises(StoreWriteError, match="No space left"):
        store.reset(EVENING_NS)
    monkeypatch.undo()
    store.close()
    with open_store(tmp_path) as store:
        assert [seq for seq, _ in store.get_outgoing(1, 10)] == [1, 2, 3]
    assert archived_sequences(tmp_path, SID) == []
    assert os.listdir(archive_root(session_dir(tmp_path, SID))) == []


CRASH_AFTER_COMMIT = """
import os, sys
from actors.store import Durability, FileStore, layout
real = layout.write_identity
def commit_then_die(root, identity, *, durable):
    real(root, identity, durable=durable)
    if identity.generation == 2:
        os._exit(9)
layout.write_identity = commit_then_die
store = FileStore(sys.argv[1], {sid!r}, now_ns=1, durability=Durability.BATCH, keep_incoming=True, archive_days=0)
for seq in range(1, 4):
    store.save_outgoing(seq, b"8=FIX.4.4\\x0134=%d\\x01" % seq)
store.sync()
store.reset({evening})
"""


def test_a_process_killed_between_the_commit_and_the_archive_loses_nothing(tmp_path: Path) -> None:
    """The writing process dies right after the reset's commit point; the next open fills the archive."""
    script = textwrap.dedent(CRASH_AFTER_COMMIT.format(sid=SID, evening=EVENING_NS))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    died = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, timeout=60)
    assert died.returncode == 9
    staged = os.listdir(archive_root(session_dir(tmp_path, SID)))
    assert len(staged) == 1 and staged[0].startswith(".staging-")
    with open_store(tmp_path) as store:
        assert (store.generation, store.next_sender_seq) == (2, 1)
    (sequence,) = archived_sequences(tmp_path, SID)
    assert sequence.name == f"{stamp(EVENING_NS)}-00000001"
    with FileStore.inspect(tmp_path, SID, archived=sequence.name) as kept:
        assert [seq for seq, _ in kept.get_outgoing(1, 10)] == [1, 2, 3]


def test_an_archive_name_must_be_one_the_store_lists(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        a_day_of_orders(store)
        store.reset(EVENING_NS)
    for name in ("../..", "20261201T220000Z-00000009", "store.json"):
        with pytest.raises(StoreNotFoundError, match="the archived ones: 20261201T220000Z-00000001"):
            FileStore.inspect(tmp_path, SID, archived=name)


def test_removing_a_store_keeps_its_messages_and_its_archives_unless_discarded(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        a_day_of_orders(store)
        store.reset(EVENING_NS)
        a_day_of_orders(store, 2)
    assert remove_store(tmp_path, SID, now_ns=EVENING_NS + NS_PER_DAY) is True
    names = [s.name for s in archived_sequences(tmp_path, SID)]
    assert names == ["20261201T220000Z-00000001", "20261202T220000Z-00000002"]
    with FileStore.inspect(tmp_path, SID, archived=names[1]) as kept:
        assert [seq for seq, _ in kept.get_outgoing(1, 10)] == [1, 2]
    assert root_entries(tmp_path) == ["archive"]
    with open_store(tmp_path, now_ns=EVENING_NS + NS_PER_DAY) as store:
        assert (store.generation, store.next_sender_seq) == (1, 1)
        a_day_of_orders(store, 1)
    assert remove_store(tmp_path, SID, now_ns=EVENING_NS + 2 * NS_PER_DAY, keep_messages=False) is True
    assert [s.name for s in archived_sequences(tmp_path, SID)] == names
    assert [p.name for p in tmp_path.iterdir()] == [session_dir(tmp_path, SID).name]


def test_the_cli_lists_archives_and_its_reset_keeps_or_discards(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(tmp_path) as store:
        a_day_of_orders(store)
        store.reset(EVENING_NS)
        a_day_of_orders(store, 1)
    assert store_cli(["show", "--dir", str(tmp_path), "--session", SID]) == 0
    assert "archived:         20261201T220000Z-00000001 (ended 2026-12-01 22:00:00" in capsys.readouterr().out
    assert store_cli(["reset", "--dir", str(tmp_path), "--session", SID]) == 0
    assert "its messages kept in its archive" in capsys.readouterr().out
    assert store_cli(["show", "--dir", str(tmp_path), "--session", SID]) == 1
    shown = capsys.readouterr()
    assert "no store" in shown.err and shown.out.count("archived:") == 2
    assert data_path(session_dir(tmp_path, SID), 1, "out.log").exists() is False
