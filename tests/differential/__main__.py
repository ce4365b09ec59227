"""Play scenarios against QuickFIX's acceptor and fixmesh's and print both transcripts with their differences.

    python -m tests.differential                          # every scenario, every version
    python -m tests.differential -v 4.2 -s seq_too_high   # chosen ones (both options repeat)
    python -m tests.differential --differences-only

The exit status is 0 when every difference found is in the allowlist.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.differential import VERSION_BY_KEY, VERSIONS, missing_dictionaries, spec_dir
from tests.differential.allowlist import judge
from tests.differential.engines import all_pairs, play_all, start_engines
from tests.differential.scenarios import SCENARIO_BY_NAME, SCENARIOS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.differential", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--version", action="append", choices=sorted(VERSION_BY_KEY), help="FIX version key")
    p.add_argument("-s", "--scenario", action="append", choices=sorted(SCENARIO_BY_NAME), help="scenario name")
    p.add_argument("--differences-only", action="store_true", help="print only the pairs that differ")
    p.add_argument("--work-dir", help="where the acceptors keep their settings and logs (default: a new temp folder)")
    args = p.parse_args(argv)
    problem = missing_dictionaries(spec_dir())
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    versions = tuple(VERSION_BY_KEY[k] for k in args.version) if args.version else VERSIONS
    scenarios = tuple(SCENARIO_BY_NAME[n] for n in args.scenario) if args.scenario else SCENARIOS
    work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="fixmesh-differential-"))
    started = time.monotonic()
    pairs = all_pairs(versions, scenarios)
    engines = start_engines(work_dir, pairs)
    print(f"{len(pairs)} pairs; acceptors ready after {time.monotonic() - started:.1f} s", flush=True)
    try:
        outcomes = play_all(engines, pairs)
        engines.check_alive()
    finally:
        engines.stop()
    unexpected = 0
    for outcome in outcomes:
        verdict = judge(outcome)
        unexpected += 0 if verdict.ok else 1
        if outcome.comparison.differences or not args.differences_only:
            print(f"[{verdict.summary}] {outcome.report()}\n", flush=True)
    print(f"{unexpected} unexpected; {time.monotonic() - started:.1f} s; logs in {work_dir}")
    return 0 if unexpected == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
