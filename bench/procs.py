"""The benchmark's child processes: started, watched and stopped by pid.

Every process the benchmark needs (engines, broker, session actors, venue
responder, clients) is one child. Its stdout is a file of JSON lines (the
``emit`` events of the bench processes), its stderr a log file, both in the
run's temporary directory. A child gets SIGKILL from the kernel if the
benchmark itself dies (``PR_SET_PDEATHSIG``), and ``Procs.stop_all`` stops
whatever is still running, each by its own pid: SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
POLL_S = 0.02
STOP_TIMEOUT_S = 5.0
REPO_ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1
#: (pid, command) of every child this process started, for the report and for the smoke test.
STARTED: list[tuple[int, list[str]]] = []
#: The scheduling priority of the world outside the gateway: the latency clients and the venue
#: responders. On a real deployment they run on other machines; here they share two cores with every
#: gateway process, and a client that waits for a core sends late and measures itself, not the gateway.
#: At nice -10 a client's timer still fired 1-6 ms late when every core was busy (the scheduler does not
#: preempt at once): real-time priority, where the system allows it, wakes it on time.
WORLD_RT_PRIORITY = 10
#: Where real-time priority is refused: a lower nice value (root only).
WORLD_NICE = -10
#: What the world's processes got, for the report (one entry unless the system refused some).
WORLD_PRIORITIES: set[str] = set()


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message names the child and the tail of its log."""


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout for the benchmark: how bench processes report."""
    print(json.dumps({"event": event, **fields}), flush=True)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def raise_world_priority(pid: int) -> str:
    """Give the world process ``pid`` real-time priority, else nice ``WORLD_NICE``; returns which it got."""
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(WORLD_RT_PRIORITY))
        got = f"real-time priority (SCHED_FIFO {WORLD_RT_PRIORITY})"
    except OSError:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, WORLD_NICE)
            got = f"nice {WORLD_NICE}"
        except OSError:  # without the right to, it runs at the usual priority
            got = "the usual priority"
    WORLD_PRIORITIES.add(got)
    return got


class Proc:
    def __init__(self, name: str, command: Sequence[str], directory: Path, env: dict[str, str] | None = None,
                 world: bool = False) -> None:
        self.name = name
        self.command = list(command)
        self.out_path = directory / f"{name}.out"
        self.log_path = directory / f"{name}.log"
        self.started_s = time.monotonic()
        with self.out_path.open("ab") as out, self.log_path.open("ab") as err:
            self.popen = subprocess.Popen(
                self.command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, preexec_fn=_die_with_parent,
            )
        if world:
            raise_world_priority(self.popen.pid)
        self._read = 0
        self._events: list[dict[str, Any]] = []
        STARTED.append((self.popen.pid, self.command))

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def events(self) -> list[dict[str, Any]]:
        """Every JSON event printed so far (complete lines only)."""
        try:
            with self.out_path.open("rb") as f:
                f.seek(self._read)
                data = f.read()
        except FileNotFoundError:
            return self._events
        end = data.rfind(b"\n")
        if end >= 0:
            self._read += end + 1
            for line in data[: end + 1].splitlines():
                if line.startswith(b"{"):
                    try:
                        self._events.append(json.loads(line))
                    except ValueError:
                        continue
        return self._events

    def find(self, event: str, nth: int = 1) -> dict[str, Any] | None:
        seen = [e for e in self.events() if e.get("event") == event]
        return seen[nth - 1] if len(seen) >= nth else None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, headline: str) -> BenchError:
        return BenchError(f"{headline}\n  command: {' '.join(self.command)}\n  log {self.log_path}:\n"
                          + "\n".join("    " + line for line in self.log_tail().splitlines()))

    def rss_kb(self) -> int | None:
        return rss_kb(self.pid)

    def cpu_s(self) -> float | None:
        return cpu_s(self.pid)

    def pss_kb(self) -> int | None:
        return pss_kb(self.pid)


class Procs:
    """The children of one benchmark section; a context manager that stops them all."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.started: list[Proc] = []

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def python(self, name: str, module: str, *args: str | int | float, profile: Path | None = None,
               world: bool = False) -> Proc:
        """``python -m module args`` (under cProfile, written to ``profile`` at a clean exit, when given).

        ``world``: a latency client or a venue responder, run at the world's priority (``raise_world_priority``).
        """
        head = [sys.executable]
        if profile is not None:
            head += ["-m", "cProfile", "-o", str(profile)]
        return self.start(name, [*head, "-m", module, *(str(a) for a in args)], world=world)

    def start(self, name: str, command: Sequence[str], world: bool = False) -> Proc:
        taken = {p.name for p in self.started}
        unique, n = name, 1
        while unique in taken:
            n += 1
            unique = f"{name}.{n}"
        proc = Proc(unique, command, self.directory, world=world)
        self.started.append(proc)
        return proc

    def stop(self, proc: Proc, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """Signal the child by its pid and wait; SIGKILL if it outlives ``timeout_s``. Returns its exit code."""
        if proc.popen.poll() is None:
            try:
                os.kill(proc.pid, sig)
                return proc.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=timeout_s)
        return proc.popen.returncode

    def stop_together(self, procs: Sequence[Proc], timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM to each by its pid, then wait for them all; SIGKILL whoever outlives ``timeout_s``.

        Many processes that each take a moment to exit (a session actor logs
        out first) stop in the time of the slowest, not of their sum.
        """
        for proc in procs:
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        for proc in procs:
            if proc.popen.poll() is None:
                self.stop(proc, signal.SIGKILL, timeout_s)

    def kill(self, proc: Proc) -> None:
        self.stop(proc, signal.SIGKILL)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)

    def wait_for(self, proc: Proc, event: str, timeout_s: float, nth: int = 1,
                 watch: Callable[[], None] | None = None) -> dict[str, Any]:
        """The ``nth`` event of that name from ``proc``; fails early if any child of the section died."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = proc.find(event, nth)
            if found is not None:
                return found
            self.check_alive()
            if time.monotonic() > deadline:
                raise proc.failure(f"{proc.name}: no {event!r} event within {timeout_s:g} s")
            if watch is not None:
                watch()
            time.sleep(POLL_S)

    def check_alive(self, allowed: Sequence[Proc] = ()) -> None:
        for proc in self.started:
            if not proc.alive and proc not in allowed and not getattr(proc, "expected_exit", False):
                raise proc.failure(f"{proc.name} exited with code {proc.popen.returncode}")


def rss_kb(pid: int) -> int | None:
    """Resident memory (VmRSS) in KiB, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def pss_kb(pid: int) -> int | None:
    """Proportional set size in KiB: resident memory with each shared page divided among the processes that
    map it. Summed over many actors it is what they cost the machine; summed RSS counts the interpreter's and
    the libraries' shared pages once per process. None when the process is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds the process used so far."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def wait_listening(port: int, timeout_s: float, procs: Procs) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            pass
        procs.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"nothing listens on {HOST}:{port} after {timeout_s:g} s")
        time.sleep(POLL_S)


def connect(port: int, timeout_s: float, host: str = HOST) -> socket.socket:
    """A blocking TCP connection with TCP_NODELAY to ``host:port``, tried until ``timeout_s`` (the
    listener may still be starting)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=1.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)
            return sock
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
