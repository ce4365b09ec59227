"""``fixmesh deploy stop``: stop a host's programs one priority at a time, every program of a priority at once.

    fixmesh deploy stop --conf supervisord.conf [--keep-supervisord]

``supervisorctl shutdown`` (and SIGTERM to supervisord) stops the programs
one at a time, even those of one priority, and supervisord's loop may sleep
up to a second before it notices each exit: a host of 25 pairs (53
programs) took 7.7 s to stop that way, its sessions logging out one after
the other, against 1.6 s with this command (docs/operations.md).

This command keeps supervisord's order, the highest ``priority`` first (the
monitor and the metrics program, then the coordinators, then the sessions,
the broker last, as ``fixmesh deploy render`` sets them), but sends SIGTERM
to every program of a priority at the same moment and waits for all of them
(each session logs its counterparty out within its ``stopwaitsecs``; after
that supervisord kills it), then goes on to the next priority, then shuts
supervisord down unless ``--keep-supervisord``. The broker stops last, so
the sessions' last events and acknowledgements still cross the bus.

supervisorctl's socket and password come from ``--conf``, as for
``supervisorctl -c`` (``FIXMESH_SUPERVISOR_PASSWORD``, and ``FIXMESH_ROOT``
with the default root). Exit status: 0 every program stopped; 1 a program
did not stop in time (named; supervisord then kills it itself), or
supervisord stopped answering on the way; 2 supervisord could not be
reached, nothing was done.
"""

from __future__ import annotations

import argparse
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from actors.tools.supervisor_link import Supervisor, SupervisorError

#: How often the states are asked while a priority stops (each question also wakes supervisord to reap).
POLL_S = 0.1
#: Beyond a program's ``stopwaitsecs``: the time supervisord takes to kill it and notice.
MARGIN_S = 5.0
#: supervisord's states of a program that is still on its way down or up.
NOT_DOWN = frozenset({"RUNNING", "STARTING", "STOPPING", "BACKOFF"})


@dataclass(frozen=True, slots=True)
class Level:
    """The programs of one priority, and how long the slowest of them may take to stop."""

    priority: int
    names: tuple[str, ...]
    stop_wait_s: float


def levels(config_infos: list[dict[str, object]], states: dict[str, str]) -> list[Level]:
    """The running programs grouped by priority, the highest first (the order supervisord stops them in)."""
    by_priority: dict[int, list[tuple[str, float]]] = {}
    for info in config_infos:
        name = str(info["name"])
        if states.get(name) in NOT_DOWN:
            priority = int(str(info.get("process_prio", 999)))
            stop_wait_s = float(str(info.get("stopwaitsecs", 10)))
            by_priority.setdefault(priority, []).append((name, stop_wait_s))
    return [Level(p, tuple(sorted(n for n, _ in members)), max(w for _, w in members))
            for p, members in sorted(by_priority.items(), reverse=True)]


def stop_level(supervisor: Supervisor, level: Level) -> list[str]:
    """SIGTERM to every program of ``level`` at once, then wait for all; the ones still up when the time is over."""
    for name in level.names:
        try:
            supervisor.rpc.stopProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise
    timeout_s = level.stop_wait_s + MARGIN_S
    deadline = time.monotonic() + timeout_s
    up = list(level.names)
    for _ in range(int(timeout_s / POLL_S) + 2):
        states = supervisor.states()
        up = [name for name in level.names if states.get(name) in NOT_DOWN]
        if not up or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    return up


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conf", required=True, help="the host's supervisord configuration (its [supervisorctl])")
    parser.add_argument("--keep-supervisord", action="store_true",
                        help="stop the programs only; supervisord keeps running (start them with supervisorctl)")


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    conf = Path(args.conf)
    try:
        supervisor = Supervisor(conf)
        supervisor.check()
        plan = levels(supervisor.rpc.getAllConfigInfo(), supervisor.states())
    except SupervisorError as exc:
        print(f"fixmesh deploy stop: {conf}: {exc}; nothing was stopped", file=sys.stderr)
        return 2
    out(f"fixmesh deploy stop: {conf}")
    late: list[str] = []
    try:
        for level in plan:
            started = time.monotonic()
            still_up = stop_level(supervisor, level)
            late += still_up
            out(f"  priority {level.priority}: stopped {', '.join(n for n in level.names if n not in still_up)} "
                f"in {time.monotonic() - started:.1f} s")
            for name in still_up:
                out(f"PROBLEM: {name} did not stop within {level.stop_wait_s + MARGIN_S:g} s "
                    f"(see var/log/{name}.log)")
        if not plan:
            out("  no program was running")
        if not args.keep_supervisord:
            supervisor.rpc.shutdown()
            out("  supervisord: shut down")
    except (OSError, xmlrpc.client.Error) as exc:
        out(f"PROBLEM: supervisord stopped answering ({exc}); see its log, var/log/supervisord.log")
        return 1
    return 1 if late else 0
