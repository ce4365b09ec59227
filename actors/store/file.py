"""The file store: append-only logs, an offset index and crash-safe sequence numbers.

Layout of one session's directory (see ``layout.py`` and ``docs/store.md``)::

    store.json          identity: session id, creation time, format, generation
    lock                flock(2) target; held while a process has the store open
    <gen>.out.log       outgoing messages, one CRC-checked record each, append-only
    <gen>.out.idx       (seq, offset, length) per outgoing record, in log order
    <gen>.seq           two alternating CRC-checked slots of sequence numbers
    <gen>.in.log        journal of processed incoming messages (keep_incoming)
    archive/            ended sequences, each a read-only store of its own (``archive.py``)

Recovery never parses the whole log: it loads the index with one read,
checks the last entry against the log, and scans only the log tail that the
index does not cover yet (index entries are buffered, the log is not). A torn
tail left by kill -9 or a power loss is cut off with a warning; bytes that
cannot be a torn tail stop the open with an error, because cutting them off
would lose messages.
"""

from __future__ import annotations

import logging
import os
from array import array
from pathlib import Path

from actors.store import archive, layout
from actors.store.api import (
    Durability,
    StoreClosedError,
    StoreCorruptError,
    StoreError,
    StoreWriteError,
    check_data,
    check_seq,
    os_error_hint,
    write_error,
)
from actors.store.index import SeqIndex, valid_index_prefix
from actors.store.layout import IN_LOG, OUT_INDEX, OUT_LOG, SEQ_STATE, Identity
from actors.store.records import (
    INDEX_ENTRY,
    INDEX_ENTRY_SIZE,
    MAX_MESSAGE_BYTES,
    RECORD_HEADER_SIZE,
    SEQ_FILE_SIZE,
    RecordReader,
    SeqState,
    classify_tail,
    decode_slots,
    encode_record,
    encode_slot,
    record_if_valid,
    slot_offset,
)

log = logging.getLogger("fixmesh.store")

#: Index entries are buffered up to this many bytes; recovery rescans at most
#: that many records' worth of log beyond the index after a crash.
INDEX_FLUSH_BYTES = 64 * 1024
#: A range read issues one pread per contiguous run of at most this many bytes.
_MAX_READ_RUN = 1 << 20

_fdatasync = getattr(os, "fdatasync", os.fsync)


class FileStore:
    """A ``MessageStore`` on local files; one process at a time (flock)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        session_id: str,
        *,
        now_ns: int,
        durability: Durability = Durability.BATCH,
        keep_incoming: bool = False,
        archive_days: int | None = None,
        read_only: bool = False,
        archived: str | None = None,
    ) -> None:
        """``archive_days``: None deletes an ended sequence's messages at a reset; otherwise they are
        archived and kept that many days (0: for ever). ``archived`` (read-only) opens that archive."""
        self._root = layout.session_dir(directory, session_id)
        if archived is not None:
            self._root = archive.folder(self._root, archived)
        self._session_id = session_id
        self._durability = durability
        self._keep_incoming = keep_incoming
        self._archive_days = archive_days
        self._read_only = read_only
        self._closed = False
        self._broken = False
        self._lock_fd = -1
        self._out_fd = self._idx_fd = self._seq_fd = self._in_fd = -1
        self._log_size = 0
        self._in_size = 0
        self._dirty: set[int] = set()
        self._pending = bytearray()
        try:
            self._identity = self._open_identity(now_ns)
            self._open_generation()
        except OSError as exc:
            self._close_fds()
            raise StoreError(
                f"cannot open the store of {session_id!r} at {self._root}: {exc}; {os_error_hint(exc)}"
            ) from exc
        except BaseException:
            self._close_fds()
            raise

    @classmethod
    def inspect(cls, directory: str | os.PathLike[str], session_id: str, archived: str | None = None) -> FileStore:
        """Open an existing store, or one of its archives, without locking or changing it (``show``, live sessions)."""
        return cls(directory, session_id, now_ns=0, keep_incoming=True, read_only=True, archived=archived)

    # -- the MessageStore contract -------------------------------------------------

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def next_sender_seq(self) -> int:
        return self._next_sender

    @property
    def next_target_seq(self) -> int:
        return self._next_target

    @property
    def creation_time_ns(self) -> int:
        return self._identity.creation_time_ns

    @property
    def path(self) -> Path:
        """The session's directory, for logs and operator messages."""
        return self._root

    @property
    def generation(self) -> int:
        return self._identity.generation

    @property
    def outgoing_count(self) -> int:
        return len(self._index)

    def save_outgoing(self, seq: int, data: bytes, note: bytes = b"") -> None:
        self._check_writable()
        check_seq("seq", seq)
        check_data(data)
        record = encode_record(seq, data, note)
        length = len(record) - RECORD_HEADER_SIZE
        if length > MAX_MESSAGE_BYTES:
            raise ValueError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
        offset = self._log_size
        self._append(self._out_fd, record)
        self._log_size = offset + len(record)
        self._log_records += 1
        self._index.put(seq, offset, length)
        self._pending += INDEX_ENTRY.pack(seq, offset, length)
        if len(self._pending) >= INDEX_FLUSH_BYTES:
            self._flush_index()
        self._next_sender = seq + 1

    def save_incoming(self, seq: int, data: bytes) -> None:
        self._check_writable()
        check_seq("seq", seq)
        check_data(data)
        if self._keep_incoming:
            if len(data) > MAX_MESSAGE_BYTES:
                raise ValueError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
            record = encode_record(seq, data)
            self._append(self._in_fd, record)
            self._in_size += len(record)
        self._next_target = seq + 1
        self._write_state()

    def set_next_sender_seq(self, n: int) -> None:
        self._check_writable()
        check_seq("next_sender_seq", n)
        self._next_sender = n
        self._write_state()

    def set_next_target_seq(self, n: int) -> None:
        self._check_writable()
        check_seq("next_target_seq", n)
        self._next_target = n
        self._write_state()

    def get_outgoing(self, begin: int, end: int, limit: int | None = None) -> list[tuple[int, bytes]]:
        """Read only the requested records: one pread per contiguous run of the log.

        With ``limit`` a damaged record (left out, as a gap) does not shorten the part: reading goes
        on past it, so that a short part always means the end of the range.
        """
        return self._read_range(begin, end, limit, notes=False)

    def get_notes(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """The notes saved with the outgoing messages of ``begin..end`` (``save_outgoing``), ascending."""
        return self._read_range(begin, end, None, notes=True)

    def _read_range(self, begin: int, end: int, limit: int | None, *, notes: bool) -> list[tuple[int, bytes]]:
        """``(seq, message)`` of ``begin..end``, or ``(seq, note)`` of the noted ones with ``notes``."""
        self._check_open()
        i, j = self._index.span(begin, end)
        result: list[tuple[int, bytes]] = []
        while i < j:
            stop = j if limit is None else min(j, i + limit - len(result))
            if stop <= i:
                break
            run_end = self._run_end(i, stop)
            self._read_run(i, run_end, result, notes)
            i = run_end
        return result

    def get_incoming(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """The incoming journal in ``begin..end`` (latest per seq); an audit read that scans."""
        self._check_open()
        if self._in_fd < 0:
            return []
        latest: dict[int, bytes] = {}
        for seq, _offset, payload in RecordReader(self._in_fd, 0, self._in_size):
            if begin <= seq <= end:
                latest[seq] = payload
        return sorted(latest.items())

    def reset(self, creation_time_ns: int) -> None:
        """Switch to a fresh generation; the rename of store.json is the commit point.

        With an archive, the ended generation's folder is staged before the
        commit and its files move in after it (``archive.py``); without one,
        or when it holds no message, its files are deleted.
        """
        self._check_writable()
        durable = self._durability is not Durability.OS_BUFFER
        ended = self._identity
        generation = ended.generation + 1
        keep = self._archive_days is not None and (self._log_size > 0 or self._in_size > 0)
        try:
            if keep:
                self._flush_index()
                self.sync()
            _create_generation(self._root, generation, durable=durable)
            if keep:
                archive.stage(self._root, ended, creation_time_ns, durable=durable)
            identity = Identity(self._session_id, creation_time_ns, generation)
            layout.write_identity(self._root, identity, durable=durable)
        except OSError as exc:
            raise self._failed(exc) from exc
        self._identity = identity
        self._close_data_fds()
        self._pending.clear()
        self._dirty.clear()
        if self._archive_days is not None:
            self._archive_ended(creation_time_ns, durable=durable)
        layout.remove_other_generations(self._root, generation, spare=archive.staged(self._root))
        self._open_generation()
        log.info("store of %r reset to generation %d at %s", self._session_id, generation, self._root)

    def _archive_ended(self, now_ns: int, *, durable: bool) -> None:
        """After a committed reset: a failure here leaves the files for the next open to archive."""
        try:
            for path in archive.finish(self._root, self._identity.generation, durable=durable):
                log.info("store of %r: the ended sequence's messages are kept in %s", self._session_id, path)
            self._prune_archives(now_ns)
        except OSError as exc:
            log.warning("store of %r: could not archive the ended sequence at %s (%s); the next start "
                        "of the session archives it", self._session_id, self._root, exc)

    def _prune_archives(self, now_ns: int) -> None:
        for path in archive.prune(self._root, self._archive_days or 0, now_ns):
            log.info("store of %r: removed %s, older than archive_days (%d)", self._session_id, path,
                     self._archive_days)

    def sync(self) -> None:
        """The group-commit point: fsync what was written since the last sync, unless OS_BUFFER.

        The index is left out: it is derived from the log, reaches the OS when
        its buffer fills or on close, and recovery rebuilds whatever part of it
        is missing, so one fsync (the log's) per batch is the common cost.
        Logs are flushed before the sequence slot, so a slot that reached the
        disk never describes appends that did not (recovery trusts the slot
        only while the log holds no more records than it saw).
        """
        self._sync_fds((self._out_fd, self._in_fd, self._seq_fd, self._idx_fd))

    def sync_messages(self) -> None:
        """``sync`` without the sequence slot: the logs, which must be on disk before their messages are sent.

        The slot follows at the next ``sync``. Until then recovery derives the
        outgoing number from the log (it holds more records than the slot
        saw) and may go back to an older incoming number, which makes the
        peer resend (PossDup); the slot reaching the disk first only makes
        recovery skip numbers, never reuse them.
        """
        self._sync_fds((self._out_fd, self._in_fd, self._idx_fd))

    def _sync_fds(self, fds: tuple[int, ...]) -> None:
        self._check_writable()
        if self._durability is Durability.OS_BUFFER:
            return
        for fd in fds:
            if fd in self._dirty:
                self._fsync(fd)
                self._dirty.discard(fd)

    def close(self) -> None:
        if self._closed:
            return
        try:
            if not self._read_only and not self._broken:
                self._flush_index()
                self.sync()
        finally:
            self._closed = True
            self._close_fds()

    def __enter__(self) -> FileStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FileStore({str(self._root)!r}, {self._session_id!r}, {self._durability.name})"

    # -- opening and recovery --------------------------------------------------------

    def _open_identity(self, now_ns: int) -> Identity:
        if self._read_only:
            return layout.require_existing(self._root, self._session_id)
        self._root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = layout.lock_store(self._root)
        identity = layout.read_identity(self._root)
        if identity is not None:
            layout.check_identity(self._root, identity, self._session_id)
            durable = self._durability is not Durability.OS_BUFFER
            for path in archive.finish(self._root, identity.generation, durable=durable):
                log.info("archived %s: the sequence a reset ended before the process stopped", path)
            if self._archive_days is not None:
                self._prune_archives(now_ns)
            for path in layout.remove_other_generations(self._root, identity.generation,
                                                        spare=archive.staged(self._root)):
                log.info("removed %s: left over from an interrupted create or reset", path)
            if identity.version != layout.FORMAT_VERSION:
                identity = Identity(identity.session_id, identity.creation_time_ns, identity.generation)
                layout.write_identity(self._root, identity, durable=durable)
                log.info("store of %r at %s relabelled format version %d", self._session_id, self._root,
                         identity.version)
            return identity
        return self._create_store(now_ns)

    def _create_store(self, now_ns: int) -> Identity:
        orphans = layout.orphaned_data(self._root)
        if orphans:
            raise StoreCorruptError(
                f"{self._root / layout.IDENTITY_NAME} is missing but {orphans[0]} holds messages; "
                f"restore store.json from a backup (nothing was changed)"
            )
        durable = self._durability is not Durability.OS_BUFFER
        identity = Identity(self._session_id, now_ns, 1)
        layout.remove_other_generations(self._root, 0)
        _create_generation(self._root, 1, durable=durable)
        layout.write_identity(self._root, identity, durable=durable)
        log.info("created the store of %r at %s", self._session_id, self._root)
        return identity

    def _open_generation(self) -> None:
        generation = self._identity.generation
        self._out_fd = self._open_data(generation, OUT_LOG, must_exist=True)
        self._idx_fd = self._open_data(generation, OUT_INDEX, must_exist=False)
        self._seq_fd = self._open_data(generation, SEQ_STATE, must_exist=True)
        if self._keep_incoming:
            self._in_fd = self._open_data(generation, IN_LOG, must_exist=False)
        entries = self._recover_outgoing()
        self._index = SeqIndex.from_log_order(entries)
        self._log_records = len(entries) // 3
        last_out_seq = entries[-3] if entries else 0
        state = self._read_state()
        self._state_counter = state.counter
        self._in_size = state.in_size
        last_in_seq = self._recover_incoming(state)
        self._derive_seqs(state, last_out_seq, last_in_seq)

    def _open_data(self, generation: int, kind: str, *, must_exist: bool) -> int:
        path = layout.data_path(self._root, generation, kind)
        append = os.O_APPEND if kind in (OUT_LOG, OUT_INDEX, IN_LOG) else 0
        flags = os.O_RDONLY if self._read_only else os.O_RDWR | append | (0 if must_exist else os.O_CREAT)
        try:
            return os.open(path, flags, 0o644)
        except FileNotFoundError as exc:
            if self._read_only and not must_exist:
                return -1
            raise StoreCorruptError(
                f"{path} is missing from the store of {self._session_id!r}; restore it from a backup, "
                f"or reset the session with `python -m actors.store reset` if its messages may be lost"
            ) from exc

    def _recover_outgoing(self) -> array[int]:
        """Index entries for every intact outgoing record, in log order."""
        log_path = layout.data_path(self._root, self._identity.generation, OUT_LOG)
        idx_path = layout.data_path(self._root, self._identity.generation, OUT_INDEX)
        log_size = os.fstat(self._out_fd).st_size
        entries, idx_bytes = self._load_index(idx_path)
        keep = valid_index_prefix(entries, self._out_fd, log_size)
        if keep * 3 < len(entries):
            log.warning(
                "%s: index entries from offset %d point past the intact log; rebuilding them from %s",
                idx_path, keep * INDEX_ENTRY_SIZE, log_path,
            )
            del entries[keep * 3 :]
        scan_from = entries[-2] + RECORD_HEADER_SIZE + entries[-1] if keep else 0
        tail = array("q")
        reader = RecordReader(self._out_fd, scan_from, log_size)
        for seq, offset, payload in reader:
            tail.extend((seq, offset, len(payload)))
        self._log_size = self._cut_tail(self._out_fd, log_path, reader.valid_end, log_size)
        if not self._read_only and (keep * INDEX_ENTRY_SIZE != idx_bytes or tail):
            os.ftruncate(self._idx_fd, keep * INDEX_ENTRY_SIZE)
            _write_all(self._idx_fd, tail.tobytes())
        entries.extend(tail)
        return entries

    def _load_index(self, idx_path: Path) -> tuple[array[int], int]:
        entries = array("q")
        if self._idx_fd < 0:
            return entries, 0
        raw = _read_whole(self._idx_fd)
        usable = len(raw) - len(raw) % INDEX_ENTRY_SIZE
        if usable != len(raw):
            log.warning("%s: torn index entry at offset %d ignored", idx_path, usable)
        entries.frombytes(raw[:usable])
        if entries.itemsize != 8:  # pragma: no cover - 'q' is 8 bytes on every CPython
            raise StoreError("array('q') is not 64-bit on this platform")
        return entries, len(raw)

    def _cut_tail(self, fd: int, path: Path, valid_end: int, size: int) -> int:
        """Truncate a torn tail; refuse (and change nothing) when it is not one."""
        if valid_end >= size:
            return valid_end
        if not classify_tail(fd, valid_end, size):
            raise StoreCorruptError(
                f"{path}: unreadable record at offset {valid_end} followed by more data "
                f"({size - valid_end} bytes); this is not a torn write, so nothing was cut off. "
                f"Copy the file aside, then restore it from a backup or truncate it to {valid_end} "
                f"bytes (losing the messages after that offset)"
            )
        log.warning(
            "%s: torn record at offset %d (%d bytes) from an interrupted write; truncating",
            path, valid_end, size - valid_end,
        )
        if not self._read_only:
            os.ftruncate(fd, valid_end)
        return valid_end

    def _read_state(self) -> SeqState:
        path = layout.data_path(self._root, self._identity.generation, SEQ_STATE)
        state = decode_slots(os.pread(self._seq_fd, SEQ_FILE_SIZE, 0))
        if state is None:
            raise StoreCorruptError(
                f"{path}: both sequence-number slots are damaged; restore the file from a backup, "
                f"or reset the session with `python -m actors.store reset` and agree the sequence "
                f"numbers with the counterparty"
            )
        return state

    def _recover_incoming(self, state: SeqState) -> int | None:
        """Check the journal past the last state write; the seq of a record found there."""
        if self._in_fd < 0:
            return None
        path = layout.data_path(self._root, self._identity.generation, IN_LOG)
        size = os.fstat(self._in_fd).st_size
        start = state.in_size
        if start > size:
            log.warning("%s: shorter (%d bytes) than last recorded (%d); checking it all", path, size, start)
            start = 0
        reader = RecordReader(self._in_fd, start, size)
        last_seq = None
        for seq, _offset, _payload in reader:
            last_seq = seq
        self._in_size = self._cut_tail(self._in_fd, path, reader.valid_end, size)
        return last_seq if start == state.in_size else None

    def _derive_seqs(self, state: SeqState, last_out_seq: int, last_in_seq: int | None) -> None:
        """The newest of the last explicit write and the last log append wins.

        ``save_outgoing`` does not write the sequence slot (one write per
        message is enough); a log holding more records than the slot saw
        means the append came later.
        """
        grew = self._log_records > state.out_records
        self._next_sender = last_out_seq + 1 if grew else state.next_sender
        self._next_target = last_in_seq + 1 if last_in_seq is not None else state.next_target
        current = (self._next_sender, self._next_target, self._log_records, self._in_size)
        recorded = (state.next_sender, state.next_target, state.out_records, state.in_size)
        if current != recorded and not self._read_only:
            self._write_state()

    # -- writing ---------------------------------------------------------------------

    def _append(self, fd: int, data: bytes) -> None:
        try:
            _write_all(fd, data)
            if self._durability is Durability.FSYNC_EACH:
                _fdatasync(fd)
            else:
                self._dirty.add(fd)
        except OSError as exc:
            raise self._failed(exc) from exc

    def _write_state(self) -> None:
        """Write the slot not holding the newest state, so a torn write keeps the other."""
        counter = self._state_counter + 1
        state = SeqState(counter, self._next_sender, self._next_target, self._log_records, self._in_size)
        try:
            os.pwrite(self._seq_fd, encode_slot(state), slot_offset(counter))
            if self._durability is Durability.FSYNC_EACH:
                _fdatasync(self._seq_fd)
            else:
                self._dirty.add(self._seq_fd)
        except OSError as exc:
            raise self._failed(exc) from exc
        self._state_counter = counter

    def _flush_index(self) -> None:
        if not self._pending:
            return
        try:
            _write_all(self._idx_fd, bytes(self._pending))
        except OSError as exc:
            raise self._failed(exc) from exc
        self._pending.clear()
        self._dirty.add(self._idx_fd)

    def _failed(self, exc: OSError) -> StoreWriteError:
        """A write or sync failed: unusable until opened again, whose recovery cuts what it left torn."""
        self._broken = True
        return write_error(f"write the store of {self._session_id!r} at {self._root}", exc)

    def _fsync(self, fd: int) -> None:
        """A failed fsync leaves the page cache in an unknown state: never retry, reopen."""
        try:
            _fdatasync(fd)
        except OSError as exc:
            raise self._failed(exc) from exc

    # -- reading ---------------------------------------------------------------------

    def _run_end(self, i: int, j: int) -> int:
        """End (exclusive) of the contiguous run of records starting at index position i."""
        offsets, lengths = self._index.offsets, self._index.lengths
        start = offsets[i]
        end = start + RECORD_HEADER_SIZE + lengths[i]
        k = i + 1
        while k < j and offsets[k] == end and end - start < _MAX_READ_RUN:
            end += RECORD_HEADER_SIZE + lengths[k]
            k += 1
        return k

    def _read_run(self, i: int, k: int, result: list[tuple[int, bytes]], notes: bool) -> None:
        seqs, offsets, lengths = self._index.seqs, self._index.offsets, self._index.lengths
        start = offsets[i]
        size = offsets[k - 1] + RECORD_HEADER_SIZE + lengths[k - 1] - start
        buf = os.pread(self._out_fd, size, start)
        for t in range(i, k):
            record = record_if_valid(buf, offsets[t] - start, seqs[t], lengths[t])
            if record is None:
                log.warning(
                    "%s: record of seq %d at offset %d is damaged; treated as missing (gap fill)",
                    layout.data_path(self._root, self._identity.generation, OUT_LOG), seqs[t], offsets[t],
                )
                continue
            note, message = record
            if not notes:
                result.append((seqs[t], message))
            elif note:
                result.append((seqs[t], note))

    # -- state checks and cleanup ------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the store at {self._root} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._broken:
            raise StoreClosedError(
                f"the store at {self._root} failed an I/O call; close it and open it again to recover"
            )
        if self._read_only:
            raise StoreError(f"the store at {self._root} was opened read-only")

    def _close_data_fds(self) -> None:
        for name in ("_out_fd", "_idx_fd", "_seq_fd", "_in_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def _close_fds(self) -> None:
        self._close_data_fds()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def _create_generation(root: Path, generation: int, *, durable: bool) -> None:
    """Empty logs and index, sequence numbers (1, 1): the files of a fresh sequence."""
    initial = encode_slot(SeqState(counter=1, next_sender=1, next_target=1, out_records=0, in_size=0))
    seq_bytes = bytearray(SEQ_FILE_SIZE)
    seq_bytes[slot_offset(1) : slot_offset(1) + len(initial)] = initial
    contents = {OUT_LOG: b"", OUT_INDEX: b"", IN_LOG: b"", SEQ_STATE: bytes(seq_bytes)}
    for kind, data in contents.items():
        fd = os.open(layout.data_path(root, generation, kind), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    if durable:
        layout.fsync_dir(root)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_whole(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks = []
    pos = 0
    while pos < size:
        chunk = os.pread(fd, size - pos, pos)
        if not chunk:
            break
        chunks.append(chunk)
        pos += len(chunk)
    return b"".join(chunks)
