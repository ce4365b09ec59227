"""Ended sequences kept as read-only stores: a reset archives the day's messages instead of deleting them.

A firm must keep its order records for years, and a session's messages are
the record of what it sent and received. A sequence reset (the daily reset,
a Logon with ResetSeqNumFlag, an operator's ``fixmesh store reset``) starts
numbering again at 1, and the old messages are no longer needed for
resends, but they must not vanish. So the files of the ended generation are
moved (renamed, no copy) into ``archive/<ended>-<generation>/`` inside the
session's directory, beside a ``store.json`` that names them. An archive is
therefore a complete store that ``FileStore.inspect(..., archive=NAME)``
and ``fixmesh log --archive NAME`` read like the live one.

Crash safety follows the reset's own commit point (the rename of the live
``store.json``): the archive's folder is staged, with its identity, *before*
the commit, and filled after it. An open finds a staged folder of a
generation older than the live one and finishes it with the files left in
the session's directory; a staged folder of the live generation is a reset
that never committed, and is removed. Files are never deleted where an
archive should have received them.

Room rule: like the rest of ``actors.store``, nothing outside the standard
library and this room.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from actors.store import layout
from actors.store.api import StoreNotFoundError
from actors.store.layout import Identity

log = logging.getLogger("fixmesh.store")

ARCHIVE_DIR = "archive"
NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S

#: ``20261201T170000Z-00000003``: when the sequence ended (UTC), then its generation.
_FINISHED = re.compile(r"^(\d{8}T\d{6}Z)-(\d{8})$")
_STAGED = re.compile(r"^\.staging-(\d{8}T\d{6}Z)-(\d{8})$")
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class ArchivedSequence:
    """One finished archive: its folder name (what ``--archive`` takes), when it ended, its generation."""

    name: str
    path: Path
    ended_ns: int
    generation: int


def archive_root(root: Path) -> Path:
    return root / ARCHIVE_DIR


def stamp(ns: int) -> str:
    return time.strftime(_STAMP_FORMAT, time.gmtime(ns // NS_PER_S))


def _stamp_ns(text: str) -> int:
    """The inverse of ``stamp`` (no ``strptime``: it would import ``calendar`` and ``locale`` into every actor)."""
    year, month, day = int(text[0:4]), int(text[4:6]), int(text[6:8])
    hour, minute, second = int(text[9:11]), int(text[11:13]), int(text[13:15])
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()) * NS_PER_S


def folder(root: Path, name: str) -> Path:
    """The folder of the archive ``name``, which must be one ``listed`` gives (no path of another kind)."""
    path = archive_root(root) / name
    if _FINISHED.match(name) is None or not path.is_dir():
        names = ", ".join(s.name for s in listed(root)) or "none yet"
        raise StoreNotFoundError(f"no archived sequence {name!r} at {archive_root(root)}; the archived ones: {names}")
    return path


def stage(root: Path, ended: Identity, ended_ns: int, *, durable: bool) -> Path:
    """Before a reset's commit: the empty folder that will receive ``ended``'s files, with its identity."""
    parent = archive_root(root)
    parent.mkdir(exist_ok=True)
    staged = parent / f".staging-{stamp(ended_ns)}-{ended.generation:08d}"
    staged.mkdir(exist_ok=True)
    layout.write_identity(staged, ended, durable=durable)
    if durable:
        layout.fsync_dir(parent)
    return staged


def finish(root: Path, live_generation: int, *, durable: bool) -> list[Path]:
    """Move the files of ended generations into their staged folders and name those folders final.

    Called after a reset's commit and by every open (a crash may have come
    between). A staged folder of the live generation or a newer one belongs
    to a reset that did not commit: removed. Returns the finished archives.
    """
    parent = archive_root(root)
    if not parent.is_dir():
        return []
    on_disk = layout.generations_on_disk(root)
    finished = []
    for entry in sorted(parent.iterdir()):
        match = _STAGED.match(entry.name)
        if match is None:
            continue
        generation = int(match.group(2))
        if generation >= live_generation:
            _remove_uncommitted(entry)
            continue
        for path in on_disk.pop(generation, []):
            os.replace(path, entry / path.name)
        final = parent / f"{match.group(1)}-{match.group(2)}"
        os.replace(entry, final)
        finished.append(final)
    if durable and finished:
        layout.fsync_dir(root)
        layout.fsync_dir(parent)
    return finished


def staged(root: Path) -> frozenset[int]:
    """The generations whose archive is staged but not finished: their files must not be deleted."""
    parent = archive_root(root)
    if not parent.is_dir():
        return frozenset()
    return frozenset(int(m.group(2)) for m in map(_STAGED.match, os.listdir(parent)) if m is not None)


def prune(root: Path, keep_days: int, now_ns: int) -> list[Path]:
    """Remove the archives that ended more than ``keep_days`` days before ``now_ns`` (0: keep every one)."""
    if keep_days <= 0:
        return []
    removed = []
    for sequence in listed(root):
        if now_ns - sequence.ended_ns > keep_days * NS_PER_DAY:
            _remove_folder(sequence.path)
            removed.append(sequence.path)
    return removed


def listed(root: Path) -> list[ArchivedSequence]:
    """The finished archives of a session's directory, oldest first."""
    parent = archive_root(root)
    if not parent.is_dir():
        return []
    found = []
    for entry in parent.iterdir():
        match = _FINISHED.match(entry.name)
        if match is not None:
            found.append(ArchivedSequence(entry.name, entry, _stamp_ns(match.group(1)), int(match.group(2))))
    return sorted(found, key=lambda s: (s.ended_ns, s.generation))


def _remove_uncommitted(entry: Path) -> None:
    """A reset that did not commit staged only an identity file; anything more is left for an operator."""
    (entry / layout.IDENTITY_NAME).unlink(missing_ok=True)
    try:
        entry.rmdir()
    except OSError as exc:
        log.warning("%s: the staged archive of a reset that did not commit holds files (%s); left as it is",
                    entry, exc)


def _remove_folder(folder: Path) -> None:
    """An archive holds only flat files (no ``shutil``: it would map compression libraries in every actor)."""
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
