"""QuickFIX's acceptance scripts (``.def`` files) played against fixmesh's acceptor.

``script`` parses the scripts and compares messages without touching a socket,
``player`` plays one parsed script over TCP, ``test_conformance`` runs the
folders under pytest and ``python -m tests.acceptance`` plays them against any
running acceptor. The scripts live outside the repository; this module says
where they are looked for, so the pytest entry and the command line agree.
"""

from __future__ import annotations

import os
from pathlib import Path

CONFORMANCE_DIR_ENV = "FIXMESH_CONFORMANCE_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def default_conformance_dir() -> Path:
    """The shared copy of QuickFIX's test data sits beside the repository, not inside it."""
    return REPO_ROOT.parent / "shared" / "conformance" / "quickfix"


def conformance_dir() -> Path:
    """The folder holding ``definitions/`` and ``spec/``: the environment wins over the default."""
    configured = os.environ.get(CONFORMANCE_DIR_ENV, "").strip()
    return Path(configured) if configured else default_conformance_dir()


def missing_conformance_data(directory: Path) -> str | None:
    """Why ``directory`` cannot be used, or None; phrased so a failing test tells the reader what to do."""
    definitions = directory / "definitions"
    if directory.is_dir() and definitions.is_dir():
        return None
    source = f"${CONFORMANCE_DIR_ENV}" if os.environ.get(CONFORMANCE_DIR_ENV, "").strip() else "the default location"
    missing = directory if not directory.is_dir() else definitions
    return (
        f"QuickFIX conformance scripts not found: looked in {directory} (from {source}); {missing} does not exist. "
        f"Set {CONFORMANCE_DIR_ENV} to the folder that holds definitions/ (with server/fix42, server/fix44, "
        f"server/validate and fields.fmt) and spec/, e.g. "
        f"{CONFORMANCE_DIR_ENV}=/path/to/shared/conformance/quickfix."
    )
