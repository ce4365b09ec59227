"""``python -m tests.fuzz --inputs N --seed S [--target endpoint|handler] [--version FIX.4.4|FIXT.1.1|both]``.

Starts the acceptor(s), plays inputs ``start .. start+N-1`` of the seed
(split between the versions: FIX.4.4 takes the first half of the indexes,
FIXT.1.1 the second), prints every finding as it happens with its seed,
input index and bytes, then the figures table. Exit code 1 when anything was
found. ``--start I --inputs 1`` plays one input again (after a valid Logon,
on a fresh acceptor).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.fuzz.runner import Figures, Runner, figures_table
from tests.fuzz.targets import environment_ready, make_target
from tests.interop import Children

VERSIONS = ("FIX.4.4", "FIXT.1.1")


def run(inputs: int, seed: int, *, target: str = "endpoint", versions: tuple[str, ...] = VERSIONS, start: int = 0,
        work: Path, max_rss_growth_mib: int = 128, log: bool = True) -> list[Figures]:
    """Fuzz one acceptor per version; the figures of each."""
    results = []
    share = inputs // len(versions)
    for i, version in enumerate(versions):
        count = share if i < len(versions) - 1 else inputs - share * (len(versions) - 1)
        children = Children(work / version)
        (work / version).mkdir(parents=True, exist_ok=True)
        acceptor = make_target(target, work / version, version, children)
        try:
            runner = Runner(acceptor, seed, max_rss_growth_mib=max_rss_growth_mib, log=log)
            results.append(runner.run(start + share * i, count))
        finally:
            acceptor.stop()
            children.stop_all()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=2000, help="how many inputs (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="the seed every input is drawn from (default 1)")
    parser.add_argument("--start", type=int, default=0, help="the first input index (default 0)")
    parser.add_argument("--target", choices=("endpoint", "handler"), default="endpoint")
    parser.add_argument("--version", choices=(*VERSIONS, "both"), default="both")
    parser.add_argument("--work-dir", help="where the acceptors keep stores and logs (default: a temporary folder)")
    parser.add_argument("--max-rss-growth-mib", type=int, default=128,
                        help="RSS growth over the start that counts as a finding (default 128 MiB)")
    parser.add_argument("--labels", action="store_true", help="also print how often each input kind got each answer")
    args = parser.parse_args(argv)
    why_not = environment_ready()
    if why_not:
        print(f"cannot fuzz: {why_not}", file=sys.stderr)
        return 2
    versions = VERSIONS if args.version == "both" else (args.version,)
    with tempfile.TemporaryDirectory(prefix="fixmesh-fuzz-") as tmp:
        work = Path(args.work_dir) if args.work_dir else Path(tmp)
        print(f"fuzzing the {args.target} acceptor: {args.inputs} inputs from {args.start}, seed {args.seed}, "
              f"{', '.join(versions)}; work dir {work}", flush=True)
        results = run(args.inputs, args.seed, target=args.target, versions=versions, start=args.start, work=work,
                      max_rss_growth_mib=args.max_rss_growth_mib)
    print(figures_table(results))
    if args.labels:
        for figures in results:
            print(f"answers of {figures.version}:")
            for label, n in sorted(figures.labels.items()):
                print(f"  {n:6d}  {label}")
    found = sum(len(f.findings) for f in results)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
