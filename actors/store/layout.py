"""Where a session's store lives on disk and how its identity file is kept.

One directory per session. ``store.json`` names the session, the creation
time and the current *generation*; every data file carries its generation in
its name. A reset builds the next generation's empty files and then replaces
``store.json`` with an atomic rename, so a crash at any point leaves either
the old store or the new one, never a mix. Files of other generations are
leftovers of such a switch and are removed on the next open.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from actors.fix.native import sha256
from actors.store.api import (
    StoreCorruptError,
    StoreError,
    StoreIdentityError,
    StoreLockedError,
    StoreNotFoundError,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("fixmesh.store")

IDENTITY_NAME = "store.json"
LOCK_NAME = "lock"
FORMAT_NAME = "fixmesh-store"
#: Version 2 added noted outgoing records (``records.NOTED``). Version 1 stores are read and, when
#: opened for writing, relabelled 2 before anything is appended, so an older release refuses them
#: instead of taking a noted record for a torn tail.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

OUT_LOG = "out.log"
OUT_INDEX = "out.idx"
SEQ_STATE = "seq"
IN_LOG = "in.log"
DATA_KINDS = (OUT_LOG, OUT_INDEX, SEQ_STATE, IN_LOG)

_DATA_FILE = re.compile(r"^(\d{8})\.(out\.log|out\.idx|seq|in\.log)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def session_dir_name(session_id: str) -> str:
    """A portable file name for the session plus a hash of the exact id.

    Session ids such as ``FIX.4.4:ME->YOU`` hold characters that are not
    portable in file names; the readable part is sanitised and the hash keeps
    two ids that sanitise alike (``A:B`` and ``A_B``) apart.
    """
    if not session_id:
        raise ValueError("session_id must not be empty")
    readable = _UNSAFE.sub("_", session_id)[:64].lstrip(".") or "_"
    digest = sha256(session_id.encode("utf-8")).hexdigest()[:10]
    return f"{readable}-{digest}"


def session_dir(directory: str | os.PathLike[str], session_id: str) -> Path:
    return Path(directory) / session_dir_name(session_id)


def data_path(root: Path, generation: int, kind: str) -> Path:
    return root / f"{generation:08d}.{kind}"


@dataclass(frozen=True, slots=True)
class Identity:
    session_id: str
    creation_time_ns: int
    generation: int
    version: int = FORMAT_VERSION


def read_identity(root: Path) -> Identity | None:
    """The identity in ``store.json``; None when the file does not exist."""
    path = root / IDENTITY_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}; fix its permissions and restart") from exc
    try:
        doc = json.loads(raw)
        fields = (doc["format"], doc["version"], doc["session_id"], doc["creation_time_ns"], doc["generation"])
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreCorruptError(
            f"{path} is not a valid store identity file ({exc}); restore it from a backup, "
            f"or remove the whole store with `python -m actors.store reset` if its messages may be lost"
        ) from exc
    fmt, version, session_id, creation_time_ns, generation = fields
    if fmt != FORMAT_NAME or version not in READABLE_VERSIONS:
        raise StoreIdentityError(
            f"{path} is format {fmt!r} version {version!r}; this fixmesh reads {FORMAT_NAME!r} "
            f"versions {', '.join(map(str, READABLE_VERSIONS))}: run the fixmesh release that wrote it"
        )
    if not isinstance(session_id, str) or not isinstance(creation_time_ns, int) or not isinstance(generation, int):
        raise StoreCorruptError(f"{path} has fields of the wrong type; restore it from a backup")
    return Identity(session_id, creation_time_ns, generation, version)


def check_identity(root: Path, identity: Identity, session_id: str) -> None:
    if identity.session_id != session_id:
        raise StoreIdentityError(
            f"{root / IDENTITY_NAME} belongs to session {identity.session_id!r}, not {session_id!r}; "
            f"check the session id and store directory in the settings (nothing was changed)"
        )


def write_identity(root: Path, identity: Identity, *, durable: bool) -> None:
    """Replace ``store.json`` atomically: the rename is the commit point of a create or reset."""
    doc = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "session_id": identity.session_id,
        "creation_time_ns": identity.creation_time_ns,
        "generation": identity.generation,
    }
    tmp = root / (IDENTITY_NAME + ".tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(doc, indent=2).encode("utf-8") + b"\n")
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, root / IDENTITY_NAME)
    if durable:
        fsync_dir(root)


def fsync_dir(root: Path) -> None:
    """Make a create, rename or unlink in ``root`` itself durable (POSIX needs this)."""
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # pragma: no cover - some file systems refuse
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def generations_on_disk(root: Path) -> dict[int, list[Path]]:
    found: dict[int, list[Path]] = {}
    for entry in root.iterdir():
        match = _DATA_FILE.match(entry.name)
        if match:
            found.setdefault(int(match.group(1)), []).append(entry)
    return found


def remove_other_generations(root: Path, keep: int, spare: frozenset[int] = frozenset()) -> list[Path]:
    """Delete files of generations other than ``keep`` and ``spare``; they hold no live data.

    After a reset they are the previous sequence; found on open they are
    leftovers of a create or reset that a crash interrupted. ``spare`` are
    ended generations whose archive is staged but not yet filled.
    """
    removed = []
    for generation, paths in generations_on_disk(root).items():
        if generation == keep or generation in spare:
            continue
        for path in paths:
            path.unlink(missing_ok=True)
            removed.append(path)
    (root / (IDENTITY_NAME + ".tmp")).unlink(missing_ok=True)
    return removed


def orphaned_data(root: Path) -> list[Path]:
    """Non-empty message logs in a directory that has no identity file."""
    return [
        path
        for paths in generations_on_disk(root).values()
        for path in paths
        if path.name.endswith((OUT_LOG, IN_LOG)) and path.stat().st_size > 0
    ]


def lock_store(root: Path) -> int:
    """Take the store's exclusive lock; the kernel drops it when the process dies."""
    path = root / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is None:  # pragma: no cover
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise StoreLockedError(
            f"{path} is locked: another process has this store open; stop it first "
            f"(two writers would corrupt the store)"
        ) from exc
    return fd


def require_existing(root: Path, session_id: str) -> Identity:
    identity = read_identity(root)
    if identity is None:
        raise StoreNotFoundError(f"no store for session {session_id!r} at {root}")
    check_identity(root, identity, session_id)
    return identity
