"""What a chaos run prints and writes: the figures of an ``Outcome`` (the JSON), and the table made from them."""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

from bench.chaos import plan
from bench.chaos.faults import KINDS

if TYPE_CHECKING:
    from bench.chaos.run import Outcome

KIND_LABELS = {"kill": "kill -9", "host": "host lost", "link": "link cut"}
WIDTH = 34


def percentile(values: list[float], share: float) -> float | None:
    """Nearest rank: the smallest value with at least ``share`` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _recovery(records: list[Any]) -> dict[str, Any]:
    """p50, p99 and max of the faults' recovery times, and the same of the faults alone (``bench.chaos.watch``)."""
    seconds = [r.recovery.seconds for r in records if r.recovery.seconds is not None]
    alone = [r.recovery.seconds for r in records if r.recovery.seconds is not None and not r.recovery.overlapped]
    return {"faults": len(records), "recovered": len(seconds), "unrecovered": len(records) - len(seconds),
            "p50_s": percentile(seconds, 0.50), "p99_s": percentile(seconds, 0.99),
            "max_s": max(seconds, default=None),
            "alone": {"faults": len(alone), "p50_s": percentile(alone, 0.50), "p99_s": percentile(alone, 0.99),
                      "max_s": max(alone, default=None)}}


def _target_group(kind: str, target: str) -> str:
    """handler3 -> handler: the table counts kills by kind of program, hosts and links by host."""
    return target.rstrip("0123456789") if kind == "kill" else target


def figures(outcome: Outcome) -> dict[str, Any]:
    """Everything the table shows, and the per-fault log, as plain data."""
    p = outcome.plan
    ledgers = outcome.ledgers
    by_kind = {kind: [r for r in outcome.faults if r.fault.kind == kind] for kind in KINDS}
    return {
        "ok": outcome.ok,
        "plan": {"pairs": p.pairs, "rate_per_user": p.rate, "duration_s": p.duration_s, "faults": p.faults,
                 "fault_interval_s": p.fault_interval_s, "seed": p.seed, "weights": p.weights, "tail_s": p.tail_s,
                 "settle_s": p.settle_s},
        "hosts": outcome.addresses,
        "seconds": {k: round(v, 1) for k, v in outcome.seconds.items()},
        "orders_sent": sum(ledger.sent for ledger in ledgers),
        "orders_at_venues": sum(ledger.at_venue for ledger in ledgers),
        "reports_at_users": sum(ledger.reports for ledger in ledgers),
        "faults": {"total": len(outcome.faults), "skipped_not_running": outcome.skipped,
                   "by_kind": {kind: len(records) for kind, records in by_kind.items()},
                   "by_target": {kind: dict(sorted(Counter(_target_group(kind, r.fault.target)
                                                           for r in records).items()))
                                 for kind, records in by_kind.items()}},
        "lost": {"orders": sum(len(ledger.orders_lost) for ledger in ledgers),
                 "reports": sum(len(ledger.reports_lost) for ledger in ledgers)},
        "duplicated": {"orders": sum(len(ledger.orders_duplicated) for ledger in ledgers),
                       "reports": sum(len(ledger.reports_duplicated) for ledger in ledgers)},
        "possdup_resends": {"orders": sum(ledger.orders_resent for ledger in ledgers),
                            "reports": sum(ledger.reports_resent for ledger in ledgers)},
        "unsent": sum(len(ledger.orders_unsent) for ledger in ledgers),
        "unexpected_reports": sum(len(ledger.reports_unexpected) for ledger in ledgers),
        "sequence_problems": [line for ledger in ledgers for line in ledger.sequence],
        "links_checked": len(outcome.links),
        "gaps": outcome.link_problems,
        "not_running": outcome.not_running,
        "running_at_end": sum(len(programs) for programs in plan.programs(p.pairs).values()) + 2 * p.pairs,
        "settled": outcome.settled,
        "recovery": {"all": _recovery(outcome.faults), **{kind: _recovery(by_kind[kind]) for kind in KINDS}},
        "pauses_s": {kind: {"mean": round(sum(r.fault.pause_s for r in by_kind[kind]) / len(by_kind[kind]), 2)}
                     for kind in ("host", "link") if by_kind[kind]},
        "fault_log": [{"n": r.number, "at_s": round(r.at_s, 2), "kind": r.fault.kind, "target": r.fault.target,
                       "host": r.fault.host, "pause_s": r.fault.pause_s, "pairs": sorted(r.recovery.first_order),
                       "recovery_s": None if r.recovery.seconds is None else round(r.recovery.seconds, 3),
                       "alone": not r.recovery.overlapped}
                      for r in outcome.faults],
        "problems": outcome.problems,
        "work": str(outcome.work),
    }


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _recovery_text(r: dict[str, Any]) -> str:
    if not r["faults"]:
        return "-"
    text = f"{_s(r['p50_s'])} / {_s(r['p99_s'])} / {_s(r['max_s'])} ({r['recovered']})"
    alone = r["alone"]
    if alone["faults"]:
        text += f"; alone {_s(alone['p50_s'])} / {_s(alone['p99_s'])} / {_s(alone['max_s'])} ({alone['faults']})"
    if r["unrecovered"]:
        text += f"; {r['unrecovered']} never recovered"
    return text


def table(f: dict[str, Any]) -> str:
    """The run's table, one figure a line."""
    p = f["plan"]
    faults = f["faults"]
    lines = [f"fixmesh chaos run: {p['pairs']} pairs over {len(f['hosts'])} namespace hosts, "
             f"{p['rate_per_user']:g} orders/s per user, seed {p['seed']}", ""]

    def row(label: str, value: str) -> None:
        lines.append(f"{label:<{WIDTH}}{value}")

    row("orders sent", f"{f['orders_sent']:,} ({f['orders_at_venues']:,} at the venues, "
                       f"{f['reports_at_users']:,} ExecutionReports at the users)")
    kinds = ", ".join(f"{KIND_LABELS[k]} {n}" for k, n in faults["by_kind"].items())
    row("faults", f"{faults['total']:,}: {kinds}")
    for kind in KINDS:
        targets = faults["by_target"][kind]
        if targets:
            pause = f["pauses_s"].get(kind)
            note = f" (down {pause['mean']:.1f} s on average)" if pause else ""
            row(f"  {KIND_LABELS[kind]}", ", ".join(f"{t} {n}" for t, n in targets.items()) + note)
    if faults["skipped_not_running"]:
        row("  draws skipped", f"{faults['skipped_not_running']} (the program was restarting)")
    lost, dup, resent = f["lost"], f["duplicated"], f["possdup_resends"]
    row("lost", f"{lost['orders'] + lost['reports']} (orders {lost['orders']}, ExecutionReports {lost['reports']})")
    row("duplicated", f"{dup['orders'] + dup['reports']} (orders {dup['orders']}, ExecutionReports "
                      f"{dup['reports']}); PossDup resends {resent['orders']} / {resent['reports']}")
    row("not sent by a user", f"{f['unsent']} orders, {f['unexpected_reports']} ExecutionReports")
    row("sequence numbers", f"{len(f['gaps'])} gaps, {len(f['sequence_problems'])} repeats "
                            f"({f['links_checked']} connection directions checked)")
    row("programs running at the end", "all " + str(f["running_at_end"]) if not f["not_running"]
        else f"{len(f['not_running'])} NOT running: {'; '.join(f['not_running'])}")
    row("time to recover p50 / p99 / max", _recovery_text(f["recovery"]["all"]))
    for kind in KINDS:
        if f["recovery"][kind]["faults"]:
            row(f"  {KIND_LABELS[kind]}", _recovery_text(f["recovery"][kind]))
    seconds = f["seconds"]
    row("run", ", ".join(f"{k} {v:,.0f} s" for k, v in seconds.items()))
    lines.append("")
    if f["ok"]:
        lines.append("OK: nothing lost, nothing duplicated, every program running")
    else:
        lines.append("FAILED:")
        lines += [f"  {problem}" for problem in f["problems"]]
        lines.append(f"  (logs, stores and received logs kept in {f['work']})")
    return "\n".join(lines)
