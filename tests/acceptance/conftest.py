"""pytest wiring for the conformance scripts: the marker and the real acceptor processes.

The acceptor runs as its own OS process, started with the same command a
person would type (see docs/conformance.md), so the scripts test the shipped
program and not an in-process stand-in.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop import free_port

from . import REPO_ROOT

LOG_TAIL_LINES = 40
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
_STARTUP_POLL_S = 0.1


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "conformance: QuickFIX acceptance scripts played against the real acceptor process"
    )


@dataclass(frozen=True)
class AcceptorSpec:
    """Which acceptor a script folder needs: one process per folder, because a folder shares one session."""

    name: str
    fix_version: str
    spec_dir: Path


class AcceptorUnavailable(Exception):
    """The acceptor did not start or has died; the message carries the command and the log tail."""


class AcceptorProcess:
    """One ``actors.sim.acceptance_server`` process listening on loopback, with its output in a log file."""

    host = "127.0.0.1"

    def __init__(self, spec: AcceptorSpec, work_dir: Path) -> None:
        self.spec = spec
        self.port = free_port()
        self.log_path = work_dir / "acceptor.log"
        store_dir = work_dir / "store"
        store_dir.mkdir(parents=True, exist_ok=True)
        self.command = [
            sys.executable, "-m", "actors.sim.acceptance_server",
            "--fix-version", spec.fix_version,
            "--port", str(self.port),
            "--spec-dir", str(spec.spec_dir),
            "--store-dir", str(store_dir),
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.command,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    @property
    def exit_code(self) -> int | None:
        return self._process.poll()

    def wait_until_listening(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Bounded wait for the port; a process that exits first is reported at once, not after the timeout."""
        attempts = max(1, int(timeout_s / _STARTUP_POLL_S))
        for _ in range(attempts):
            if self.exit_code is not None:
                raise AcceptorUnavailable(self.report(f"acceptor exited with code {self.exit_code} during start"))
            try:
                with socket.create_connection((self.host, self.port), timeout=_STARTUP_POLL_S):
                    return
            except OSError:
                time.sleep(_STARTUP_POLL_S)
        raise AcceptorUnavailable(self.report(f"acceptor did not listen on {self.host}:{self.port} in {timeout_s:g} s"))

    def stop(self) -> None:
        """SIGTERM lets it log out and flush its store; SIGKILL only if it ignores that."""
        if self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=STOP_TIMEOUT_S)

    def report(self, headline: str) -> str:
        """What a reader needs to reproduce a failure: the command, the log file and its tail."""
        return (
            f"{headline}\n"
            f"acceptor command: {' '.join(self.command)} (cwd {REPO_ROOT})\n"
            f"acceptor log: {self.log_path}\n"
            f"--- last {LOG_TAIL_LINES} log lines ---\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            return f"(cannot read log: {error})"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"
