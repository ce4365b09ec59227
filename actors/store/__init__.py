"""Message stores: persist before send, restore the same sequence numbers after a crash.

``open_store("file", directory, session_id, now_ns=...)`` is what a session
actor calls; ``docs/store.md`` describes the contract, the file formats and
the durability modes.

Room rule: imports only ``actors.fix`` (today not even that).
"""

from __future__ import annotations

import os

from actors.store import archive
from actors.store.api import (
    Durability,
    MessageStore,
    StoreClosedError,
    StoreCorruptError,
    StoreError,
    StoreIdentityError,
    StoreLockedError,
    StoreNotFoundError,
    StoreWriteError,
    file_system_trouble,
    os_error_hint,
    read_outgoing_parts,
    write_error,
)
from actors.store.archive import ArchivedSequence
from actors.store.file import FileStore
from actors.store.layout import session_dir
from actors.store.memory import MemoryStore
from actors.store.removal import remove_store

__all__ = [
    "ArchivedSequence",
    "Durability",
    "FileStore",
    "MemoryStore",
    "MessageStore",
    "StoreClosedError",
    "StoreCorruptError",
    "StoreError",
    "StoreIdentityError",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreWriteError",
    "archived_sequences",
    "file_system_trouble",
    "open_store",
    "os_error_hint",
    "read_outgoing_parts",
    "remove_store",
    "write_error",
]

STORE_KINDS = ("file", "memory")


def archived_sequences(directory: str | os.PathLike[str], session_id: str) -> list[ArchivedSequence]:
    """The sequences a reset ended and a file store archived, oldest first (``FileStore.inspect(archived=)``)."""
    return archive.listed(session_dir(directory, session_id))


def open_store(
    kind: str,
    directory: str | os.PathLike[str] | None,
    session_id: str,
    *,
    now_ns: int,
    durability: Durability = Durability.BATCH,
    keep_incoming: bool = False,
    archive_days: int | None = None,
) -> MessageStore:
    """Open (creating if needed) the store of one session.

    ``now_ns`` (UTC epoch ns) becomes the creation time of a store that does
    not exist yet; an existing store keeps its own. ``archive_days`` (a file
    store's): None deletes an ended sequence's messages at a reset, a number
    archives them for that many days (0: for ever).
    """
    if kind == "memory":
        return MemoryStore(session_id, now_ns=now_ns, keep_incoming=keep_incoming)
    if kind == "file":
        if directory is None:
            raise ValueError("a file store needs a directory")
        return FileStore(
            directory, session_id, now_ns=now_ns, durability=durability, keep_incoming=keep_incoming,
            archive_days=archive_days,
        )
    raise ValueError(f"store kind {kind!r} is not one of {', '.join(STORE_KINDS)}")
