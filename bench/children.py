"""Child processes of a long-running bench program (the chaos run, the cross-host scale row): started,
watched and stopped by their own pid.

    children = Children(directory)
    child = children.start("supervisord-hub", ["ip", "netns", "exec", ..., "supervisord", ...], env=..., cwd=...)
    wait_until(lambda: ready(), 30, "the broker to listen", children)
    children.stop_all()

Each child writes stdout and stderr to ``<directory>/<name>.<n>.log``, gets
SIGKILL from the kernel if this process dies (``PR_SET_PDEATHSIG``, kept
across the ``exec`` of ``ip netns exec``), and is stopped by its pid only,
never by a name. A child that exits while nobody stopped it (``stopped``) is
a failure, reported with the tail of its log by the next ``check_alive``.
The test suite's children are these too (``tests.interop`` re-exports
them): nothing here needs pytest, so the chaos program and the tests share
one implementation.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.05
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 30
_PR_SET_PDEATHSIG = 1


class ChildFailed(AssertionError):
    """A child exited while it should run, ignored SIGTERM, or a wait timed out; the message carries the logs'
    tails. An AssertionError: the test suite uses these children too, and there it is a failed check."""


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (its children, theirs, ...), read from ``/proc`` while they still hang from it."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text(encoding="ascii", errors="replace")
            except OSError:
                continue  # gone meanwhile
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    for _ in range(100_000):  # bounded: a process table is finite, and a cycle cannot occur
        if not todo:
            break
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


class Child:
    """One child process with stdout and stderr in one log file."""

    def __init__(self, name: str, command: list[str], log_path: Path, *, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        """``env``: the whole environment (default: this process's); ``cwd``: default the repository."""
        self.name = name
        self.command = command
        self.log_path = log_path
        #: Set when it is stopped on purpose, so that its exit is not a failure.
        self.stopped = False
        with log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                command, cwd=cwd or REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}, preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def exit_code(self) -> int | None:
        return self.popen.poll()

    def kill(self) -> None:
        """kill -9, by its pid, and every process it started (a supervisord's programs would otherwise go on
        running, orphaned, after the run that started them)."""
        self.stopped = True
        if self.popen.poll() is None:
            below = descendants(self.pid)
            for pid in (self.pid, *below):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=STOP_TIMEOUT_S)

    def terminate(self) -> int | None:
        """SIGTERM (a FIX program logs out); its exit code. One that outlives ``STOP_TIMEOUT_S`` gets SIGKILL
        and is a failure: every program here must stop cleanly on SIGTERM, as supervisord asks it to."""
        self.stopped = True
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                return self.popen.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                raise ChildFailed(self.report(f"{self.name} ignored SIGTERM for {STOP_TIMEOUT_S:g} s")) from None
        return self.popen.poll()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            return f"(cannot read {self.log_path}: {error})"

    def report(self, headline: str) -> str:
        tail = "\n".join(self.log_text().splitlines()[-LOG_TAIL_LINES:])
        return f"{headline}\ncommand: {' '.join(self.command)}\nlog: {self.log_path}\n--- log tail ---\n{tail}"


class Children:
    """The children of one run; ``stop_all`` kills whatever still runs, each by its pid."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.started: list[Child] = []

    def start(self, name: str, command: list[str], *, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Child:
        index = sum(1 for child in self.started if child.name == name) + 1
        child = Child(name, command, self.directory / f"{name}.{index}.log", env=env, cwd=cwd)
        self.started.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.started):
            if child.exit_code is None:
                child.kill()

    def check_alive(self) -> None:
        for child in self.started:
            code = child.exit_code
            if code is not None and not child.stopped:
                raise ChildFailed(child.report(f"{child.name} exited with code {code}"))


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, children: Children) -> None:
    """Poll ``condition`` a bounded number of times; fail at once if a child died meanwhile."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / POLL_S) + 1):
        children.check_alive()
        if condition():
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    logs = "\n\n".join(child.report(f"[{child.name}]") for child in children.started if child.exit_code is None)
    raise ChildFailed(f"timed out after {timeout_s:g} s waiting for {what}\n{logs}")
