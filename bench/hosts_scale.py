"""The scale section's row over several hosts: N Handler/Driven pairs spread over three namespace hosts.

    bus   198.18.N.1  the broker, and the client (``bench.multi_client``: the N traders in one process)
    edge  198.18.N.2  the Handlers handler1..N, listening on edge's address
    exch  198.18.N.3  the Drivens driven1..N, and the venue (``bench.responder``, one session per Driven, on
                      exch's loopback)

    client (bus) -> Handler (edge) -> broker (bus) -> Driven (exch) -> venue (exch) and back

Everything else is the one-host rows' (``bench.sections.scale_once``): the
same total paced rate shared by all pairs, the same warm-up and measured
phases, plain child processes (no supervisord), batch file stores, the same
figures (orders answered per second, round trip p50/p99, CPU of the broker,
the Handlers and the Drivens per 1,000 orders). Two differences a reader
should weigh: the bus between hosts has keys, as it must (CURVE: every
message encrypted, docs/bus.md), and every hop but the venue's crosses a
veth pair and a bridge instead of loopback. No coordinator runs (the Drivens
connect on start), as in the one-host rows.

Network namespaces need root and iproute2; without them the row says why
(``{"unavailable": reason}``) and the rest of the benchmark runs on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import sections
from bench.deployment import Deployment
from bench.netns import Hosts, NamespacesUnavailable
from bench.procs import Proc, Procs
from bench.report import Row, rate, ratio, us

HOSTS = ("bus", "edge", "exch")
HANDLER_PORT = 9800
VENUE_PORT = 9900

TOPOLOGY = """\
hosts:
  bus: {{address: {bus}}}
  edge: {{address: {edge}}}
  exch: {{address: {exch}}}
broker: {{runs_on: bus, router: 'tcp://{bus}:5570', xsub: 'tcp://{bus}:5571', xpub: 'tcp://{bus}:5572'}}
bus: {{keys_dir: keys}}
defaults:
  heartbeat_interval: 30
  store: {{path: {store}, durability: batch}}
{dictionary}sessions:
{sessions}
pairs:
{pairs}
programs:
  coordinator: {{runs_on: bus}}
"""

PAIR = """\
  handler{i}: {{role: handler, runs_on: edge, sender_comp_id: GATEWAY, target_comp_id: TRADER{i}, host: {edge},
              port: {handler_port}}}
  driven{i}: {{role: driven, runs_on: exch, sender_comp_id: GW{i}, target_comp_id: VENUE, host: 127.0.0.1,
             port: {venue_port}, reconnect_interval: 0.5, connect_on_start: true}}"""


def topology(pairs: int, addresses: dict[str, str], store: Path, dictionary: Path | None) -> str:
    sessions = "\n".join(PAIR.format(i=i, edge=addresses["edge"], handler_port=HANDLER_PORT + i,
                                     venue_port=VENUE_PORT) for i in range(1, pairs + 1))
    listed = "\n".join(f"  - {{handler: handler{i}, driven: driven{i}}}" for i in range(1, pairs + 1))
    return TOPOLOGY.format(**addresses, store=store, sessions=sessions, pairs=listed,
                           dictionary=f"  data_dictionary: {dictionary}\n" if dictionary else "")


def measure(work: Path, sizes: sections.Sizes, dictionary: Path | None, log: Callable[[str], None]) -> dict[str, Any]:
    """The row's figures, or ``{"unavailable": reason}`` when namespaces cannot be made here."""
    pairs = sizes.scale_hosts_pairs
    work.mkdir(parents=True, exist_ok=True)
    try:
        with Hosts(HOSTS, work / "hosts") as hosts:
            result = _run(work, hosts, pairs, sizes, dictionary)
    except NamespacesUnavailable as exc:
        log(f"  scale over hosts: not measured: {exc}")
        return {"unavailable": str(exc)}
    run = result["phases"]["run"]
    log(f"  scale {pairs} pair(s) over {len(HOSTS)} hosts: ready in {result['ready_s']:.1f} s, "
        f"{run['achieved_per_s']:,.0f}/s, p50 {us(run['latency_us']['p50'])}, p99 {us(run['latency_us']['p99'])}, "
        f"CPU {result['cpu_ms_per_1000']['total']:,.0f} ms per 1,000 orders")
    return result


def _run(work: Path, hosts: Hosts, pairs: int, sizes: sections.Sizes, dictionary: Path | None) -> dict[str, Any]:
    addresses = {name: hosts.address(name) for name in HOSTS}
    path = work / "topology.yaml"
    path.write_text(topology(pairs, addresses, work / "store", dictionary))
    Deployment.fixmesh(work, "keys", "create", "--config", str(path))  # a bus between hosts has keys
    out = work / "latencies"
    out.mkdir(parents=True, exist_ok=True)
    phases = [f"warm=paced:{sizes.scale_rate:g}:{sizes.scale_warm_s:g}",
              f"run=paced:{sizes.scale_rate:g}:{sizes.scale_s:g}"]
    python = sys.executable
    with Procs(work) as procs:
        def start(name: str, host: str, *args: str, world: bool = False) -> Proc:
            """``world``: the venue or the client, run at the world's priority (the namespaces share the cores)."""
            return procs.start(name, hosts.command(host, [python, "-m", *args]), world=world)

        venue = start("venue", "exch", "bench.responder", "--port", str(VENUE_PORT), "--sender", "VENUE",
                      *[arg for i in range(1, pairs + 1) for arg in ("--target", f"GW{i}")],
                      *sections.dd_args(dictionary), world=True)
        procs.wait_for(venue, "listening", 30)
        started = time.monotonic()
        actors = {"broker": start("broker", "bus", "actors.tools.broker_program", "--config", str(path))}
        for i in range(1, pairs + 1):
            for role, host in (("handler", "edge"), ("driven", "exch")):
                name = f"{role}{i}"
                actors[name] = start(name, host, "actors.gateway.session_actor", "--config", str(path),
                                     "--session", name)
        sections.wait_logons(procs, venue, pairs, 30.0 + pairs)
        sampler = sections.Sampler(actors)
        client = start("client", "bus", "bench.multi_client", "--host", addresses["edge"], "--target", "GATEWAY",
                       "--out-dir", str(out),
                       *[arg for i in range(1, pairs + 1) for arg in ("--session", f"TRADER{i}@{HANDLER_PORT + i}")],
                       *sections.dd_args(dictionary), *[f"--phase={p}" for p in phases], world=True)
        results = sections.run_client(procs, client, phases, sampler, 60.0 + sizes.scale_s)
        ready_s = results["warm"]["started"] - started
        procs.stop_together([p for name, p in actors.items() if name != "broker"])
    cpu = sections._groups(results["run"]["cpu_s"])
    per_k = 1000.0 / max(1, results["run"]["received"])
    return {"pairs": pairs, "hosts": addresses, "rate": sizes.scale_rate, "ready_s": ready_s, "phases": results,
            "cpu_ms_per_1000": {k: None if v is None else v * per_k * 1000 for k, v in cpu.items()}}


def rows(res: dict[str, Any] | None, one_pair: dict[str, Any] | None, sizes: sections.Sizes,
         note: Callable[[dict[str, Any], float | None], str] | None = None) -> list[Row]:
    """Round trip and CPU of the pairs over hosts, compared, as the other scale rows, with one pair on one host.

    ``note(phase, one pair's p50 in us)``: what the one-host rows say of a phase that was not sustained."""
    n = sizes.scale_hosts_pairs
    where = f"{n} pairs over {len(HOSTS)} hosts (broker | Handlers | Drivens + venue; bus with keys)"
    trip = Row("scale-hosts.round_trip", "5 scale",
               f"{where} @{sizes.scale_rate:,.0f}/s in total: answered, round trip")
    cpu = Row("scale-hosts.cpu", "5 scale", f"{where}: CPU per 1,000 orders (broker/Handlers/Drivens)")
    if res is None or "error" in res or "unavailable" in res:
        text = "not run" if res is None else f"error: {res['error']}" if "error" in res else \
            f"not measured: {res['unavailable']}"
        trip.result = cpu.result = text
        return [trip, cpu]
    run = res["phases"]["run"]
    lat = run["latency_us"]
    missing = run["sent"] - run["received"]
    base_p50 = one_pair["phases"]["run"]["latency_us"]["p50"] if one_pair and "phases" in one_pair else None
    trip.result = f"{rate(run['achieved_per_s'])}, p50 {us(lat['p50'])}, p99 {us(lat['p99'])}" + \
        (f" ({missing} unanswered)" if missing else "") + (note(run, base_p50) if note is not None else "")
    figures = res["cpu_ms_per_1000"]
    parts = " / ".join("-" if figures.get(k) is None else f"{figures[k]:,.0f}"
                       for k in ("broker", "handlers", "drivens"))
    total = "-" if figures.get("total") is None else f"{figures['total']:,.0f} ms"
    cpu.result = f"{total} ({parts} ms)"
    if one_pair is not None and "phases" in one_pair:
        trip.reference = "1 pair p99"
        trip.ratio = ratio(lat["p99"], one_pair["phases"]["run"]["latency_us"]["p99"])
        cpu.reference = "1 pair"
        cpu.ratio = ratio(figures.get("total"), one_pair["cpu_ms_per_1000"].get("total"))
    return [trip, cpu]
