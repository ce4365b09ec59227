"""Play QuickFIX acceptance scripts against any running acceptor.

    python -m tests.acceptance --host 127.0.0.1 --port 5001 \
        ../shared/conformance/quickfix/definitions/server/fix42

Files play serially in the order given, a folder's ``.def`` files in sorted
order, because the scripts of one folder share one session. Prints PASS or
FAIL per file (with the failing line, the reason, expected and received, SOH
shown as ``|``) and exits non-zero when any file fails.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import conformance_dir
from .player import Outcome, PlayerSettings, load_field_patterns, play_file


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments().parse_args(argv)
    try:
        scripts = expand(args.paths)
        fields_fmt = args.fields_fmt or find_fields_fmt(scripts[0])
        patterns = load_field_patterns(fields_fmt)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = PlayerSettings(message_timeout_s=args.message_timeout, disconnect_timeout_s=args.disconnect_timeout)
    outcomes: list[Outcome] = []
    for path in scripts:
        outcome = play_file(path, args.host, args.port, patterns, settings, name=str(path))
        print(outcome.describe(), flush=True)
        outcomes.append(outcome)
    failed = sum(1 for outcome in outcomes if not outcome.passed)
    print(f"{len(outcomes) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.acceptance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--fields-fmt",
        type=Path,
        help="the patterns file (default: definitions/fields.fmt above the first script)",
    )
    parser.add_argument("--message-timeout", type=float, default=PlayerSettings.message_timeout_s, metavar="S")
    parser.add_argument("--disconnect-timeout", type=float, default=PlayerSettings.disconnect_timeout_s, metavar="S")
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE_OR_DIR")
    return parser


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given, folders as their ``.def`` files in sorted order (not recursive: one folder, one session)."""
    scripts: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.def"))
            if not found:
                raise ValueError(f"no .def files in {path}")
            scripts.extend(found)
        elif path.is_file():
            scripts.append(path)
        else:
            raise ValueError(f"no such file or folder: {path}")
    return scripts


def find_fields_fmt(script: Path) -> Path:
    """``fields.fmt`` sits in ``definitions/``, above the scripts; else try the configured conformance folder."""
    for folder in script.resolve().parents:
        for candidate in (folder / "fields.fmt", folder / "definitions" / "fields.fmt"):
            if candidate.is_file():
                return candidate
    fallback = conformance_dir() / "definitions" / "fields.fmt"
    if fallback.is_file():
        return fallback
    raise ValueError(f"cannot find fields.fmt above {script} or at {fallback}; pass --fields-fmt")


if __name__ == "__main__":
    sys.exit(main())
