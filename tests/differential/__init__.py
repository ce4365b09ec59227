"""Differential test: the same session scenarios against QuickFIX's acceptor and fixmesh's, reply by reply.

``scenarios`` holds the scenarios as data (steps to send, wait and expect a
disconnect), ``wire`` renders them to bytes and compares what came back
(pure: no sockets, no clock), ``player`` plays one scenario over TCP,
``qf_acceptor`` and ``fm_acceptor`` are the two acceptor processes,
``engines`` starts them, ``allowlist`` lists the differences that are meant
to be there, and ``test_differential`` runs every (version, scenario) pair.
``python -m tests.differential`` plays chosen scenarios and prints both
transcripts. docs/differential.md describes all of it.

This module names the FIX versions and the sessions both acceptors are
configured with: one session per (version, scenario), so that every scenario
starts on a fresh session with both sequence numbers at 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.acceptance import conformance_dir

#: The acceptor's SenderCompID in every session (QuickFIX's acceptance setup uses the same).
ACCEPTOR_COMP_ID = "ISLD"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Version:
    """One FIX version as the acceptors are configured for it."""

    key: str
    begin_string: str
    app_dictionary: str
    #: FIXT.1.1 only: the transport dictionary and DefaultApplVerID (1137) as it goes on the wire.
    transport_dictionary: str | None = None
    appl_ver_id: str | None = None
    #: QuickFIX's name for the DefaultApplVerID setting.
    appl_ver_name: str | None = None

    @property
    def rank(self) -> int:
        """40..44, or 50 for every FIXT.1.1 session: for 'FIX.4.2 and later' rules."""
        if self.begin_string == "FIXT.1.1":
            return 50
        return int(self.begin_string[4] + self.begin_string[6])

    @property
    def is_fixt(self) -> bool:
        return self.begin_string == "FIXT.1.1"

    @property
    def code(self) -> str:
        """A short tag for CompIDs and test ids: 40 .. 44, 50, 50SP1, 50SP2."""
        return self.key.replace(".", "")


VERSIONS = (
    Version("4.0", "FIX.4.0", "FIX40.xml"),
    Version("4.1", "FIX.4.1", "FIX41.xml"),
    Version("4.2", "FIX.4.2", "FIX42.xml"),
    Version("4.3", "FIX.4.3", "FIX43.xml"),
    Version("4.4", "FIX.4.4", "FIX44.xml"),
    Version("5.0", "FIXT.1.1", "FIX50.xml", "FIXT11.xml", "7", "FIX.5.0"),
    Version("5.0SP1", "FIXT.1.1", "FIX50SP1.xml", "FIXT11.xml", "8", "FIX.5.0SP1"),
    Version("5.0SP2", "FIXT.1.1", "FIX50SP2.xml", "FIXT11.xml", "9", "FIX.5.0SP2"),
)
VERSION_BY_KEY = {version.key: version for version in VERSIONS}


def spec_dir() -> Path:
    """QuickFIX's data dictionaries, from the shared conformance data (never copied into the repository)."""
    return conformance_dir() / "spec"


def missing_dictionaries(directory: Path) -> str | None:
    """Why the dictionaries cannot be used, or None; a differential run without them must fail, not skip."""
    names = sorted({v.app_dictionary for v in VERSIONS} | {"FIXT11.xml"})
    missing = [name for name in names if not (directory / name).is_file()]
    if not missing:
        return None
    return (
        f"QuickFIX data dictionaries not found in {directory}: missing {', '.join(missing)}. "
        "Set FIXMESH_CONFORMANCE_DIR to the folder holding spec/ (e.g. /path/to/shared/conformance/quickfix)."
    )


def client_comp_id(version: Version, scenario_name: str) -> str:
    """The test client's SenderCompID: one session per (version, scenario) on each acceptor."""
    return f"TW{version.code}-{scenario_name}"


@dataclass(frozen=True)
class SessionEntry:
    """One acceptor session, as both acceptor programs read it from the sessions file."""

    begin_string: str
    target_comp_id: str
    app_dictionary: str
    transport_dictionary: str | None
    appl_ver_id: str | None
    appl_ver_name: str | None


def session_entries(pairs: list[tuple[Version, str]]) -> list[SessionEntry]:
    """One acceptor session per (version, scenario name)."""
    directory = spec_dir()
    entries = []
    for version, name in pairs:
        transport = str(directory / version.transport_dictionary) if version.transport_dictionary else None
        entries.append(SessionEntry(
            version.begin_string, client_comp_id(version, name), str(directory / version.app_dictionary),
            transport, version.appl_ver_id, version.appl_ver_name,
        ))
    return entries


def write_sessions(path: Path, entries: list[SessionEntry]) -> None:
    data = {"sender_comp_id": ACCEPTOR_COMP_ID, "sessions": [entry.__dict__ for entry in entries]}
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def read_sessions(path: Path) -> tuple[str, list[SessionEntry]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["sender_comp_id"], [SessionEntry(**entry) for entry in data["sessions"]]
