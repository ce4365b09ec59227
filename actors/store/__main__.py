"""Operator commands for a session's file store.

``python -m actors.store show --dir D --session S`` prints the sequence
numbers, creation time and message counts without locking or changing the
store, so it works while the session runs, and lists the archived
sequences. ``python -m actors.store reset --dir D --session S`` removes the
store (the end-of-day reset), keeping its messages in the archive unless
``--discard`` is given; the session must be stopped first.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from actors.store import archive
from actors.store.api import StoreError, StoreNotFoundError
from actors.store.file import FileStore
from actors.store.layout import session_dir
from actors.store.removal import remove_store

_NS_PER_S = 1_000_000_000


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "show":
            return _show(args.dir, args.session)
        return _reset(args.dir, args.session, discard=args.discard)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    invoked_as = sys.argv[0] if sys.argv and not sys.argv[0].endswith("__main__.py") else "python -m actors.store"
    parser = argparse.ArgumentParser(prog=invoked_as, description="Operator commands for a session's file store.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("show", "print sequence numbers and counts"), ("reset", "remove the store")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--dir", required=True, help="the store directory of the settings")
        cmd.add_argument("--session", required=True, help="the session id, exactly as configured")
        if name == "reset":
            cmd.add_argument("--discard", action="store_true",
                             help="delete the sequence's messages instead of archiving them")
    return parser


def _show(directory: str, session_id: str) -> int:
    try:
        store = FileStore.inspect(directory, session_id)
    except StoreNotFoundError:
        _print_archives(session_dir(directory, session_id))
        raise
    try:
        incoming = len(store.get_incoming(1, (1 << 63) - 1))
        print(f"session:          {store.session_id}")
        print(f"path:             {store.path} (generation {store.generation})")
        print(f"creation time:    {_utc_text(store.creation_time_ns)} ({store.creation_time_ns} ns)")
        print(f"next sender seq:  {store.next_sender_seq}")
        print(f"next target seq:  {store.next_target_seq}")
        print(f"outgoing stored:  {store.outgoing_count} messages")
        print(f"incoming journal: {incoming} messages")
        _print_archives(store.path)
    finally:
        store.close()
    return 0


def _print_archives(root: Path) -> None:
    for sequence in archive.listed(root):
        print(f"archived:         {sequence.name} (ended {_utc_text(sequence.ended_ns)})")


def _reset(directory: str, session_id: str, *, discard: bool) -> int:
    if remove_store(directory, session_id, now_ns=time.time_ns(), keep_messages=not discard):
        kept = "its messages discarded" if discard else "its messages kept in its archive"
        print(f"removed the store of {session_id!r} in {directory}, {kept}")
    else:
        print(f"no store of {session_id!r} in {directory}; nothing to remove")
    return 0


def _utc_text(ns: int) -> str:
    seconds, rest = divmod(ns, _NS_PER_S)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{rest:09d} UTC"


if __name__ == "__main__":
    sys.exit(main())
