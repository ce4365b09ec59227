"""The contract between a session actor and its message store.

A FIX session must never lose or repeat a sequence number. The actor stores
every outgoing message before writing it to the socket, so that a
ResendRequest arriving after a crash can still be answered, and saves the
next expected incoming sequence number only after the application has
processed the message, so that a crash makes the peer resend it rather than
lose it. Both implementations (memory and file) honour the same contract and
are tested against the same suite.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from enum import Enum
from typing import Protocol, runtime_checkable


class Durability(Enum):
    """How far a write has travelled when a store call returns.

    ``BATCH`` is the default: the actor calls ``sync()`` once per batch of
    outgoing messages, before writing that batch to the socket, so one fsync
    covers many messages (group commit) while nothing reaches the peer before
    it is on disk.
    """

    #: fsync inside every save/set call: safest, slowest (one disk flush per message).
    FSYNC_EACH = "fsync_each"
    #: write to the OS at once, fsync in ``sync()`` only (group commit).
    BATCH = "batch"
    #: write to the OS, never fsync: survives kill -9, not a power loss.
    OS_BUFFER = "os_buffer"


class StoreError(Exception):
    """A store cannot be used; the message says which file and what to do."""


class StoreWriteError(StoreError):
    """A write or sync of a store (or of a file kept beside it) failed.

    Nothing the failed call was to make durable may be sent: the caller
    stops, and the store must be closed and opened again (its recovery cuts
    a torn tail). ``errno`` is the cause's (``file_system_trouble`` tells a
    full or read-only file system, which freeing space or a remount cures).
    """

    def __init__(self, message: str, errno_: int | None) -> None:
        super().__init__(message)
        self.errno = errno_


#: The file system's state, not the configuration: full, over quota, read-only, failing. Freeing space or a
#: remount lets the same store open again, so a starting session waits for it rather than exiting.
FILE_SYSTEM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})

_HINTS = {
    errno.ENOSPC: "the file system is full: free space on it",
    errno.EDQUOT: "this user's disk quota is used up: free space or raise the quota",
    errno.EROFS: "the file system is read-only (remounted after disk errors?): check the disk and remount it",
    errno.EIO: "the disk reported an I/O error: check the device (the kernel log says more)",
}


def os_error_hint(exc: OSError) -> str:
    """What an operator does about ``exc`` met on a store's files."""
    return _HINTS.get(exc.errno or 0, "check that the path is a directory of regular files this user may read "
                                      "and write")


def write_error(what: str, exc: OSError) -> StoreWriteError:
    """``cannot <what>: <the cause>; <the hint>``, raised ``from exc`` by the caller."""
    return StoreWriteError(f"cannot {what}: {exc.strerror or exc}; {os_error_hint(exc)}", exc.errno)


def file_system_trouble(exc: BaseException) -> bool:
    """``exc`` (or the OSError behind it) is the file system's state, which may pass (``FILE_SYSTEM_ERRNOS``)."""
    number = exc.errno if isinstance(exc, OSError | StoreWriteError) else None
    if number is None and isinstance(exc.__cause__, OSError):
        number = exc.__cause__.errno
    return number in FILE_SYSTEM_ERRNOS


class StoreIdentityError(StoreError):
    """The files on disk belong to another session or another format version."""


class StoreCorruptError(StoreError):
    """A file holds bytes that are neither valid records nor a torn tail."""


class StoreLockedError(StoreError):
    """Another process has the store open; two writers would corrupt it."""


class StoreNotFoundError(StoreError):
    """A read-only open or a removal found no store for the session."""


class StoreClosedError(StoreError):
    """The store was closed, or failed an I/O call and must be reopened."""


@runtime_checkable
class MessageStore(Protocol):
    """What the session actor needs from a store; see ``docs/store.md``."""

    @property
    def session_id(self) -> str: ...

    @property
    def next_sender_seq(self) -> int: ...

    @property
    def next_target_seq(self) -> int: ...

    @property
    def creation_time_ns(self) -> int:
        """UTC epoch ns when the sequence was created or last reset (for daily resets)."""
        ...

    def save_outgoing(self, seq: int, data: bytes, note: bytes = b"") -> None:
        """Store a message before it is sent; next_sender_seq becomes ``seq + 1``.

        ``note``: a few bytes of the caller's about this message, made durable with it by the same
        sync and read back with ``get_notes`` (the gateway notes which forward a message came from).
        """
        ...

    def save_incoming(self, seq: int, data: bytes) -> None:
        """Record a processed incoming message; next_target_seq becomes ``seq + 1``."""
        ...

    def set_next_sender_seq(self, n: int) -> None: ...

    def set_next_target_seq(self, n: int) -> None: ...

    def get_outgoing(self, begin: int, end: int, limit: int | None = None) -> list[tuple[int, bytes]]:
        """Stored messages with ``begin <= seq <= end``, ascending; gaps are absent.

        ``limit``: at most this many, the first ones of the range; fewer means the range holds no
        more. A long range is read this way part by part (``read_outgoing_parts``), so that a
        ResendRequest for a million messages never has them all in memory at once.
        """
        ...

    def get_notes(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """``(seq, note)`` of the outgoing messages of ``begin..end`` saved with a note, ascending."""
        ...

    def reset(self, creation_time_ns: int) -> None:
        """Drop every message, both sequence numbers back to 1, new creation time."""
        ...

    def sync_messages(self) -> None:
        """Make the messages saved so far durable: what must be on disk before they are sent.

        Sequence numbers set without a message (``set_next_*``, the incoming
        number) may wait for the next ``sync``; losing them on a power cut
        repeats incoming messages as PossDup resends and never reuses an
        outgoing number (docs/store.md, "Why BATCH is the default").
        """
        ...

    def sync(self) -> None:
        """Make everything written so far durable per the durability mode."""
        ...

    def close(self) -> None: ...


def read_outgoing_parts(store: MessageStore, begin: int, end: int, size: int) -> Iterator[list[tuple[int, bytes]]]:
    """The stored messages of ``begin..end`` in parts of at most ``size``, ascending; no part is empty.

    Each part is read when the previous one has been used, so memory holds one part at a time.
    """
    if size < 1:
        raise ValueError(f"part size must be >= 1, got {size}")
    while begin <= end:
        part = store.get_outgoing(begin, end, size)
        if not part:
            return
        yield part
        if len(part) < size:
            return
        begin = part[-1][0] + 1


def check_seq(name: str, seq: int) -> None:
    """FIX sequence numbers start at 1 (MsgSeqNum, tag 34); 0 or less is a caller bug."""
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError(f"{name} must be an int >= 1, got {seq!r}")
    if seq >= 1 << 63:
        raise ValueError(f"{name} {seq} does not fit in 63 bits")


def check_data(data: bytes) -> None:
    """Only raw bytes are stored; a str would silently pick an encoding."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"message data must be bytes, got {type(data).__name__}")
