"""``python -m bench.trace DIR``: the timeline of orders through the gateway, from the trace files of a run.

Run any part of the benchmark (or a gateway with the benchmark's client and
venue) with ``FIXMESH_TRACE_DIR=DIR`` in the environment; every process
writes its steps there (``actors.gateway.trace``). This lines them up per
ClOrdID, from the client's ``send`` to its ``recv``, and prints:

* the median (and p99) of each hop over all complete orders: where an order's
  time goes, process by process (a hop between two processes' steps is the
  wire or the broker; a hop within a process is its own work);
* the timeline of the slowest orders, each step with its time since ``send``.

All processes stamp the same clock (one machine's UTC), so the hops add up
to the round trip.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from bench.latency import percentile

Step = tuple[int, str]  # (UTC ns, "process step")


def read_steps(directory: Path) -> dict[str, list[Step]]:
    """Every traced order's steps, in time order; lines that do not parse are skipped.

    The key is the ClOrdID, with ``#2``, ``#3`` ... for the second and later orders of the same ClOrdID: a
    run of several sections numbers each section's orders from 1 again, and a client's ``send`` starts an
    order (the sections run one after the other, so an order's steps lie between its send and the next).
    """
    by_id: dict[str, list[Step]] = defaultdict(list)
    for path in sorted(directory.glob("*.trace")):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) != 4 or not parts[0].isdigit():
                continue
            by_id[parts[3]].append((int(parts[0]), f"{parts[1]} {parts[2]}"))
    orders: dict[str, list[Step]] = {}
    for cl_ord_id, steps in by_id.items():
        steps.sort()
        journeys: list[list[Step]] = []
        for step in steps:
            if not journeys or step[1].endswith(" send"):
                journeys.append([])
            journeys[-1].append(step)
        for n, journey in enumerate(journeys, 1):
            orders[cl_ord_id if n == 1 else f"{cl_ord_id}#{n}"] = journey
    return orders


def complete(orders: dict[str, list[Step]]) -> dict[str, list[Step]]:
    """The orders traced from the client's send to its receipt of the reply, each step once."""
    whole: dict[str, list[Step]] = {}
    for key, steps in orders.items():
        names = [name for _, name in steps]
        if names and names[0].endswith(" send") and names[-1].endswith(" recv") and len(set(names)) == len(names):
            whole[key] = steps
    return whole


def hop_table(orders: dict[str, list[Step]]) -> list[tuple[str, float, float, int]]:
    """(hop, median us, p99 us, orders) for each hop of the most common path, in path order."""
    paths: dict[tuple[str, ...], int] = defaultdict(int)
    for steps in orders.values():
        paths[tuple(name for _, name in steps)] += 1
    if not paths:
        return []
    path = max(paths, key=lambda p: paths[p])
    hops: dict[int, list[int]] = defaultdict(list)
    for steps in orders.values():
        if tuple(name for _, name in steps) == path:
            for i in range(1, len(steps)):
                hops[i].append(steps[i][0] - steps[i - 1][0])
    rows = []
    for i in range(1, len(path)):
        values = sorted(hops[i])
        rows.append((f"{path[i - 1]} -> {path[i]}", percentile(values, 50) / 1e3, percentile(values, 99) / 1e3,
                     len(values)))
    return rows


def timeline(steps: list[Step]) -> list[str]:
    start = steps[0][0]
    lines = []
    previous = start
    for t, name in steps:
        lines.append(f"  {(t - start) / 1e3:>10,.0f} us  (+{(t - previous) / 1e3:>8,.0f})  {name}")
        previous = t
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.trace", description=__doc__.split("\n\n")[0])
    p.add_argument("directory", type=Path, help="the FIXMESH_TRACE_DIR of the run")
    p.add_argument("--slowest", type=int, default=3, help="how many of the slowest orders to show (default 3)")
    args = p.parse_args(argv)
    orders = complete(read_steps(args.directory))
    if not orders:
        print(f"{args.directory}: no complete order (a client send through to its recv) in the trace files",
              file=sys.stderr)
        return 1
    print(f"{len(orders):,} complete orders\n")
    print("hop (median / p99 over the orders of the most common path):")
    for hop, p50, p99, count in hop_table(orders):
        print(f"  {p50:>9,.0f} us  {p99:>9,.0f} us  {hop}  ({count:,})")
    ranked = sorted(orders.items(), key=lambda kv: kv[1][-1][0] - kv[1][0][0], reverse=True)
    for key, steps in ranked[:args.slowest]:
        print(f"\nClOrdID {key}: {(steps[-1][0] - steps[0][0]) / 1e3:,.0f} us")
        print("\n".join(timeline(steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
