"""Plain data derived from a source file, kept between runs in a cache folder.

Every session actor derives the same tables from the same data dictionary
at start. Deriving them means parsing XML, whose transient objects leave the
process's heap larger for as long as it lives (about 1.5 MB for FIX.4.4);
reading tables derived by an earlier start costs a ``marshal.loads`` of
about 120 kB. This module keeps such tables, for any plain data that
``marshal`` writes (builtin containers, numbers, strings, bytes).

Rules:

* One entry per source file (the folder holds ``<name>-<digest of its path>``
  entries, so it does not grow when a file is edited). The entry records the
  key it was derived under: the source's bytes, what was derived (``kind``
  and its ``version``) and the Python that wrote it (``marshal``'s format can
  change between versions). A different key is a stale entry: derived again
  and replaced.
* Never trusted blindly: the entry holds the SHA-256 of its payload, checked
  before the payload is read. An entry that fails the check, or that does
  not load, is damaged: it is derived again and replaced, with a warning.
* Written atomically (a temporary file renamed over the entry): a reader
  sees the old entry or the new one. Two processes deriving the same entry
  at once write the same bytes; the last rename wins. No fsync: an entry
  emptied by a crash fails its check and is derived again.
* A folder that cannot be made or written (read-only, no home folder) costs
  a log line and the derivation at each start, nothing else.
* At most ``MAX_ENTRIES`` entries per kind: writing one removes the oldest
  beyond that (a test suite writes topologies in hundreds of temporary
  folders; a deployment has a handful of files).

The folder: ``$FIXMESH_CACHE_DIR``, else ``$XDG_CACHE_HOME/fixmesh``, else
``~/.cache/fixmesh``; each kind of data in its own subfolder.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from actors.fix.native import sha256

log = logging.getLogger("fixmesh.cache")

#: The environment variable naming the cache folder.
CACHE_DIR_ENV = "FIXMESH_CACHE_DIR"
#: The first bytes of every entry; another value is a damaged entry (or not one of ours).
MAGIC = b"fixmesh plain cache 1\n"
#: Entries kept per kind (per subfolder).
MAX_ENTRIES = 256
_DIGEST_SIZE = 32
_HEADER_SIZE = len(MAGIC) + 2 * _DIGEST_SIZE
_CHUNK_BYTES = 64 * 1024


def default_cache_dir() -> Path | None:
    """``$FIXMESH_CACHE_DIR``, else ``$XDG_CACHE_HOME/fixmesh``, else ``~/.cache/fixmesh``; None without a home."""
    configured = os.environ.get(CACHE_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg:
        return Path(xdg) / "fixmesh"
    try:
        return Path.home() / ".cache" / "fixmesh"
    except RuntimeError:  # no HOME and no password-database entry: nowhere to keep a cache
        return None


class PlainCache:
    """The entries of one kind of derived data (``kind``, at ``version``) in ``folder``."""

    def __init__(self, folder: Path, kind: str, version: int) -> None:
        self.folder = folder
        self.kind = kind
        self.version = version

    def entry_path(self, source: Path) -> Path:
        """Where the entry derived from ``source`` lives: one per source path."""
        where = sha256(os.fsencode(os.path.abspath(source))).hexdigest()[:16]
        return self.folder / f"{source.name}-{where}"

    def key(self, data: bytes) -> bytes:
        """What an entry must have been derived from to be used: the source's bytes, the kind, this Python."""
        return self._key((data,))

    def file_key(self, source: Path) -> bytes:
        """``key`` of the bytes in ``source``, read a chunk at a time (OSError if it cannot be read).

        A process that finds its entry never holds the whole source in memory: a transient copy
        of a 300 kB dictionary would stay in its heap's high-water mark for as long as it runs.
        """
        with open(source, "rb") as file:
            return self._key(iter(lambda: file.read(_CHUNK_BYTES), b""))

    def _key(self, chunks: Iterable[bytes]) -> bytes:
        python = f"{self.kind} {self.version} marshal {marshal.version} python {sys.version_info[:2]}\n"
        digest = sha256(python.encode())
        for chunk in chunks:
            digest.update(chunk)
        key: bytes = digest.digest()
        return key

    def get(self, source: Path, data: bytes) -> object | None:
        """The value derived from ``data`` (the bytes of ``source``), or None: missing, stale or damaged."""
        return self.lookup(source, self.key(data))

    def lookup(self, source: Path, key: bytes) -> object | None:
        """The value of the entry of ``source`` derived under ``key``, or None: missing, stale or damaged."""
        path = self.entry_path(source)
        try:
            entry = path.read_bytes()
        except FileNotFoundError:
            log.info("%s: no cached %s in %s; deriving them", source, self.kind, self.folder)
            return None
        except OSError as exc:
            log.warning("%s: cannot read the cached %s at %s (%s); deriving them", source, self.kind, path,
                        exc.strerror or exc)
            return None
        payload = memoryview(entry)[_HEADER_SIZE:]  # not a copy
        if entry[:len(MAGIC)] != MAGIC or entry[len(MAGIC) + _DIGEST_SIZE:_HEADER_SIZE] != sha256(payload).digest():
            self.damaged(source, path, "its digest does not match")
            return None
        if entry[len(MAGIC):len(MAGIC) + _DIGEST_SIZE] != key:
            log.info("%s: the cached %s at %s are stale (the file or Python changed); deriving them again",
                     source, self.kind, path)
            return None
        try:
            value: object = marshal.loads(payload)
        except (ValueError, EOFError, TypeError) as exc:
            self.damaged(source, path, f"it does not load: {exc}")
            return None
        return value

    def damaged(self, source: Path, path: Path, why: str) -> None:
        """Say that the entry of ``source`` is not usable; the caller derives it again and ``put`` replaces it."""
        log.warning("%s: the cached %s at %s are damaged (%s); derived again and replaced", source, self.kind,
                    path, why)

    def put(self, source: Path, data: bytes, value: Any) -> None:
        """Keep ``value``, derived from ``data`` (the bytes of ``source``); a failure is logged, not raised.

        ``value`` is plain data that ``marshal`` writes (builtin containers, numbers, text, bytes).
        """
        path = self.entry_path(source)
        payload = marshal.dumps(value)
        entry = MAGIC + self.key(data) + sha256(payload).digest() + payload
        scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            scratch.write_bytes(entry)
            os.replace(scratch, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                scratch.unlink(missing_ok=True)
            # Not a warning: an operator's tool run by a user without a writable home would print it every time.
            log.info("%s: cannot keep the %s in %s (%s); they are derived at each start", source, self.kind,
                     self.folder, exc.strerror or exc)
            return
        log.info("%s: %s cached at %s", source, self.kind, path)
        self.prune()

    def prune(self) -> None:
        """Remove the oldest entries beyond ``MAX_ENTRIES``; what cannot be removed stays."""
        try:
            entries = [(entry.stat().st_mtime_ns, entry) for entry in self.folder.iterdir()
                       if not entry.name.startswith(".")]
        except OSError:
            return
        entries.sort()
        for _, entry in entries[:-MAX_ENTRIES]:
            with contextlib.suppress(OSError):
                entry.unlink()
