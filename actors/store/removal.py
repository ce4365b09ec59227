"""``fixmesh store reset``: remove a stopped session's store, keeping its messages in the archive.

The operator's end-of-day reset removes the sequence numbers and the live
files, so that the next start creates a fresh store. The messages of the
removed sequence are the firm's record all the same: unless the operator
asks to discard them, they join the session's archive (``archive.py``),
and the archives already there stay.

Every step before the last is a rename, so a crash leaves every message
somewhere under the store folder: first the session's directory is renamed
aside (the commit point: no half store under the session's name), then its
live generation is archived inside it, then its archive folder moves to a
fresh directory of the session, and only then is the rest deleted.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from actors.store import archive, layout
from actors.store.api import StoreError
from actors.store.layout import Identity

log = logging.getLogger("fixmesh.store")


def remove_store(directory: str | os.PathLike[str], session_id: str, *, now_ns: int,
                 keep_messages: bool = True) -> bool:
    """Delete a session's store; its messages go to its archive unless ``keep_messages`` is False.

    Returns False when there was no store. Refuses while a process has the
    store open, and refuses a directory whose identity file names another
    session.
    """
    root = layout.session_dir(directory, session_id)
    if not root.is_dir():
        return False
    lock_fd = layout.lock_store(root)
    try:
        identity = _identity_for_removal(root)
        if identity is not None:
            layout.check_identity(root, identity, session_id)
        doomed = root.with_name(f"{root.name}.removing-{os.getpid()}")
        os.replace(root, doomed)
    finally:
        os.close(lock_fd)
    layout.fsync_dir(root.parent)
    if keep_messages and identity is not None and _holds_messages(doomed, identity.generation):
        archive.stage(doomed, identity, now_ns, durable=True)
        archive.finish(doomed, identity.generation + 1, durable=True)
    kept = archive.archive_root(doomed)
    if kept.is_dir():
        root.mkdir()
        os.replace(kept, archive.archive_root(root))
        layout.fsync_dir(root)
    import shutil  # here: an operator's reset only; shutil maps libbz2 and liblzma in every actor

    shutil.rmtree(doomed)
    layout.fsync_dir(root.parent)
    log.info("removed the store of session %r at %s", session_id, root)
    return True


def _holds_messages(root: Path, generation: int) -> bool:
    paths = (layout.data_path(root, generation, kind) for kind in (layout.OUT_LOG, layout.IN_LOG))
    return any(path.exists() and path.stat().st_size > 0 for path in paths)


def _identity_for_removal(root: Path) -> Identity | None:
    """A damaged or foreign-format identity file must not block the operator's way out."""
    try:
        return layout.read_identity(root)
    except StoreError as exc:
        log.warning("removing %s although its identity file is unreadable: %s", root, exc)
        return None
