"""Byte formats of the file store: log records, index entries, sequence-number slots.

Everything is little-endian and fixed-layout so that a file can be checked
without trusting anything but its own bytes:

* log record (outgoing log and incoming journal):
  ``seq u64 | length u32 | crc32 u32 | payload`` where the CRC covers the
  first 12 header bytes and the payload, so a torn write or a stray zero page
  is always detected. An outgoing record may carry a note for its writer
  (the gateway's forwarding journal names the forward a message came from,
  so both reach the disk with one sync): the top bit of ``seq`` (``NOTED``)
  is set and the payload is ``note length u16 | note | message``;
* index entry: ``seq i64 | offset i64 | length i64``, one per log record in
  log order; it carries no CRC because every read checks the log record it
  points at;
* sequence slot: ``counter | next_sender | next_target | out_records |
  in_size`` (u64 each), crc32, 4 pad bytes; two slots written alternately so a
  torn write can damage only the slot not in use.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

RECORD_HEADER = struct.Struct("<QII")
RECORD_PREFIX = struct.Struct("<QI")
RECORD_HEADER_SIZE = RECORD_HEADER.size
#: Set in a record's ``seq`` field when its payload starts with a note (sequence numbers use 63 bits).
NOTED = 1 << 63
_NOTE_LENGTH = struct.Struct("<H")
#: A note is a few words for the record's writer, never a message.
MAX_NOTE_BYTES = 0xFFFF
#: A FIX message larger than this is not a message; the bound keeps a corrupt
#: length field from asking for gigabytes.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

INDEX_ENTRY = struct.Struct("<qqq")
INDEX_ENTRY_SIZE = INDEX_ENTRY.size

_SLOT_BODY = struct.Struct("<QQQQQ")
_SLOT_TAIL = struct.Struct("<I4x")
SLOT_SIZE = _SLOT_BODY.size + _SLOT_TAIL.size
SEQ_FILE_SIZE = 2 * SLOT_SIZE

_READ_CHUNK = 1 << 20


def encode_record(seq: int, data: bytes, note: bytes = b"") -> bytes:
    """One log record; with a ``note`` the payload is the note, then ``data`` (``split_payload``)."""
    if note:
        if len(note) > MAX_NOTE_BYTES:
            raise ValueError(f"a note of {len(note)} bytes exceeds {MAX_NOTE_BYTES}")
        seq |= NOTED
        data = _NOTE_LENGTH.pack(len(note)) + note + data
    length = len(data)
    crc = zlib.crc32(data, zlib.crc32(RECORD_PREFIX.pack(seq, length)))
    return RECORD_HEADER.pack(seq, length, crc) + data


def split_payload(raw_seq: int, payload: bytes) -> tuple[bytes, bytes]:
    """``(note, message)`` of a record whose header ``seq`` field is ``raw_seq``; the note is empty if none."""
    if not raw_seq & NOTED:
        return b"", payload
    (size,) = _NOTE_LENGTH.unpack_from(payload)
    start = _NOTE_LENGTH.size
    return payload[start : start + size], payload[start + size :]


def record_crc_ok(buf: bytes | memoryview, pos: int, length: int, crc: int) -> bool:
    """Check the record whose header starts at ``pos`` in ``buf``."""
    view = memoryview(buf)
    body = view[pos + RECORD_HEADER_SIZE : pos + RECORD_HEADER_SIZE + length]
    return zlib.crc32(body, zlib.crc32(view[pos : pos + RECORD_PREFIX.size])) == crc


def read_record(fd: int, offset: int, expect_seq: int, expect_length: int) -> tuple[bytes, bytes] | None:
    """``(note, message)`` at ``offset`` if the record there is intact and is the one expected."""
    size = RECORD_HEADER_SIZE + expect_length
    buf = os.pread(fd, size, offset)
    return record_if_valid(buf, 0, expect_seq, expect_length)


def record_if_valid(buf: bytes, pos: int, expect_seq: int, expect_length: int) -> tuple[bytes, bytes] | None:
    """``(note, message)`` of the record at ``pos`` in ``buf`` if it is intact and numbered ``expect_seq``.

    ``expect_length`` is the whole payload's (note included), as the index holds it.
    """
    if len(buf) - pos < RECORD_HEADER_SIZE + expect_length:
        return None
    raw_seq, length, crc = RECORD_HEADER.unpack_from(buf, pos)
    if raw_seq & ~NOTED != expect_seq or length != expect_length or not record_crc_ok(buf, pos, length, crc):
        return None
    start = pos + RECORD_HEADER_SIZE
    return split_payload(raw_seq, bytes(buf[start : start + length]))


class RecordReader:
    """Iterates the valid records of a log from ``start`` and notes where they stop.

    After iteration ``valid_end`` is the offset just past the last intact
    record; anything between it and ``end`` is a torn tail or corruption,
    which ``classify_tail`` tells apart.
    """

    def __init__(self, fd: int, start: int, end: int) -> None:
        self._fd = fd
        self._end = end
        self.valid_end = start

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(seq, offset, payload)`` in file order; a noted record's payload holds its note too."""
        buf = b""
        buf_start = self.valid_end
        while True:
            rel = self.valid_end - buf_start
            available = len(buf) - rel
            if available < RECORD_HEADER_SIZE:
                buf, buf_start = self._refill(buf, rel, buf_start, RECORD_HEADER_SIZE)
                if len(buf) < RECORD_HEADER_SIZE:
                    return
                continue
            raw_seq, length, crc = RECORD_HEADER.unpack_from(buf, rel)
            seq = raw_seq & ~NOTED
            if seq == 0 or length > MAX_MESSAGE_BYTES:
                return
            need = RECORD_HEADER_SIZE + length
            if available < need:
                buf, buf_start = self._refill(buf, rel, buf_start, need)
                if len(buf) < need:
                    return
                continue
            if not record_crc_ok(buf, rel, length, crc):
                return
            offset = self.valid_end
            self.valid_end = offset + need
            yield seq, offset, buf[rel + RECORD_HEADER_SIZE : rel + need]

    def _refill(self, buf: bytes, rel: int, buf_start: int, need: int) -> tuple[bytes, int]:
        """Keep the unread part and append the next chunk from the file."""
        pos = buf_start + rel
        if pos >= self._end:
            return b"", pos
        want = min(max(_READ_CHUNK, need), self._end - pos)
        head = buf[rel:]
        more = os.pread(self._fd, want - len(head), pos + len(head)) if want > len(head) else b""
        return head + more, pos


def classify_tail(fd: int, offset: int, end: int) -> bool:
    """True when the bytes from ``offset`` to ``end`` can be a torn write, not corruption.

    A kill -9 or power loss during an append leaves at most: fewer bytes than
    a header, one record that reaches or passes the end of the file, or a run
    of zero bytes where the file grew but the data never landed. Anything else
    has valid-looking data after the bad spot and must not be cut off.
    """
    remaining = end - offset
    if remaining < RECORD_HEADER_SIZE:
        return True
    raw_seq, length, _crc = RECORD_HEADER.unpack(os.pread(fd, RECORD_HEADER_SIZE, offset))
    if raw_seq & ~NOTED >= 1 and length <= MAX_MESSAGE_BYTES and offset + RECORD_HEADER_SIZE + length >= end:
        return True
    return _all_zero(fd, offset, end)


def _all_zero(fd: int, offset: int, end: int) -> bool:
    pos = offset
    while pos < end:
        chunk = os.pread(fd, min(_READ_CHUNK, end - pos), pos)
        if not chunk or chunk.count(0) != len(chunk):
            return not chunk
        pos += len(chunk)
    return True


@dataclass(frozen=True, slots=True)
class SeqState:
    """The sequence numbers as last written explicitly, plus where the logs stood then.

    ``out_records`` and ``in_size`` let recovery tell whether a log append
    happened after this slot was written: if so the log's last record, not
    the slot, holds the latest next sequence number.
    """

    counter: int
    next_sender: int
    next_target: int
    out_records: int
    in_size: int


def encode_slot(state: SeqState) -> bytes:
    body = _SLOT_BODY.pack(
        state.counter, state.next_sender, state.next_target, state.out_records, state.in_size
    )
    return body + _SLOT_TAIL.pack(zlib.crc32(body))


def slot_offset(counter: int) -> int:
    return (counter % 2) * SLOT_SIZE


def decode_slots(raw: bytes) -> SeqState | None:
    """The newest intact slot, or None when neither survives."""
    best: SeqState | None = None
    for pos in (0, SLOT_SIZE):
        chunk = raw[pos : pos + SLOT_SIZE]
        if len(chunk) < SLOT_SIZE:
            continue
        body = chunk[: _SLOT_BODY.size]
        (crc,) = _SLOT_TAIL.unpack_from(chunk, _SLOT_BODY.size)
        if zlib.crc32(body) != crc:
            continue
        state = SeqState(*_SLOT_BODY.unpack(body))
        if state.counter < 1 or state.next_sender < 1 or state.next_target < 1:
            continue
        if best is None or state.counter > best.counter:
            best = state
    return best
