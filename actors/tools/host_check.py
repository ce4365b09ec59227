"""``fixmesh deploy check --host NAME``: what the host's sessions need from the machine before the day starts.

The bus check says whether programs can talk; this one says whether the
sessions will start and stay up on this machine: each file store's folder
is writable with room to write, and each TLS certificate is readable and
not about to end. A session finds both out by itself (it waits at start on
a full disk, it warns about a certificate 30 days ahead), but by then it is
the trading day; an operator runs this the evening before.

A *problem* stops a session (exit 1 of the check); a *warning* is what will
become one (exit 0, said on a ``WARNING:`` line).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from actors.gateway.topology import SessionSettings, Topology
from actors.shell.certificates import CertificateError, read_certificates
from actors.shell.disk_wait import MIN_FREE_BYTES, free_bytes, nearest_existing

#: Below this much free space on a store's file system the check warns: a busy session writes a few
#: hundred megabytes a day, and its archive keeps every ended day unless ``store.archive_days``.
LOW_FREE_BYTES = 1 << 30


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_sessions(topology: Topology, host: str, now_s: float, out: Callable[[str], None]) -> Findings:
    """The stores and certificates of every session placed on ``host``."""
    findings = Findings()
    sessions = [s for s in topology.sessions.values() if s.runs_on == host]
    if not sessions:
        return findings
    out(f"sessions of host {host}:")
    for session in sessions:
        _check_store(session, out, findings)
        _check_certificates(session, now_s, out, findings)
    return findings


def _check_store(session: SessionSettings, out: Callable[[str], None], findings: Findings) -> None:
    spec = session.store
    if spec.kind != "file" or spec.directory is None:
        out(f"  {session.name}: store in memory")
        return
    folder = spec.directory
    existing = nearest_existing(folder)
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        findings.problems.append(
            f"{session.name}: its store folder {folder} cannot be written by this user (the nearest existing "
            f"folder is {existing}): the session cannot start. Create the folder, or give this user write access")
        out(f"  {session.name}: store {folder}  NOT WRITABLE")
        return
    free = free_bytes(existing)
    out(f"  {session.name}: store {folder}  writable, {_size(free)} free")
    if free < MIN_FREE_BYTES:
        findings.problems.append(
            f"{session.name}: the file system of {folder} has {_size(free)} free: the session waits at start "
            f"until there is room (at least {_size(MIN_FREE_BYTES)}). Free space on it")
    elif free < LOW_FREE_BYTES:
        findings.warnings.append(
            f"{session.name}: the file system of {folder} has only {_size(free)} free; a full disk stops the "
            f"session. Free space, or collect its archive (store.archive_days)")


def _check_certificates(session: SessionSettings, now_s: float, out: Callable[[str], None],
                        findings: Findings) -> None:
    tls = session.tls
    if tls is None:
        return
    for setting, path in (("cert", tls.cert), ("ca", tls.ca), ("crl", tls.crl)):
        if path is None:
            continue
        try:
            certificates = read_certificates(setting, path)
        except (OSError, CertificateError) as exc:
            findings.problems.append(f"{session.name}: tls.{setting}: {exc}: the session cannot start TLS")
            out(f"  {session.name}: tls.{setting} {path}  UNREADABLE")
            continue
        for certificate in certificates:
            text = certificate.describe(now_s)
            out(f"  {session.name}: {text}")
            if certificate.not_after_s <= now_s:
                findings.problems.append(f"{session.name}: {text}: TLS handshakes fail. Renew it, then restart "
                                         f"the session" + (" (a new list is read without one)"
                                                           if setting == "crl" else ""))
            elif certificate.due(now_s):
                findings.warnings.append(f"{session.name}: {text}. Renew it, then restart the session")


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
