"""The targets of issue 15, each a ratio of figures from this one run, with met / NOT MET.

Machines differ, so every target is a ratio (or a budget) read from one
run: the routed tail against the routed median of the same phase, the routed
median against the floors measured minutes before it, the engine against
QuickFIX's in the same section. ``rows`` turns a run's results into one
table row per target; a target whose figures are missing (a section not
run, or failed) says so instead of a verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.report import Row, mb, rate, us, verdict

SECTION = "7 targets"
#: 1. No second mode: the tail within these multiples of the median of the same phase.
TAIL_P99_X = 3.0
TAIL_P999_X = 6.0
#: 2. Routed median at most this multiple of (fixmesh direct median + bus floor median).
ROUTED_P50_X = 2.0
#: 3. Broker + Handler + Driven CPU per 1,000 orders at 1,000/s, and the routed maximum (batch stores).
CPU_MS_PER_1000 = 600.0
MAX_RATE_PER_S = 6000.0
#: 4. Idle session actor resident memory, and 50 pairs (broker + every actor, proportional share).
IDLE_ACTOR_MB = 25.0
FIFTY_PAIRS_GB = 2.5
#: 5. Engine alone, one order per call, against QuickFIX's memory store.
ENGINE_X = 1.5

Results = dict[str, Any]


def _phase(section: Results | None, name: str) -> Results | None:
    if not isinstance(section, dict) or "error" in section:
        return None
    phase = section.get("phases", {}).get(name)
    return phase if isinstance(phase, dict) else None


def _row(key: str, label: str, target: str, measure: Callable[[], tuple[str, bool] | None], *,
         judged: bool = True) -> Row:
    """One target's row; ``judged`` False: a reference beside a target, the same ratio with no verdict."""
    row = Row(f"targets.{key}", SECTION, label, target=target)
    try:
        measured = measure()
    except (KeyError, TypeError, ZeroDivisionError):
        measured = None
    if measured is None:
        row.result = "not measured in this run"
    else:
        row.result, ok = measured
        row.verdict = verdict(ok) if judged else ""
    return row


def _tail(routed: Results | None, phase_name: str) -> tuple[str, bool] | None:
    phase = _phase(routed, phase_name)
    if phase is None:
        return None
    lat = phase["latency_us"]
    p99_x, p999_x = lat["p99"] / lat["p50"], lat["p99.9"] / lat["p50"]
    return (f"p99 {p99_x:.1f}x, p99.9 {p999_x:.1f}x the p50 ({us(lat['p50'])})",
            p99_x <= TAIL_P99_X and p999_x <= TAIL_P999_X)


def _median(routed: Results | None, fm_direct: Results | None, floor: Results | None,
            phase_name: str) -> tuple[str, bool] | None:
    """``routed``: the routed section's results, or the pass-through actors' (the same phases)."""
    phase, direct = _phase(routed, phase_name), _phase(fm_direct, "r1000")
    bus = (floor or {}).get("bus") if isinstance(floor, dict) and "error" not in floor else None
    if phase is None or direct is None or not bus:
        return None
    budget = ROUTED_P50_X * (direct["latency_us"]["p50"] + bus["p50"])
    p50 = phase["latency_us"]["p50"]
    return f"p50 {us(p50)} against {us(budget)} ({p50 / budget * ROUTED_P50_X:.1f}x the sum)", p50 <= budget


def _cpu(routed: Results | None) -> tuple[str, bool] | None:
    phase = _phase(routed, "r1000")
    if phase is None:
        return None
    cpu = phase["cpu_s"]
    per_k = 1000.0 / max(1, phase["received"])
    parts = [cpu[n] * per_k * 1000 for n in ("broker", "handler", "driven")]
    total = sum(parts)
    return f"{total:,.0f} ms ({' + '.join(f'{p:.0f}' for p in parts)})", total <= CPU_MS_PER_1000


def _max_rate(routed: Results | None) -> tuple[str, bool] | None:
    phase = _phase(routed, "max")
    if phase is None:
        return None
    return rate(phase["achieved_per_s"]), phase["achieved_per_s"] >= MAX_RATE_PER_S


def _idle_actor(routed: Results | None) -> tuple[str, bool] | None:
    if not isinstance(routed, dict) or "error" in routed:
        return None
    idle = routed["rss_idle_kb"]
    largest = max(idle["handler"], idle["driven"])
    return f"Handler {mb(idle['handler'])}, Driven {mb(idle['driven'])} RSS", largest / 1024 <= IDLE_ACTOR_MB


def _fifty_pairs(scale: Results | None) -> tuple[str, bool] | None:
    entry = (scale or {}).get("50") if isinstance(scale, dict) else None
    if not isinstance(entry, dict) or "error" in entry:
        return None
    pss = entry.get("pss_idle_kb")
    rss = entry["rss_idle_kb"]["total"]
    counted = pss if pss is not None else rss
    shown = f"{counted / 1024 / 1024:.2f} GB {'PSS' if pss is not None else 'RSS'}"
    if pss is not None:
        shown += f" ({rss / 1024 / 1024:.2f} GB summed RSS)"
    return shown, counted / 1024 / 1024 <= FIFTY_PAIRS_GB


def _fifty_pairs_tail(scale: Results | None) -> tuple[str, bool] | None:
    return _pairs_tail((scale or {}).get("50") if isinstance(scale, dict) else None)


def _fifty_pairs_shape_tail(shape: Results | None) -> tuple[str, bool] | None:
    """The pass-through actors' run (``bench.sections.scale_shape``), when it had 50 pairs."""
    return _pairs_tail(shape) if isinstance(shape, dict) and shape.get("pairs") == 50 else None


def _pairs_tail(entry: Results | None) -> tuple[str, bool] | None:
    if not isinstance(entry, dict) or "error" in entry:
        return None
    run = entry["phases"]["run"]
    lat = run["latency_us"]
    p99_x = lat["p99"] / lat["p50"]
    return (f"p99 {p99_x:.1f}x the p50 ({us(lat['p50'])}), {run['late_sends']:,} sends late",
            p99_x <= TAIL_P99_X and run["late_sends"] == 0)


def _engine(engine: Results | None) -> tuple[str, bool] | None:
    if not isinstance(engine, dict) or "error" in engine:
        return None
    fm, qf = engine["fm-memory-1"]["per_s"], engine["qf-memory"]["per_s"]
    return f"{fm / qf:.2f}x ({rate(fm)} against {rate(qf)})", fm / qf >= ENGINE_X


def rows(results: Results) -> list[Row]:
    routed, scale = results.get("routed"), results.get("scale")
    fm_direct, floor = results.get("fm_direct"), results.get("floor")
    # ``bench.relay``: the routed path's processes doing nothing but pass bytes; what the shape costs.
    shape = results.get("shape")
    return [
        _row("tail-200", "1. routed tail @200/s, batch stores", f"p99 <= {TAIL_P99_X:g}x p50, p99.9 <= "
             f"{TAIL_P999_X:g}x", lambda: _tail(routed, "r200")),
        _row("tail-1000", "1. routed tail @1,000/s, batch stores", f"p99 <= {TAIL_P99_X:g}x p50, p99.9 <= "
             f"{TAIL_P999_X:g}x", lambda: _tail(routed, "r1000")),
        _row("median-200", "2. routed p50 @200/s against fixmesh direct p50 + bus floor p50",
             f"<= {ROUTED_P50_X:g}x the sum", lambda: _median(routed, fm_direct, floor, "r200")),
        _row("median-1000", "2. routed p50 @1,000/s against fixmesh direct p50 + bus floor p50",
             f"<= {ROUTED_P50_X:g}x the sum", lambda: _median(routed, fm_direct, floor, "r1000")),
        _row("median-200-shape", "2. the same for pass-through actors @200/s (no session work, no store)",
             "reference", lambda: _median(shape, fm_direct, floor, "r200"), judged=False),
        _row("median-1000-shape", "2. the same for pass-through actors @1,000/s", "reference",
             lambda: _median(shape, fm_direct, floor, "r1000"), judged=False),
        _row("cpu", "3. CPU per 1,000 orders @1,000/s, broker + Handler + Driven",
             f"<= {CPU_MS_PER_1000:,.0f} ms", lambda: _cpu(routed)),
        _row("cpu-shape", "3. the same for pass-through actors (broker + relay + relay)", "reference",
             lambda: _cpu(shape), judged=False),
        _row("max", "3. routed maximum sustained rate, batch stores", f">= {MAX_RATE_PER_S:,.0f}/s",
             lambda: _max_rate(routed)),
        _row("max-shape", "3. the same for pass-through actors", "reference", lambda: _max_rate(shape), judged=False),
        _row("idle", "4. idle session actor, resident", f"<= {IDLE_ACTOR_MB:g} MB", lambda: _idle_actor(routed)),
        _row("fifty", "4. 50 pairs idle: broker + all actors", f"<= {FIFTY_PAIRS_GB:g} GB",
             lambda: _fifty_pairs(scale)),
        _row("fifty-tail", "4. 50 pairs @300/s in total", f"p99 <= {TAIL_P99_X:g}x p50, no late sends",
             lambda: _fifty_pairs_tail(scale)),
        _row("fifty-tail-shape", "4. the same for 50 pairs of pass-through actors", "reference",
             lambda: _fifty_pairs_shape_tail(results.get("scale_shape")), judged=False),
        _row("engine", "5. engine alone, 1 order/call, memory store, against QuickFIX's",
             f">= {ENGINE_X:g}x", lambda: _engine(results.get("engine"))),
    ]
