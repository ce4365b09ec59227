"""The message store contract, run against MemoryStore and FileStore alike,
plus the file store's own promises: recovery from torn writes, clear errors
on bad input, reads that touch only the requested range."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import actors.store.file as file_module
from actors.store import (
    Durability,
    FileStore,
    MemoryStore,
    MessageStore,
    StoreClosedError,
    StoreCorruptError,
    StoreError,
    StoreIdentityError,
    StoreLockedError,
    StoreNotFoundError,
    StoreWriteError,
    file_system_trouble,
    open_store,
    remove_store,
)
from actors.store.__main__ import main as store_cli
from actors.store.layout import IDENTITY_NAME, data_path, session_dir, session_dir_name
from actors.store.records import INDEX_ENTRY_SIZE, RECORD_HEADER_SIZE, SLOT_SIZE, slot_offset

SID = "FIX.4.4:ALPHA->BETA"
NOW_NS = 1_700_000_000_123_456_789
REPO = Path(__file__).resolve().parents[2]

Opener = Callable[..., MessageStore]


def msg(seq: int, size: int = 40) -> bytes:
    """A recognisable payload whose bytes depend on the seq, so mix-ups show."""
    head = b"8=FIX.4.4\x0134=%d\x01" % seq
    return head + bytes([65 + seq % 26]) * max(0, size - len(head))


def file_of(store: MessageStore, kind: str) -> Path:
    assert isinstance(store, FileStore)
    return data_path(store.path, store.generation, kind)


# -- the shared contract ----------------------------------------------------------------

STORE_KINDS = ["memory", "file-os_buffer", "file-batch", "file-fsync_each"]


@pytest.fixture(params=STORE_KINDS)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores of the parametrized kind in tmp_path and closes them afterwards."""
    opened: list[MessageStore] = []
    kind, _, mode = str(request.param).partition("-")

    def open_(keep_incoming: bool = False) -> MessageStore:
        durability = Durability(mode) if mode else Durability.BATCH
        store = open_store(
            kind, tmp_path, SID, now_ns=NOW_NS, durability=durability, keep_incoming=keep_incoming
        )
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def test_new_store_starts_at_one_with_given_creation_time(opener: Opener) -> None:
    store = opener()
    assert isinstance(store, MessageStore)
    assert (store.next_sender_seq, store.next_target_seq) == (1, 1)
    assert store.creation_time_ns == NOW_NS
    assert store.session_id == SID
    assert store.get_outgoing(1, 1_000_000) == []


def test_save_outgoing_advances_sender_seq_and_is_readable(opener: Opener) -> None:
    store = opener()
    for seq in range(1, 6):
        store.save_outgoing(seq, msg(seq))
    assert store.next_sender_seq == 6
    assert store.get_outgoing(1, 5) == [(s, msg(s)) for s in range(1, 6)]
    assert store.next_target_seq == 1


@pytest.mark.parametrize(
    ("begin", "end", "expected"),
    [
        (1, 10, [1, 2, 3, 5, 8]),
        (3, 5, [3, 5]),
        (4, 4, []),
        (6, 7, []),
        (8, 8, [8]),
        (9, 1 << 40, []),
        (5, 3, []),
        (0, 2, [1, 2]),
    ],
)
def test_get_outgoing_range_is_inclusive_ascending_and_skips_gaps(
    opener: Opener, begin: int, end: int, expected: list[int]
) -> None:
    store = opener()
    for seq in (1, 2, 3, 5, 8):
        store.save_outgoing(seq, msg(seq))
    assert store.get_outgoing(begin, end) == [(s, msg(s)) for s in expected]


def test_latest_save_of_a_seq_wins_after_lowering_sender_seq(opener: Opener) -> None:
    store = opener()
    for seq in range(1, 6):
        store.save_outgoing(seq, msg(seq))
    store.set_next_sender_seq(3)
    store.save_outgoing(3, b"again 3")
    store.save_outgoing(4, b"again 4")
    assert store.next_sender_seq == 5
    assert store.get_outgoing(1, 5) == [(1, msg(1)), (2, msg(2)), (3, b"again 3"), (4, b"again 4"), (5, msg(5))]


def test_set_next_seqs(opener: Opener) -> None:
    store = opener()
    store.set_next_sender_seq(42)
    store.set_next_target_seq(7)
    assert (store.next_sender_seq, store.next_target_seq) == (42, 7)
    store.save_outgoing(42, msg(42))
    assert store.next_sender_seq == 43


def test_save_incoming_advances_target_and_journals_only_when_asked(opener: Opener) -> None:
    store = opener()
    store.save_incoming(1, b"in 1")
    assert store.next_target_seq == 2
    assert isinstance(store, (MemoryStore, FileStore))
    assert store.get_incoming(1, 10) == []


def test_incoming_journal(opener: Opener) -> None:
    store = opener(keep_incoming=True)
    for seq in (1, 2, 4):
        store.save_incoming(seq, b"in %d" % seq)
    assert store.next_target_seq == 5
    assert isinstance(store, (MemoryStore, FileStore))
    assert store.get_incoming(2, 4) == [(2, b"in 2"), (4, b"in 4")]


def test_reset_drops_messages_and_restarts_sequences(opener: Opener) -> None:
    store = opener(keep_incoming=True)
    for seq in range(1, 4):
        store.save_outgoing(seq, msg(seq))
        store.save_incoming(seq, b"in")
    store.reset(NOW_NS + 86_400 * 10**9)
    assert (store.next_sender_seq, store.next_target_seq) == (1, 1)
    assert store.creation_time_ns == NOW_NS + 86_400 * 10**9
    assert store.get_outgoing(1, 100) == []
    store.save_outgoing(1, b"fresh")
    assert store.get_outgoing(1, 100) == [(1, b"fresh")]


def test_sync_keeps_everything_readable(opener: Opener) -> None:
    store = opener()
    store.save_outgoing(1, msg(1))
    store.sync()
    store.save_outgoing(2, msg(2))
    store.sync()
    store.sync()
    assert store.get_outgoing(1, 2) == [(1, msg(1)), (2, msg(2))]


def test_sync_messages_syncs_the_logs_and_leaves_the_sequence_slot_to_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver syncs the logs before a send and the slot after it, so the slot's fsync does not delay the send."""
    synced: list[str] = []
    real = file_module._fdatasync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}").rsplit(".", 1)[-1])
        real(fd)

    monkeypatch.setattr(file_module, "_fdatasync", recording)
    store = open_file(tmp_path, durability=Durability.BATCH, keep_incoming=True)
    store.save_outgoing(1, msg(1))
    store.save_incoming(1, msg(1))
    store.sync_messages()
    assert sorted(synced) == ["log", "log"]  # out.log and in.log, not seq
    synced.clear()
    store.sync()
    assert synced == ["seq"]
    synced.clear()
    store.sync()
    assert synced == []
    store.close()


def test_closed_store_refuses_use(opener: Opener) -> None:
    store = opener()
    store.close()
    store.close()
    with pytest.raises(StoreClosedError):
        store.save_outgoing(1, b"x")
    with pytest.raises(StoreClosedError):
        store.get_outgoing(1, 1)


@pytest.mark.parametrize("seq", [0, -1, True, 1.0])
def test_invalid_sequence_numbers_are_rejected(opener: Opener, seq: object) -> None:
    store = opener()
    with pytest.raises(ValueError):
        store.save_outgoing(seq, b"x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.set_next_target_seq(seq)  # type: ignore[arg-type]


def test_text_is_not_bytes(opener: Opener) -> None:
    with pytest.raises(TypeError):
        opener().save_outgoing(1, "8=FIX.4.4")  # type: ignore[arg-type]


def test_unknown_store_kind_and_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="redis"):
        open_store("redis", tmp_path, SID, now_ns=NOW_NS)
    with pytest.raises(ValueError, match="directory"):
        open_store("file", None, SID, now_ns=NOW_NS)


# -- file store: persistence across reopen ------------------------------------------------


def open_file(directory: Path, **kwargs: object) -> FileStore:
    options: dict[str, object] = {"now_ns": NOW_NS, "durability": Durability.OS_BUFFER}
    options.update(kwargs)
    return FileStore(directory, SID, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("durability", list(Durability))
def test_reopen_restores_sequences_messages_and_creation_time(tmp_path: Path, durability: Durability) -> None:
    with open_file(tmp_path, durability=durability, keep_incoming=True) as store:
        for seq in range(1, 21):
            store.save_outgoing(seq, msg(seq, 200))
        store.save_incoming(1, b"in 1")
        store.save_incoming(2, b"in 2")
    with open_file(tmp_path, durability=durability, keep_incoming=True, now_ns=1) as store:
        assert (store.next_sender_seq, store.next_target_seq) == (21, 3)
        assert store.creation_time_ns == NOW_NS
        assert store.get_outgoing(1, 20) == [(s, msg(s, 200)) for s in range(1, 21)]
        assert store.get_incoming(1, 2) == [(1, b"in 1"), (2, b"in 2")]


def test_reopen_keeps_overwritten_seq_latest(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        for seq in range(1, 6):
            store.save_outgoing(seq, msg(seq))
        store.set_next_sender_seq(2)
        store.save_outgoing(2, b"second 2")
    with open_file(tmp_path) as store:
        assert store.next_sender_seq == 3
        assert store.get_outgoing(1, 5) == [(1, msg(1)), (2, b"second 2"), (3, msg(3)), (4, msg(4)), (5, msg(5))]


@pytest.mark.parametrize(
    ("actions", "expected_next_sender"),
    [
        (["set 100"], 100),
        (["set 100", "save 100"], 101),
        (["save 1", "save 2", "set 50"], 50),
        (["save 1", "set 50", "save 7"], 8),
        (["save 5", "set 3", "save 3", "set 9"], 9),
    ],
)
def test_reopen_keeps_whichever_came_last_set_or_save(
    tmp_path: Path, actions: list[str], expected_next_sender: int
) -> None:
    with open_file(tmp_path) as store:
        for action in actions:
            verb, number = action.split()
            if verb == "set":
                store.set_next_sender_seq(int(number))
            else:
                store.save_outgoing(int(number), msg(int(number)))
        assert store.next_sender_seq == expected_next_sender
    with open_file(tmp_path) as store:
        assert store.next_sender_seq == expected_next_sender


def test_reset_persists_and_removes_the_old_generation(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        store.save_outgoing(1, msg(1))
        old_log = file_of(store, "out.log")
        store.reset(NOW_NS + 5)
        assert not old_log.exists()
    with open_file(tmp_path) as store:
        assert store.creation_time_ns == NOW_NS + 5
        assert store.get_outgoing(1, 10) == []
        assert store.next_sender_seq == 1


def test_reset_interrupted_before_commit_keeps_the_old_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_file(tmp_path)
    store.save_outgoing(1, msg(1))
    store.set_next_target_seq(9)

    def power_cut(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, "simulated failure before the identity switch")

    monkeypatch.setattr(file_module.layout, "write_identity", power_cut)
    with pytest.raises(StoreWriteError, match="I/O error: check the device"):
        store.reset(NOW_NS + 1)
    with pytest.raises(StoreClosedError):
        store.save_outgoing(2, msg(2))
    store.close()
    monkeypatch.undo()
    with open_file(tmp_path) as store:
        assert store.get_outgoing(1, 5) == [(1, msg(1))]
        assert (store.next_sender_seq, store.next_target_seq, store.creation_time_ns) == (2, 9, NOW_NS)
        assert sorted(p.name for p in store.path.glob("0000000*")) == sorted(
            f"00000001.{kind}" for kind in ("out.log", "out.idx", "seq", "in.log")
        )


def test_store_holds_an_index_not_the_messages(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        tracemalloc.start()
        try:
            for seq in range(1, 20_001):
                store.save_outgoing(seq, msg(seq, 1000))
            grown, _peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert grown < 2_000_000, "20 MB of messages must stay on disk"


def test_range_read_touches_only_the_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_file(tmp_path) as store:
        for seq in range(1, 5001):
            store.save_outgoing(seq, msg(seq, 200))
        reads: list[int] = []
        real_pread = os.pread

        def counting_pread(fd: int, size: int, offset: int) -> bytes:
            reads.append(size)
            return real_pread(fd, size, offset)

        monkeypatch.setattr(os, "pread", counting_pread)
        got = store.get_outgoing(2001, 3000)
    assert [s for s, _ in got] == list(range(2001, 3001))
    assert all(data == msg(s, 200) for s, data in got)
    assert sum(reads) == 1000 * (RECORD_HEADER_SIZE + 200)


class CountingReader(file_module.RecordReader):
    records = 0

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        for item in super().__iter__():
            CountingReader.records += 1
            yield item


def test_open_uses_the_index_instead_of_parsing_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_file(tmp_path) as store:
        for seq in range(1, 10_001):
            store.save_outgoing(seq, msg(seq))
    monkeypatch.setattr(file_module, "RecordReader", CountingReader)
    CountingReader.records = 0
    with open_file(tmp_path) as store:
        assert store.next_sender_seq == 10_001
    assert CountingReader.records == 0


def crash_copy(store: FileStore, parent: Path) -> Path:
    """What a kill -9 leaves: the files as the OS has them, buffers in the process lost."""
    shutil.copytree(store.path, parent / store.path.name)
    return parent


def test_crash_recovery_rescans_only_the_unindexed_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_file(tmp_path / "live")
    for seq in range(1, 10_001):
        store.save_outgoing(seq, msg(seq))
    crashed = crash_copy(store, tmp_path / "crashed")
    store.close()
    monkeypatch.setattr(file_module, "RecordReader", CountingReader)
    CountingReader.records = 0
    with open_file(crashed) as recovered:
        assert recovered.next_sender_seq == 10_001
        assert recovered.get_outgoing(9990, 10_000) == [(s, msg(s)) for s in range(9990, 10_001)]
    assert 0 < CountingReader.records <= file_module.INDEX_FLUSH_BYTES // INDEX_ENTRY_SIZE


# -- file store: torn writes ---------------------------------------------------------------

N_MESSAGES = 6


@pytest.fixture
def pristine(tmp_path: Path) -> Path:
    """A closed store holding N_MESSAGES outgoing and incoming messages of varied sizes."""
    with open_file(tmp_path / "pristine", keep_incoming=True) as store:
        for seq in range(1, N_MESSAGES + 1):
            store.save_outgoing(seq, msg(seq, 30 + 7 * seq))
            store.save_incoming(seq, b"in %d" % seq)
    return tmp_path / "pristine"


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def store_file(parent: Path, kind: str) -> Path:
    return data_path(session_dir(parent, SID), 1, kind)


def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def test_torn_outgoing_tail_at_every_byte_is_cut_with_a_warning(
    pristine: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_size = store_file(pristine, "out.log").stat().st_size
    last_start = log_size - (RECORD_HEADER_SIZE + 30 + 7 * N_MESSAGES)
    for cut in range(last_start, log_size):
        copy = copy_store(pristine, tmp_path / f"cut{cut}")
        truncate(store_file(copy, "out.log"), cut)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="fixmesh.store"), open_file(copy) as store:
            assert store.get_outgoing(1, 100) == [(s, msg(s, 30 + 7 * s)) for s in range(1, N_MESSAGES)]
            # A slot written after the lost append already saw seq N: it is never reused.
            assert store.next_sender_seq == N_MESSAGES + 1
            store.save_outgoing(N_MESSAGES + 1, b"next")
        if cut > last_start:
            assert any(
                "out.log" in r.getMessage() and f"offset {last_start}" in r.getMessage() for r in caplog.records
            ), caplog.text
        with open_file(copy) as store:
            assert store.get_outgoing(N_MESSAGES, 100) == [(N_MESSAGES + 1, b"next")]
            assert store.outgoing_count == N_MESSAGES


def test_torn_tail_without_a_later_slot_write_rolls_the_sender_seq_back(tmp_path: Path) -> None:
    with open_file(tmp_path / "pristine") as store:
        for seq in range(1, 4):
            store.save_outgoing(seq, msg(seq))
    for cut in range(1, RECORD_HEADER_SIZE + len(msg(3))):
        copy = copy_store(tmp_path / "pristine", tmp_path / f"cut{cut}")
        log_path = store_file(copy, "out.log")
        truncate(log_path, log_path.stat().st_size - cut)
        with open_file(copy) as store:
            assert store.next_sender_seq == 3
            assert store.outgoing_count == 2


def test_torn_index_at_every_byte_is_rebuilt_from_the_log(pristine: Path, tmp_path: Path) -> None:
    idx_size = store_file(pristine, "out.idx").stat().st_size
    for cut in range(idx_size - 2 * INDEX_ENTRY_SIZE, idx_size):
        copy = copy_store(pristine, tmp_path / f"cut{cut}")
        truncate(store_file(copy, "out.idx"), cut)
        with open_file(copy) as store:
            assert store.get_outgoing(1, 100) == [(s, msg(s, 30 + 7 * s)) for s in range(1, N_MESSAGES + 1)]
        assert store_file(copy, "out.idx").stat().st_size == idx_size


def test_lost_index_is_rebuilt(pristine: Path) -> None:
    store_file(pristine, "out.idx").unlink()
    with open_file(pristine) as store:
        assert store.outgoing_count == N_MESSAGES
        assert store.next_sender_seq == N_MESSAGES + 1


def test_index_pointing_past_the_log_is_dropped(pristine: Path) -> None:
    log_path = store_file(pristine, "out.log")
    truncate(log_path, log_path.stat().st_size - (RECORD_HEADER_SIZE + 30 + 7 * N_MESSAGES))
    with open_file(pristine) as store:
        assert store.outgoing_count == N_MESSAGES - 1


def test_torn_journal_tail_at_every_byte(pristine: Path, tmp_path: Path) -> None:
    size = store_file(pristine, "in.log").stat().st_size
    last_start = size - (RECORD_HEADER_SIZE + len(b"in %d" % N_MESSAGES))
    for cut in range(last_start, size):
        copy = copy_store(pristine, tmp_path / f"cut{cut}")
        truncate(store_file(copy, "in.log"), cut)
        with open_file(copy, keep_incoming=True) as store:
            assert [s for s, _ in store.get_incoming(1, 100)] == list(range(1, N_MESSAGES))
            assert store.next_target_seq == N_MESSAGES + 1
            store.save_incoming(N_MESSAGES + 1, b"next")
        with open_file(copy, keep_incoming=True) as store:
            assert store.get_incoming(N_MESSAGES + 1, N_MESSAGES + 1) == [(N_MESSAGES + 1, b"next")]


def test_journal_record_written_before_the_slot_update_counts(tmp_path: Path) -> None:
    with open_file(tmp_path, keep_incoming=True) as store:
        store.save_incoming(1, b"in 1")
        seq_path = file_of(store, "seq")
        before = seq_path.read_bytes()
        store.save_incoming(2, b"in 2")
    seq_path.write_bytes(before)
    with open_file(tmp_path, keep_incoming=True) as store:
        assert store.next_target_seq == 3


def test_zero_filled_tail_from_a_power_loss_is_cut(pristine: Path) -> None:
    with open(store_file(pristine, "out.log"), "ab") as f:
        f.write(bytes(8192))
    with open_file(pristine) as store:
        assert store.outgoing_count == N_MESSAGES
    assert store_file(pristine, "out.log").stat().st_size == sum(
        RECORD_HEADER_SIZE + 30 + 7 * s for s in range(1, N_MESSAGES + 1)
    )


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_damaged_last_record_is_treated_as_torn(pristine: Path) -> None:
    log_path = store_file(pristine, "out.log")
    flip_byte(log_path, log_path.stat().st_size - 3)
    with open_file(pristine) as store:
        assert store.outgoing_count == N_MESSAGES - 1


def test_damaged_record_in_the_middle_reads_as_missing(
    pristine: Path, caplog: pytest.LogCaptureFixture
) -> None:
    third = sum(RECORD_HEADER_SIZE + 30 + 7 * s for s in (1, 2))
    flip_byte(store_file(pristine, "out.log"), third + RECORD_HEADER_SIZE + 5)
    with caplog.at_level(logging.WARNING, logger="fixmesh.store"), open_file(pristine) as store:
        got = store.get_outgoing(1, 100)
    assert [s for s, _ in got] == [1, 2, 4, 5, 6]
    assert f"offset {third}" in caplog.text and "out.log" in caplog.text


def test_damage_in_the_middle_is_never_cut_off(pristine: Path) -> None:
    third = sum(RECORD_HEADER_SIZE + 30 + 7 * s for s in (1, 2))
    log_path = store_file(pristine, "out.log")
    flip_byte(log_path, third + RECORD_HEADER_SIZE + 5)
    store_file(pristine, "out.idx").unlink()
    before = log_path.read_bytes()
    with pytest.raises(StoreCorruptError, match=rf"out\.log.*offset {third}.*truncate"):
        open_file(pristine)
    assert log_path.read_bytes() == before


# -- file store: sequence-number slots ---------------------------------------------------------


def test_damaged_newest_slot_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        store.set_next_target_seq(5)
        store.set_next_target_seq(7)
        seq_path = file_of(store, "seq")
    with open(seq_path, "r+b") as f:
        f.seek(slot_offset(3) + 10)
        f.write(b"\xff\xff\xff")
    with open_file(tmp_path) as store:
        assert store.next_target_seq == 5


def test_both_slots_damaged_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        store.set_next_target_seq(5)
        seq_path = file_of(store, "seq")
    seq_path.write_bytes(b"\x01" * (2 * SLOT_SIZE))
    with pytest.raises(StoreCorruptError, match=r"\.seq.*slots"):
        open_file(tmp_path)


# -- file store: identity, locking, naming -----------------------------------------------------


def test_foreign_session_in_identity_file_is_refused_unchanged(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        store.save_outgoing(1, msg(1))
        identity_path = store.path / IDENTITY_NAME
    doc = json.loads(identity_path.read_text())
    doc["session_id"] = "FIX.4.2:OTHER->ONE"
    identity_path.write_text(json.dumps(doc))
    snapshot = {p.name: p.read_bytes() for p in identity_path.parent.iterdir()}
    with pytest.raises(StoreIdentityError, match=r"store\.json.*OTHER->ONE"):
        open_file(tmp_path)
    assert {p.name: p.read_bytes() for p in identity_path.parent.iterdir()} == snapshot


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"{not json", StoreCorruptError),
        (b'{"format": "fixmesh-store"}', StoreCorruptError),
        (b'{"format": "fixmesh-store", "version": 99, "session_id": "x", '
         b'"creation_time_ns": 1, "generation": 1}', StoreIdentityError),
    ],
)
def test_unreadable_identity_file_is_a_clear_error(
    tmp_path: Path, content: bytes, error: type[StoreError]
) -> None:
    with open_file(tmp_path) as store:
        store.save_outgoing(1, msg(1))
        identity_path = store.path / IDENTITY_NAME
    identity_path.write_bytes(content)
    with pytest.raises(error, match=r"store\.json"):
        open_file(tmp_path)
    assert file_of(store, "out.log").stat().st_size > 0


def test_unopenable_data_file_is_a_clear_error(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        store.save_outgoing(1, msg(1))
        seq_path = file_of(store, "seq")
    seq_path.unlink()
    seq_path.mkdir()
    with pytest.raises(StoreError, match=r"00000001\.seq"):
        open_file(tmp_path)
    assert file_of(store, "out.log").stat().st_size > 0


def test_missing_identity_with_messages_present_is_refused(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        store.save_outgoing(1, msg(1))
    (store.path / IDENTITY_NAME).unlink()
    with pytest.raises(StoreCorruptError, match="missing"):
        open_file(tmp_path)
    assert file_of(store, "out.log").stat().st_size > 0


def test_interrupted_creation_is_completed(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        path = store.path
    (path / IDENTITY_NAME).unlink()
    with open_file(tmp_path, now_ns=42) as store:
        assert store.creation_time_ns == 42


def test_second_writer_is_locked_out(tmp_path: Path) -> None:
    with open_file(tmp_path):
        with pytest.raises(StoreLockedError, match="lock"):
            open_file(tmp_path)
        with pytest.raises(StoreLockedError):
            remove_store(tmp_path, SID, now_ns=NOW_NS)
    open_file(tmp_path).close()


def test_inspect_reads_a_live_store_without_changing_it(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        store.save_outgoing(1, msg(1))
        store.set_next_target_seq(4)
        with FileStore.inspect(tmp_path, SID) as view:
            assert (view.next_sender_seq, view.next_target_seq, view.outgoing_count) == (2, 4, 1)
            with pytest.raises(StoreError, match="read-only"):
                view.save_outgoing(2, b"x")
    with pytest.raises(StoreNotFoundError):
        FileStore.inspect(tmp_path, "FIX.4.4:NOBODY->HOME")


@pytest.mark.parametrize("session_id", ["A:B", "A_B", "../../etc", ".", "FIX.4.4:X->Y/Z", "é€"])
def test_session_directory_names_are_safe_and_distinct(tmp_path: Path, session_id: str) -> None:
    name = session_dir_name(session_id)
    assert "/" not in name and not name.startswith(".")
    assert session_dir(tmp_path, session_id).parent == tmp_path
    assert name != session_dir_name(session_id + " ")


def test_an_io_error_makes_the_store_refuse_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_file(tmp_path)
    store.save_outgoing(1, msg(1))

    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(StoreWriteError) as failed:
        store.save_outgoing(2, msg(2))
    monkeypatch.undo()
    assert str(failed.value) == (f"cannot write the store of {SID!r} at {store.path}: No space left on device; "
                                 "the file system is full: free space on it")
    assert failed.value.errno == errno.ENOSPC and file_system_trouble(failed.value)
    with pytest.raises(StoreClosedError, match="reopen|open it again"):
        store.save_outgoing(2, msg(2))
    store.close()
    with open_file(tmp_path) as store:
        assert store.next_sender_seq == 2


# -- removal and the command line ---------------------------------------------------------------


def test_remove_store(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        store.save_outgoing(1, msg(1))
        path = store.path
    assert remove_store(tmp_path, SID, now_ns=NOW_NS, keep_messages=False) is True
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    assert remove_store(tmp_path, SID, now_ns=NOW_NS) is False
    with open_file(tmp_path, now_ns=9) as store:
        assert (store.next_sender_seq, store.creation_time_ns) == (1, 9)


def test_remove_store_refuses_another_sessions_files(tmp_path: Path) -> None:
    with open_file(tmp_path) as store:
        identity_path = store.path / IDENTITY_NAME
    doc = json.loads(identity_path.read_text())
    doc["session_id"] = "someone else"
    identity_path.write_text(json.dumps(doc))
    with pytest.raises(StoreIdentityError):
        remove_store(tmp_path, SID, now_ns=NOW_NS)
    assert identity_path.exists()


def test_cli_show_and_reset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open_file(tmp_path, keep_incoming=True) as store:
        for seq in range(1, 4):
            store.save_outgoing(seq, msg(seq))
        store.save_incoming(1, b"in")
    assert store_cli(["show", "--dir", str(tmp_path), "--session", SID]) == 0
    out = capsys.readouterr().out
    assert "next sender seq:  4" in out and "next target seq:  2" in out
    assert "outgoing stored:  3 messages" in out and "incoming journal: 1 messages" in out
    assert f"({NOW_NS} ns)" in out and "2023-11-14 22:13:20.123456789 UTC" in out
    assert store_cli(["reset", "--dir", str(tmp_path), "--session", SID]) == 0
    assert "removed" in capsys.readouterr().out
    assert store_cli(["show", "--dir", str(tmp_path), "--session", SID]) == 1
    assert "no store" in capsys.readouterr().err


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    open_file(tmp_path).close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "actors.store", "show", "--dir", str(tmp_path), "--session", SID],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert SID in result.stdout


# -- FileStore against MemoryStore over random operation sequences ------------------------------

seqs = st.integers(min_value=1, max_value=30)
payloads = st.binary(max_size=48)


class FileMatchesMemory(RuleBasedStateMachine):
    """Any sequence of calls, closes, reopens and simulated kill -9 gives MemoryStore's answers."""

    durability = Durability.OS_BUFFER

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="fixmesh-store-"))
        self.directory = self.tmp / "0"
        self.crashes = 0
        self.model = MemoryStore(SID, now_ns=NOW_NS, keep_incoming=True)
        self.store = self.open()

    def open(self) -> FileStore:
        return FileStore(
            self.directory, SID, now_ns=NOW_NS, durability=self.durability, keep_incoming=True
        )

    def both(self, name: str, *args: object) -> None:
        getattr(self.model, name)(*args)
        getattr(self.store, name)(*args)

    @rule(seq=seqs, data=payloads)
    def save_outgoing(self, seq: int, data: bytes) -> None:
        self.both("save_outgoing", seq, data)

    @rule(data=payloads)
    def send_next(self, data: bytes) -> None:
        self.both("save_outgoing", self.model.next_sender_seq, data)

    @rule(seq=seqs, data=payloads)
    def save_incoming(self, seq: int, data: bytes) -> None:
        self.both("save_incoming", seq, data)

    @rule(n=seqs)
    def set_next_sender(self, n: int) -> None:
        self.both("set_next_sender_seq", n)

    @rule(n=seqs)
    def set_next_target(self, n: int) -> None:
        self.both("set_next_target_seq", n)

    @rule(creation=st.integers(min_value=0, max_value=2**62))
    def reset(self, creation: int) -> None:
        self.both("reset", creation)

    @rule()
    def sync(self) -> None:
        self.both("sync")

    @rule()
    def sync_messages(self) -> None:
        self.both("sync_messages")

    @rule()
    def close_and_reopen(self) -> None:
        self.store.close()
        self.store = self.open()

    @rule()
    def kill_and_restart(self) -> None:
        self.crashes += 1
        parent = self.tmp / str(self.crashes)
        shutil.copytree(self.store.path, parent / self.store.path.name)
        self.store.close()
        self.directory = parent
        self.store = self.open()

    @rule(begin=st.integers(min_value=0, max_value=32), length=st.integers(min_value=-1, max_value=32))
    def read_range(self, begin: int, length: int) -> None:
        end = begin + length
        assert self.store.get_outgoing(begin, end) == self.model.get_outgoing(begin, end)

    @invariant()
    def same_state(self) -> None:
        assert self.store.next_sender_seq == self.model.next_sender_seq
        assert self.store.next_target_seq == self.model.next_target_seq
        assert self.store.creation_time_ns == self.model.creation_time_ns
        assert self.store.get_outgoing(1, 1 << 40) == self.model.get_outgoing(1, 1 << 40)
        assert self.store.get_incoming(1, 1 << 40) == self.model.get_incoming(1, 1 << 40)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class FileMatchesMemoryBatch(FileMatchesMemory):
    durability = Durability.BATCH


TestFileMatchesMemory = FileMatchesMemory.TestCase
TestFileMatchesMemory.settings = settings(max_examples=60, stateful_step_count=30, deadline=None, database=None)
TestFileMatchesMemoryBatch = FileMatchesMemoryBatch.TestCase
TestFileMatchesMemoryBatch.settings = settings(max_examples=15, stateful_step_count=30, deadline=None, database=None)
