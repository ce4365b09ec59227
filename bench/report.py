"""The benchmark's output: the machine, the one table, the JSON and the latency histogram."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.latency import percentile


@dataclass
class Row:
    """One line of the table. ``key`` is stable (the smoke test and the JSON use it)."""

    key: str
    section: str
    label: str
    result: str = ""
    reference: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except (OSError, ValueError):
        pass
    try:
        import quickfix  # noqa: F401
        quickfix_version = "1.16 (Python bindings)"
    except ImportError:
        quickfix_version = "not installed"
    from actors.fix.native import COMPILED_MODULES, compiled_modules

    compiled = compiled_modules()
    core = ("compiled (mypyc)" if len(compiled) == len(COMPILED_MODULES)
            else "pure Python" if not compiled else "partly compiled: " + ", ".join(compiled))
    return {
        "nproc": os.cpu_count(), "cpu_model": model, "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(), "python": sys.version.split()[0], "quickfix": quickfix_version,
        "session_core": core, "loadavg_start": os.getloadavg(), "fdatasync_us_p50": fdatasync_us(),
        "cpu_idle": cpu_idle(),
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


@dataclass(frozen=True)
class CpuAccount:
    """CPU seconds of the whole machine and of this benchmark (itself and every child it has reaped).

    The load average cannot tell other work from the benchmark's own processes;
    this can: what the machine spent beyond the benchmark is other work, and
    ``steal`` is what the hypervisor gave to other machines.
    """

    machine_busy_s: float
    steal_s: float
    own_s: float

    @staticmethod
    def now() -> CpuAccount:
        busy = steal = 0.0
        try:
            # cpu  user nice system idle iowait irq softirq steal guest guest_nice (in clock ticks)
            ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            hz = os.sysconf("SC_CLK_TCK")
            busy = (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / hz
            steal = ticks[7] / hz if len(ticks) > 7 else 0.0
        except (OSError, ValueError, IndexError):
            pass
        t = os.times()
        return CpuAccount(busy, steal, t.user + t.system + t.children_user + t.children_system)

    def other_since(self, start: CpuAccount) -> tuple[float, float]:
        """(CPU seconds of other processes, CPU seconds stolen by the hypervisor) since ``start``."""
        other = (self.machine_busy_s - start.machine_busy_s) - (self.own_s - start.own_s)
        return max(0.0, other), self.steal_s - start.steal_s


def cpu_idle(sys_root: Path = Path("/sys")) -> str:
    """How an idle core waits for work: the cpuidle driver and, on a virtual machine's ``haltpoll``, how
    long it polls before it halts.

    Every hop of a routed order wakes a process that may sit on an idle core. A core that halts at once
    leaves to the hypervisor and must be woken through it: on the 2-core machine of 2026-11-30 the raw
    TCP floor was p50 69 us with no halt polling and 14 us with 200 us of it, the bus floor 413 against
    152 us (``docs/performance.md``). Two runs compare only with the same setting, so the report says it.
    """
    try:
        text = (sys_root / "devices/system/cpu/cpuidle/current_driver").read_text().strip() or "unknown"
    except OSError:
        return "unknown"
    try:
        poll_ns = int((sys_root / "module/haltpoll/parameters/guest_halt_poll_ns").read_text())
    except (OSError, ValueError):
        return text
    return f"{text}, halt polling {poll_ns / 1000:g} us" if poll_ns else f"{text}, no halt polling"


def fdatasync_us(n: int = 200) -> float:
    """Median cost of write(200 B) + fdatasync on the temporary directory's disk: what a durable save costs."""
    with tempfile.NamedTemporaryFile() as f:
        fd = f.fileno()
        samples = []
        for _ in range(n):
            start = time.perf_counter_ns()
            os.write(fd, b"x" * 200)
            os.fdatasync(fd)
            samples.append(time.perf_counter_ns() - start)
    return round(statistics.median(samples) / 1000, 1)


def format_table(rows: list[Row]) -> str:
    headers = ("", "measurement", "result", "reference", "ratio", "target", "")
    cells = [headers] + [(r.section, r.label, r.result, r.reference, r.ratio, r.target, r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    lines = []
    for n, cell in enumerate(cells):
        lines.append("  ".join(v.ljust(widths[i]) for i, v in enumerate(cell)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rows_json(rows: list[Row]) -> list[dict[str, str]]:
    return [asdict(r) for r in rows]


# ------------------------------------------------------------------ formatting helpers


def rate(v: float | None) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:,.0f}/s"


def us(v: float | None) -> str:
    if v is None or math.isnan(v):
        return "-"
    return f"{v / 1000:,.1f} ms" if v >= 10_000 else f"{v:,.0f} us"


def mb(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:,.1f} MB"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return "-"
    return f"{a / b:.2f}x"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "NOT MET")


# ------------------------------------------------------------------ histogram


def histogram(path: Path, series: dict[str, list[int]], title: str) -> str | None:
    """Latency histogram (log-spaced bins, microseconds) of each series; returns an error text or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"
    values = [v for vs in series.values() for v in vs]
    if not values:
        return "no latencies to plot"
    low = max(1.0, min(values) / 1000 * 0.9)
    high = max(values) / 1000 * 1.1
    bins = [low * (high / low) ** (i / 120) for i in range(121)]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for label, vs in series.items():
        if not vs:
            continue
        ordered = sorted(vs)
        p50, p99 = percentile(ordered, 50) / 1000, percentile(ordered, 99) / 1000
        ax.hist([v / 1000 for v in vs], bins=bins, histtype="step", linewidth=1.4,
                label=f"{label}: p50 {p50:,.0f} us, p99 {p99:,.0f} us (n={len(vs):,})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("round trip (microseconds, log scale)")
    ax.set_ylabel("orders (log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def markdown(rows: list[dict[str, str]]) -> str:
    """The table as Markdown (for docs/performance.md)."""
    lines = ["| | measurement | result | reference | ratio | target | |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r["section"], r["label"], r["result"], r["reference"], r["ratio"], r["target"], r["verdict"]]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.report results.json``: the table of a finished run as Markdown."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    p.add_argument("json", type=Path)
    data = json.loads(p.parse_args(argv).json.read_text())
    m = data["machine"]
    print(f"{data['mode']} run, {m['started_utc']} UTC, `{data['command']}`: {m['nproc']} x {m['cpu_model']}, "
          f"{m['ram_gb']} GB RAM, Linux {m['kernel']}, Python {m['python']}, "
          f"session core {m.get('session_core', 'pure Python')}, QuickFIX {m['quickfix']}; "
          f"load average {m['loadavg_start'][0]:.2f} at start; other processes "
          f"{m.get('other_cpu_s', 0.0) / max(1.0, m['seconds']):.0%} of a core during the run; "
          f"write+fdatasync {m['fdatasync_us_p50']:.0f} us; idle cores: {m.get('cpu_idle', 'unknown')}; "
          f"{m['seconds']:.0f} s\n")
    print(markdown(data["rows"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
