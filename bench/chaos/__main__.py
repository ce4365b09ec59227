"""``python -m bench.chaos``: Handler/Driven pairs over namespace hosts under random faults; then the ledger.

    python -m bench.chaos [--pairs 4] [--rate 20] [--duration 120 | --faults N] [--fault-interval 2]
                          [--seed 1] [--weights kill=6,host=2,link=2] [--json PATH] [--work DIR] [--keep]

Needs root and iproute2 (network namespaces); docs/chaos.md has the hosts,
the fault kinds, what the ledger checks and what "time to recover" means.
Prints one line per fault on stderr and the table on stdout. Exit status:
0 nothing lost or duplicated and every program running; 1 the ledger found
a problem (each one printed, and the run's folder kept); 2 the run could
not be carried out (no namespaces, a witness died, a setup step failed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.chaos import report
from bench.chaos.faults import parse_weights
from bench.chaos.plan import Plan
from bench.chaos.run import Run
from bench.children import ChildFailed
from bench.deployment import DeploymentError
from bench.netns import NamespacesUnavailable


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=4, help="Handler/Driven pairs, each with its user and venue (4)")
    p.add_argument("--rate", type=float, default=20.0, help="orders per second from each user (20)")
    p.add_argument("--duration", type=float, help="seconds of faults (default 120 unless --faults is given)")
    p.add_argument("--faults", type=int, help="stop after this many faults (with --duration: whichever first)")
    p.add_argument("--fault-interval", type=float, default=2.0,
                   help="mean pause between two faults, seconds (uniform in 0.5x..1.5x; default 2)")
    p.add_argument("--seed", type=int, default=1, help="the random draws' seed: the same seed, the same draws (1)")
    p.add_argument("--weights", type=parse_weights, default=parse_weights("kill=6,host=2,link=2"),
                   help="relative weights of the fault kinds (kill=6,host=2,link=2)")
    p.add_argument("--tail", type=float, default=5.0, help="seconds the orders keep flowing after the last fault")
    p.add_argument("--settle", type=float, default=120.0,
                   help="at most this many seconds for everything to arrive once the flow has stopped (120)")
    p.add_argument("--json", type=Path, help="write the figures and the fault log here")
    p.add_argument("--work", type=Path, help="the run's folder (default: a new temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the run's folder also when the run is clean")
    args = p.parse_args(argv)
    if args.duration is None and args.faults is None:
        args.duration = 120.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: the run's ``finally`` kills its children by pid and removes the namespaces.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        plan = Plan(pairs=args.pairs, rate=args.rate, duration_s=args.duration, faults=args.faults,
                    fault_interval_s=args.fault_interval, seed=args.seed, weights=args.weights, tail_s=args.tail,
                    settle_s=args.settle)
    except ValueError as exc:
        log(f"error: {exc}")
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="fixmesh-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    log(f"[chaos] run in {work}: {plan.pairs} pairs, {plan.rate:g} orders/s each, seed {plan.seed}")
    started = time.monotonic()
    try:
        outcome = Run(plan, work, log).execute()
    except (NamespacesUnavailable, ChildFailed, DeploymentError) as exc:
        log(f"[chaos] the run could not be carried out after {time.monotonic() - started:.0f} s: {exc}")
        log(f"[chaos] its folder is kept: {work}")
        return 2
    except Exception:  # a fault of the run itself, not a finding: exit 2, never 1
        log(f"[chaos] the run failed after {time.monotonic() - started:.0f} s:\n{traceback.format_exc()}")
        log(f"[chaos] its folder is kept: {work}")
        return 2
    figures = report.figures(outcome)
    print(report.table(figures), flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
    if outcome.ok and not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
