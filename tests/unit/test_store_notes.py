"""Notes stored with outgoing messages, and the forwarding journal that relies on them.

A forward's message and the note naming the forward reach the disk with the
store's one sync; the journal's own file is synced only at checkpoints. These
tests take lines from the journal's file as a power cut would and show the
store's notes put them back, on the real file store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from actors.gateway.forwarding import Forward, Journal, Origin, Verdict
from actors.store import Durability, FileStore, MemoryStore, StoreIdentityError, layout

A = Origin("client", 1000)
NOW_NS = 1_700_000_000_000_000_000


def fwd(seq: int, prev: int | None, origin: Origin = A) -> Forward:
    return Forward(origin, seq, prev, "D", [], [(11, b"%d" % seq)])


def message(seq: int) -> bytes:
    return b"8=FIX.4.4\x0135=D\x0134=%d\x0111=%d\x01" % (seq, seq)


def open_store(root: Path) -> FileStore:
    return FileStore(root, "GW->VENUE", now_ns=NOW_NS, durability=Durability.BATCH)


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_notes_travel_with_their_messages_and_never_into_a_resend(tmp_path: Path, kind: str) -> None:
    store = open_store(tmp_path) if kind == "file" else MemoryStore("GW->VENUE", now_ns=NOW_NS)
    store.save_outgoing(1, message(1))
    store.save_outgoing(2, message(2), b"client 1000 7")
    store.save_outgoing(3, message(3), b"client 1000 8")
    store.save_outgoing(4, message(4))
    assert store.get_outgoing(1, 4) == [(n, message(n)) for n in (1, 2, 3, 4)]
    assert store.get_outgoing(2, 4, limit=1) == [(2, message(2))]
    assert store.get_notes(1, 4) == [(2, b"client 1000 7"), (3, b"client 1000 8")]
    assert store.get_notes(3, 3) == [(3, b"client 1000 8")]
    store.close()


def test_notes_survive_a_reopen_with_or_without_the_index(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for n in range(1, 6):
        store.save_outgoing(n, message(n), b"client 1000 %d" % (n + 10) if n % 2 else b"")
    store.sync()
    store.close()
    reopened = open_store(tmp_path)
    assert reopened.get_notes(1, 5) == [(1, b"client 1000 11"), (3, b"client 1000 13"), (5, b"client 1000 15")]
    reopened.close()
    for idx in tmp_path.rglob("*.out.idx"):
        idx.unlink()  # rebuilt from the log, whose noted records say their own length
    rebuilt = open_store(tmp_path)
    assert rebuilt.next_sender_seq == 6
    assert rebuilt.get_outgoing(1, 5) == [(n, message(n)) for n in range(1, 6)]
    assert rebuilt.get_notes(5, 5) == [(5, b"client 1000 15")]
    rebuilt.close()


def test_a_torn_noted_record_is_cut_off_like_any_torn_tail(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.save_outgoing(1, message(1), b"client 1000 1")
    store.save_outgoing(2, message(2), b"client 1000 2")
    store.close()
    (log,) = tmp_path.rglob("*.out.log")
    os.truncate(log, log.stat().st_size - 3)
    reopened = open_store(tmp_path)
    assert reopened.next_sender_seq == 2
    assert reopened.get_notes(1, 2) == [(1, b"client 1000 1")]
    reopened.close()


def test_a_version_1_store_is_read_and_relabelled_before_anything_is_appended(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.save_outgoing(1, message(1))
    store.close()
    (identity,) = tmp_path.rglob(layout.IDENTITY_NAME)
    doc = json.loads(identity.read_text())
    doc["version"] = 1
    identity.write_text(json.dumps(doc))
    reopened = open_store(tmp_path)
    assert json.loads(identity.read_text())["version"] == layout.FORMAT_VERSION == 2
    assert reopened.get_outgoing(1, 1) == [(1, message(1))]
    reopened.close()
    doc["version"] = 3
    identity.write_text(json.dumps(doc))
    with pytest.raises(StoreIdentityError, match="versions 1, 2"):
        open_store(tmp_path)


def send(journal: Journal, store: FileStore, forward: Forward) -> int:
    """What the session actor does for an accepted forward: store with its note, record the line."""
    out_seq = store.next_sender_seq
    store.save_outgoing(out_seq, message(out_seq), Journal.note(forward))
    journal.record(forward, out_seq)
    store.sync_messages()
    return out_seq


def test_lines_a_power_cut_took_from_the_journal_are_found_in_the_store_notes(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    path = tmp_path / "venue.forwarded"
    journal = Journal(path, fsync=True)
    assert journal.load(store).accepted == {}
    send(journal, store, fwd(1, None))
    journal.checkpoint(store.creation_time_ns, store.next_sender_seq - 1)
    synced = path.stat().st_size  # the checkpoint line is flushed; later lines are not yet synced
    send(journal, store, fwd(2, 1))
    send(journal, store, fwd(3, 2))
    journal.sync()
    assert path.stat().st_size > synced
    journal.close()
    os.truncate(path, synced)  # the power cut: what was not synced is gone from the file, not from the store
    store.close()

    store = open_store(tmp_path / "store")
    acceptance = Journal(path, fsync=True).load(store)
    assert acceptance.accepted == {A: 3}
    assert acceptance.judge(fwd(3, 2)) is Verdict.DUPLICATE  # sent once, never again
    assert acceptance.judge(fwd(4, 3)) is Verdict.ACCEPT
    store.close()


def test_without_a_checkpoint_of_this_sequence_every_note_is_read(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    path = tmp_path / "venue.forwarded"
    # A checkpoint of an older sequence (before a reset) covers none of this one's numbers.
    path.write_bytes(b"@ 0 %d 99\n" % (NOW_NS - 1))
    journal = Journal(path, fsync=True)
    journal.load(store)
    send(journal, store, fwd(5, None))
    journal.close()
    path.write_bytes(b"@ 0 %d 99\n" % (NOW_NS - 1))  # its line lost
    assert Journal(path, fsync=True).load(store).accepted == {A: 5}
    store.close()


def test_a_clean_close_checkpoints_so_the_next_load_reads_no_notes(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    path = tmp_path / "venue.forwarded"
    journal = Journal(path, fsync=True)
    journal.load(store)
    send(journal, store, fwd(1, None))
    send(journal, store, fwd(2, 1))
    journal.close(store.creation_time_ns, store.next_sender_seq - 1)
    assert path.read_bytes().splitlines()[-1] == b"@ 0 %d 2" % NOW_NS
    store.close()
