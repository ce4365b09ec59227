"""The two acceptor processes of a differential run, and one scenario played against both at once.

Each engine is started once for the whole run with every (version, scenario)
session; a scenario then plays against both at the same time (two threads,
one socket each), with the same time placeholders, so both get byte-identical
input.
"""

from __future__ import annotations

import contextlib
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.differential import VERSIONS, Version, client_comp_id, session_entries, write_sessions
from tests.differential.player import DEFAULT_LIMITS, Limits, Player
from tests.differential.scenarios import SCENARIOS, Scenario
from tests.differential.wire import Comparison, Context, Event, compare
from tests.interop import Child, Children, ProcessFailed, free_ports, wait_listening

#: QuickFIX copies a FIX.5.0 dictionary for each FIXT session: a few hundred sessions take 10-30 s on a busy
#: 2-core machine.
STARTUP_TIMEOUT_S = 120.0
#: Scenarios played at once. They use separate sessions, so they cannot disturb each other, and most of a
#: scenario's time is spent waiting (QuickFIX's 5 s before it drops a duplicate Logon, the heartbeat timers,
#: LogoutTimeout): in parallel the full run takes a fraction of the sum.
WORKERS = 8
MAX_TIMED_WORKERS = 32


@dataclass
class Engines:
    """Both acceptors, listening; ``stop`` ends them (SIGTERM, then SIGKILL) by their pids."""

    quickfix: Child
    fixmesh: Child
    quickfix_port: int
    fixmesh_port: int
    children: Children

    def check_alive(self) -> None:
        self.children.check_alive()

    def stop(self) -> None:
        """SIGTERM to both; whichever ignores it is killed, and the other is stopped all the same."""
        try:
            for child in (self.quickfix, self.fixmesh):
                if child.exit_code is None:
                    with contextlib.suppress(ProcessFailed):
                        child.terminate()
        finally:
            self.children.stop_all()


def start_engines(work_dir: Path, pairs: list[tuple[Version, Scenario]]) -> Engines:
    """Write the sessions file (one session per pair), start both acceptors on free loopback ports, wait until
    both listen."""
    work_dir.mkdir(parents=True, exist_ok=True)
    sessions = work_dir / "sessions.json"
    write_sessions(sessions, session_entries([(version, scenario.name) for version, scenario in pairs]))
    children = Children(work_dir)
    qf_port, fm_port = free_ports(2)
    quickfix = children.start("quickfix", [
        sys.executable, "-m", "tests.differential.qf_acceptor", "--port", str(qf_port),
        "--sessions", str(sessions), "--work-dir", str(work_dir / "quickfix"),
    ])
    fixmesh = children.start("fixmesh", [
        sys.executable, "-m", "tests.differential.fm_acceptor", "--port", str(fm_port),
        "--sessions", str(sessions), "--log-level", "INFO",
    ])
    try:
        wait_listening(qf_port, quickfix, children, timeout_s=STARTUP_TIMEOUT_S)
        wait_listening(fm_port, fixmesh, children, timeout_s=STARTUP_TIMEOUT_S)
    except BaseException:
        children.stop_all()
        raise
    return Engines(quickfix, fixmesh, qf_port, fm_port, children)


@dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    version: Version
    quickfix: list[Event]
    fixmesh: list[Event]
    comparison: Comparison

    def report(self) -> str:
        lines = [f"scenario {self.scenario.name} ({self.scenario.about}), FIX {self.version.key}"]
        lines += [f"  {d.describe()}" for d in self.comparison.differences] or ["  no difference"]
        lines.append("  QuickFIX replies:")
        lines += [f"    [step {e.step}] {e.show()}" for e in self.quickfix]
        lines.append("  fixmesh replies:")
        lines += [f"    [step {e.step}] {e.show()}" for e in self.fixmesh]
        return "\n".join(lines)


def all_pairs(versions: tuple[Version, ...] = VERSIONS, scenarios: tuple[Scenario, ...] = SCENARIOS,
              ) -> list[tuple[Version, Scenario]]:
    """Every (version, scenario) pair the scenario applies to, version by version."""
    return [(v, s) for v in versions for s in scenarios if s.applies_to(v)]


def play_both(engines: Engines, version: Version, scenario: Scenario, limits: Limits = DEFAULT_LIMITS) -> Outcome:
    """One scenario against both acceptors at the same time, with the same placeholders."""
    context = Context(version, client_comp_id(version, scenario.name), datetime.now(UTC))
    with ThreadPoolExecutor(max_workers=2) as pool:
        qf = pool.submit(Player(engines.quickfix_port, context, limits).play, scenario)
        fm = pool.submit(Player(engines.fixmesh_port, context, limits).play, scenario)
        quickfix, fixmesh = qf.result(), fm.result()
    return Outcome(scenario, version, quickfix, fixmesh, compare(quickfix, fixmesh))


def play_all(engines: Engines, pairs: list[tuple[Version, Scenario]], workers: int = WORKERS) -> list[Outcome]:
    """Every pair, ``workers`` at a time, the timed scenarios last and among themselves only (they wait for
    timers that a busy QuickFIX acceptor looks at late); the outcomes in the order of ``pairs``."""
    outcomes: dict[int, Outcome] = {}
    for timed in (False, True):
        chosen = [i for i, (_, scenario) in enumerate(pairs) if scenario.timed is timed]
        # The timed ones mostly sit idle: all of them at once, so the run waits for the timers only once.
        size = max(1, min(len(chosen), MAX_TIMED_WORKERS)) if timed else workers
        with ThreadPoolExecutor(max_workers=size) as pool:
            for i, outcome in zip(chosen, pool.map(lambda i: play_both(engines, *pairs[i]), chosen), strict=True):
                outcomes[i] = outcome
    return [outcomes[i] for i in range(len(pairs))]
