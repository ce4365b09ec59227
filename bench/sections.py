"""The benchmark's sections. Each starts its own processes on 127.0.0.1 and stops them all, by pid.

Every section returns its measurements as a plain dict (for the JSON);
``bench.__main__`` turns them into table rows. A section that fails raises
``BenchError`` (or anything else) and the caller records the error in its
rows: the other sections still run and the table is still printed whole.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors.fix.codec import encode
from actors.gateway.topology import load_topology
from actors.store import Durability, FileStore
from bench import busfloor, echo
from bench.latency import load, percentile, summary_us
from bench.ports import free_port, free_ports
from bench.procs import POLL_S, BenchError, Proc, Procs, wait_listening

HAVE_QUICKFIX = importlib.util.find_spec("quickfix") is not None


@dataclass(frozen=True)
class Sizes:
    """How much each section does, per mode."""

    engine_count: int
    engine_fsync_count: int
    engine_repeats: int
    floor_count: int
    warm: str
    paced_200_s: float
    paced_1000_s: float
    paced_5000_s: float
    closed_window: int
    closed_count: int
    recovery_sizes: tuple[int, ...]
    codec_messages: int
    #: Scale: how many Handler/Driven pairs in each run, the total paced rate shared by them all, and the
    #: seconds of warm-up and of measured phase at that rate. 300/s: one pair carries 4,000/s, and 50 pairs
    #: (100 actors on two cores, a fifth of a core busy with their heartbeats alone) still answer 300/s
    #: without a queue; the smoke mode keeps 100/s.
    scale_pairs: tuple[int, ...]
    scale_rate: float
    scale_warm_s: float
    scale_s: float
    skipped_recovery: tuple[int, ...] = field(default_factory=tuple)
    #: Scale over hosts (``bench.hosts_scale``): pairs spread over three namespace hosts, at ``scale_rate``.
    scale_hosts_pairs: int = 30


FULL = Sizes(engine_count=50_000, engine_fsync_count=5_000, engine_repeats=3, floor_count=20_000,
             warm="warm=paced:1000:1", paced_200_s=10.0, paced_1000_s=15.0, paced_5000_s=10.0,
             closed_window=100, closed_count=10_000, recovery_sizes=(0, 10_000, 100_000, 1_000_000),
             codec_messages=100_000, scale_pairs=(1, 10, 50), scale_rate=300.0, scale_warm_s=2.0, scale_s=10.0)
QUICK = Sizes(engine_count=10_000, engine_fsync_count=1_000, engine_repeats=1, floor_count=5_000,
              warm="warm=paced:1000:0.5", paced_200_s=2.0, paced_1000_s=5.0, paced_5000_s=2.0,
              closed_window=100, closed_count=5_000, recovery_sizes=(0, 10_000, 100_000), codec_messages=20_000,
              scale_pairs=(1, 10, 50), scale_rate=300.0, scale_warm_s=1.0, scale_s=3.0,
              skipped_recovery=(1_000_000,), scale_hosts_pairs=10)
SMOKE = Sizes(engine_count=1_000, engine_fsync_count=100, engine_repeats=1, floor_count=500,
              warm="warm=paced:500:0.2", paced_200_s=0.3, paced_1000_s=0.5, paced_5000_s=0.3,
              closed_window=20, closed_count=300, recovery_sizes=(0, 1_000), codec_messages=1_000,
              scale_pairs=(1, 2), scale_rate=100.0, scale_warm_s=0.2, scale_s=0.5,
              skipped_recovery=(10_000, 100_000, 1_000_000), scale_hosts_pairs=2)

#: Engine configurations: (key, engine, store, durability, orders per driver call).
ENGINE_RUNS = [
    ("fm-memory-1", "fixmesh", "memory", "batch", 1),
    ("fm-memory-100", "fixmesh", "memory", "batch", 100),
    ("fm-fsync_each-1", "fixmesh", "file", "fsync_each", 1),
    ("fm-fsync_each-100", "fixmesh", "file", "fsync_each", 100),
    ("fm-batch-1", "fixmesh", "file", "batch", 1),
    ("fm-batch-100", "fixmesh", "file", "batch", 100),
    ("fm-os_buffer-1", "fixmesh", "file", "os_buffer", 1),
    ("fm-os_buffer-100", "fixmesh", "file", "os_buffer", 100),
    ("qf-memory", "quickfix", "memory", "", 1),
    ("qf-file", "quickfix", "file", "", 1),
]


def dd_args(dictionary: Path | None) -> list[str]:
    return ["--data-dictionary", str(dictionary)] if dictionary else []


# ------------------------------------------------------------------ 0. codec


def codec(sizes: Sizes, dictionary: Path | None) -> dict[str, Any]:
    from bench import codec as codec_bench
    from bench import receive

    n = sizes.codec_messages
    data = codec_bench.stream(n)
    return {"messages": n, "fixmesh_parse_per_s": codec_bench.fixmesh_parse(data, n),
            "simplefix_parse_per_s": codec_bench.simplefix_parse(data, n),
            "fixmesh_encode_per_s": codec_bench.fixmesh_encode(n),
            "receive": receive.measure(n, str(dictionary) if dictionary else None)}


# ------------------------------------------------------------------ 1. session engine


def engine_once(work: Path, engine: str, store: str, durability: str, burst: int, count: int,
                dictionary: Path | None) -> float:
    """Messages per second the receiver saw, first to last, of ``count`` NewOrderSingle."""
    with Procs(work) as procs:
        timeout_s = 30.0 + count / 500.0
        if engine == "fixmesh":
            common = ["--store", store, "--durability", durability, "--count", str(count), *dd_args(dictionary)]
            receiver = procs.python("receiver", "bench.fm_engine", "--role", "receiver", "--port", "0",
                                    "--store-dir", str(work / "receiver-store"), *common)
            port = procs.wait_for(receiver, "listening", 30)["port"]
            procs.python("sender", "bench.fm_engine", "--role", "sender", "--port", str(port),
                         "--store-dir", str(work / "sender-store"), "--burst", str(burst), *common)
        else:
            port = free_port()
            common = ["--store", store, "--count", str(count), *dd_args(dictionary)]
            receiver = procs.python("receiver", "bench.qf_engine", "--role", "receiver", "--port", str(port),
                                    "--work-dir", str(work / "receiver"), *common)
            procs.wait_for(receiver, "listening", 30)
            wait_listening(port, 20, procs)
            procs.python("sender", "bench.qf_engine", "--role", "sender", "--port", str(port),
                         "--work-dir", str(work / "sender"), *common)
        done = procs.wait_for(receiver, "done", timeout_s)
    return float((count - 1) / max(1e-9, done["last"] - done["first"]))


def engine(work: Path, sizes: Sizes, dictionary: Path | None, log: Any) -> dict[str, Any]:
    """Every configuration once per round, rounds repeated: fixmesh and QuickFIX see the same machine
    conditions in each round, and the best round of each counts (other load only ever slows a run)."""
    runs: dict[str, list[float]] = {key: [] for key, *_ in ENGINE_RUNS}
    errors: dict[str, str] = {}
    for n in range(sizes.engine_repeats):
        for key, eng, store, durability, burst in ENGINE_RUNS:
            if key in errors:
                continue
            if eng == "quickfix" and not HAVE_QUICKFIX:
                errors[key] = "quickfix is not installed"
                continue
            count = sizes.engine_fsync_count if durability == "fsync_each" else sizes.engine_count
            try:
                runs[key].append(engine_once(work / f"{key}.{n}", eng, store, durability, burst, count, dictionary))
                log(f"  engine {key} (round {n + 1}): {runs[key][-1]:,.0f} msg/s")
            except Exception as exc:  # one configuration failing must not hide the others
                errors[key] = str(exc)
                log(f"  engine {key}: failed: {exc}")
    results: dict[str, Any] = {}
    for key, eng, store, durability, burst in ENGINE_RUNS:
        if key in errors:
            results[key] = {"error": errors[key].splitlines()[0], "detail": errors[key]}
            continue
        count = sizes.engine_fsync_count if durability == "fsync_each" else sizes.engine_count
        results[key] = {"engine": eng, "store": store, "durability": durability, "orders_per_call": burst,
                        "count": count, "runs_per_s": runs[key], "per_s": max(runs[key])}
    return results


# ------------------------------------------------------------------ 2. the floor


def floor(work: Path, sizes: Sizes, runs: int = 3) -> dict[str, Any]:
    """Best of ``runs`` (by median): where the scheduler puts the two processes (one core or two, an idle
    core waking up) moves a blocking round trip by tens of microseconds on a small VM.

    Then the same for ZeroMQ, direct and through the broker (``bench.busfloor``): what the bus
    costs a routed order before any FIX work."""
    results = []
    n = sizes.floor_count // runs
    warmup = min(1000, n)
    with Procs(work) as procs:
        server = procs.python("echo", "bench.echo", "--port", "0")
        port = procs.wait_for(server, "listening", 20)["port"]
        for _ in range(runs):
            results.append(summary_us(echo.round_trips(port, n, warmup=warmup)))
        direct = procs.python("zmq-echo", "bench.busfloor", "--direct", "tcp://127.0.0.1:0")
        endpoint = procs.wait_for(direct, "listening", 20)["endpoint"]
        zmq_direct = summary_us(busfloor.round_trips_direct(endpoint, n, warmup))
        ports = broker_ports()
        start_broker(procs, ports)
        router = f"tcp://127.0.0.1:{ports['router']}"
        bus_echo = procs.python("bus-echo", "bench.busfloor", "--broker", router, "--name", "bench-echo")
        procs.wait_for(bus_echo, "ready", 20)
        bus = summary_us(busfloor.round_trips_broker(router, "bench-echo", n, warmup))
    best = min(results, key=lambda r: r["p50"])
    return {"bytes": echo.MESSAGE_BYTES, **best, "runs": results, "zmq_direct": zmq_direct, "bus": bus}


# ------------------------------------------------------------------ 3 + 4. routed pair, memory


TOPOLOGY = """\
broker:
  router: tcp://127.0.0.1:{router}
  xsub: tcp://127.0.0.1:{xsub}
  xpub: tcp://127.0.0.1:{xpub}
defaults:
  heartbeat_interval: 30
  store: {{path: {store}, durability: {durability}}}
{dictionary}sessions:
{sessions}
"""

PAIR_SESSIONS = """\
  client: {{role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER, port: {handler_port}}}
  venue: {{role: driven, sender_comp_id: GATEWAY, target_comp_id: VENUE, port: {venue_port},
          reconnect_interval: 0.5, connect_on_start: true}}
pairs:
  - {{handler: client, driven: venue}}"""


@dataclass
class Gateway:
    """Broker, Handler and Driven as plain child processes (supervisord adds nothing to a benchmark)."""

    broker: Proc
    handler: Proc
    driven: Proc
    handler_port: int

    @property
    def actors(self) -> dict[str, Proc]:
        return {"broker": self.broker, "handler": self.handler, "driven": self.driven}


def broker_ports() -> dict[str, int]:
    """Three distinct free ports for a broker's ROUTER, XSUB and XPUB."""
    return dict(zip(("router", "xsub", "xpub"), free_ports(3), strict=True))


#: How many draws ``ports_apart`` makes before it gives up.
PORT_DRAWS = 20


def ports_apart(count: int) -> tuple[list[int], dict[str, int]]:
    """``count`` free ports for listeners and a broker's three, all different (each draw probes and
    releases its ports, so two draws can meet)."""
    for _ in range(PORT_DRAWS):
        listeners, ports = free_ports(count), broker_ports()
        if not set(listeners) & set(ports.values()):
            return listeners, ports
    raise BenchError(f"no {count} free ports apart from a broker's three in {PORT_DRAWS} draws")


def topology_text(store: Path, dictionary: Path | None, sessions: str, durability: str = "batch",
                  ports: dict[str, int] | None = None) -> tuple[str, dict[str, int]]:
    """The topology of ``sessions`` behind a broker on ``ports`` (free ones when None), and those ports."""
    ports = ports or broker_ports()
    text = TOPOLOGY.format(**ports, store=store, durability=durability, sessions=sessions,
                           dictionary=f"  data_dictionary: {dictionary}\n" if dictionary else "")
    return text, ports


def warm_topology_cache(topology: Path) -> None:
    """Read ``topology`` here once, with the reader the actors use, as ``fixmesh deploy render`` or
    ``deploy check`` does on a host before supervisord starts its programs: the actors then find its
    document in the cache folder (``actors.gateway.yaml_document``) and never load PyYAML."""
    load_topology(topology)


def compile_project() -> None:
    """Byte-compile the project's packages once, quietly, as an install does: with
    ``PYTHONDONTWRITEBYTECODE`` set, every actor would otherwise compile its modules from source at
    each start, and keep what that allocated (the actors' RSS rows would show it)."""
    import compileall

    root = Path(__file__).resolve().parent.parent
    for package in ("actors", "broker", "bench"):
        compileall.compile_dir(root / package, quiet=1)


def start_broker(procs: Procs, ports: dict[str, int], profile: Path | None = None) -> Proc:
    return procs.python("broker", "broker", "--router", f"tcp://127.0.0.1:{ports['router']}",
                        "--xsub", f"tcp://127.0.0.1:{ports['xsub']}", "--xpub", f"tcp://127.0.0.1:{ports['xpub']}",
                        profile=profile)


def start_gateway(procs: Procs, work: Path, venue_port: int, dictionary: Path | None,
                  durability: str = "batch", profile_dir: Path | None = None) -> Gateway:
    handler_port = free_port()
    sessions = PAIR_SESSIONS.format(handler_port=handler_port, venue_port=venue_port)
    text, ports = topology_text(work / "store", dictionary, sessions, durability)
    topology = work / "topology.yaml"
    topology.write_text(text)
    warm_topology_cache(topology)

    def prof(name: str) -> Path | None:
        return profile_dir / f"{name}.prof" if profile_dir else None

    broker = start_broker(procs, ports, prof("broker"))
    handler = procs.python("handler", "actors.gateway.session_actor", "--config", str(topology), "--session", "client",
                           profile=prof("handler"))
    driven = procs.python("driven", "actors.gateway.session_actor", "--config", str(topology), "--session", "venue",
                          profile=prof("driven"))
    return Gateway(broker, handler, driven, handler_port)


class Sampler:
    """Resident memory and CPU time of the actor processes, sampled while a client runs."""

    def __init__(self, procs: dict[str, Proc]) -> None:
        self.procs = procs
        self.peak_kb: dict[str, dict[str, int]] = {}
        #: Per phase, the highest sum over all the processes at one sampling instant (the sum of each
        #: process's own peak would overstate it: the peaks need not coincide).
        self.total_peak_kb: dict[str, int] = {}
        self.cpu: dict[str, dict[str, float]] = {}
        self._next = 0.0

    def snapshot(self) -> dict[str, int | None]:
        return {name: p.rss_kb() for name, p in self.procs.items()}

    def cpu_now(self) -> dict[str, float | None]:
        return {name: p.cpu_s() for name, p in self.procs.items()}

    def sample(self, phase: str) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + 0.1
        peaks = self.peak_kb.setdefault(phase, {})
        total = 0
        for name, kb in self.snapshot().items():
            if kb is not None:
                peaks[name] = max(peaks.get(name, 0), kb)
                total += kb
        self.total_peak_kb[phase] = max(self.total_peak_kb.get(phase, 0), total)


def run_client(procs: Procs, client: Proc, phases: list[str], sampler: Sampler | None, timeout_s: float) -> \
        dict[str, dict[str, Any]]:
    """Wait for each phase of a latency client; sample the actors meanwhile; the phase results by name."""
    results: dict[str, dict[str, Any]] = {}
    names = [p.partition("=")[0] for p in phases]
    cpu_before: dict[str, float | None] = {}
    for n, name in enumerate(names, 1):
        start = procs.wait_for(client, "phase_start", 60 if n == 1 else timeout_s, nth=n)
        if sampler is not None:
            cpu_before = sampler.cpu_now()

        def watch(phase: str = name) -> None:
            if sampler is not None:
                sampler.sample(phase)

        result = procs.wait_for(client, "phase", timeout_s, nth=n, watch=watch)
        result["started"] = start["t"]
        if sampler is not None:
            after = sampler.cpu_now()
            result["cpu_s"] = {k: _minus(after[k], v) for k, v in cpu_before.items()}
        values = load(result["file"])
        result["latency_us"] = summary_us(values)
        result["trend_us"] = trend_us(values)
        results[name] = result
    procs.wait_for(client, "finished", 30)
    client.expected_exit = True  # type: ignore[attr-defined]
    return results


def trend_us(values_ns: list[int]) -> dict[str, float]:
    """Median round trip of the first and of the last tenth of a phase's orders, in sending order:
    a queue that grows during a paced phase (an offered rate above capacity) shows as last >> first."""
    tenth = max(1, len(values_ns) // 10)
    first, last = sorted(values_ns[:tenth]), sorted(values_ns[-tenth:])
    return {"first_p50": percentile(first, 50) / 1000, "last_p50": percentile(last, 50) / 1000}


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def routed_phases(sizes: Sizes, *, r5000: bool = False) -> list[str]:
    """The latency client's phases of a routed path: warm-up, 200/s, 1,000/s (5,000/s), closed loop."""
    return [sizes.warm, f"r200=paced:200:{sizes.paced_200_s}", f"r1000=paced:1000:{sizes.paced_1000_s}",
            *([f"r5000=paced:5000:{sizes.paced_5000_s}"] if r5000 else []),
            f"max=closed:{sizes.closed_window}:{sizes.closed_count}"]


def routed(work: Path, sizes: Sizes, dictionary: Path | None, durability: str = "batch",
           profile_dir: Path | None = None, phases: list[str] | None = None) -> dict[str, Any]:
    """Client -> Handler -> broker -> Driven -> venue -> back, paced and closed loop; actor memory and CPU."""
    phases = phases or routed_phases(sizes, r5000=True)
    out = work / "latencies"
    out.mkdir(parents=True, exist_ok=True)
    with Procs(work) as procs:
        venue_port = free_port()
        venue = procs.python("venue", "bench.responder", "--port", str(venue_port), "--sender", "VENUE",
                             "--target", "GATEWAY", *dd_args(dictionary), world=True)
        procs.wait_for(venue, "listening", 30)
        gateway = start_gateway(procs, work, venue_port, dictionary, durability, profile_dir)
        procs.wait_for(venue, "logon", 60)  # the Driven is logged on to the venue
        wait_listening(gateway.handler_port, 30, procs)
        sampler = Sampler(gateway.actors)
        time.sleep(1.0)
        idle = sampler.snapshot()
        client = procs.python("client", "bench.rt_client", "--port", str(gateway.handler_port), "--sender", "TRADER",
                              "--target", "GATEWAY", "--out-dir", str(out), *dd_args(dictionary),
                              *[f"--phase={p}" for p in phases], world=True)
        timeout_s = 120.0 + sizes.closed_count / 200.0
        results = run_client(procs, client, phases, sampler, timeout_s)
        after = sampler.snapshot()
        if profile_dir is not None:
            for proc in (gateway.driven, gateway.handler, gateway.broker):
                procs.stop(proc, timeout_s=30)  # a clean exit writes the profile
    return {"durability": durability, "phases": results, "rss_idle_kb": idle, "rss_peak_kb": sampler.peak_kb,
            "rss_after_kb": after}


@dataclass
class Relays:
    """The broker and N pairs of pass-through actors (``bench.relay``) in front of one venue; pair i's
    client side listens on ``client_ports[i - 1]``. Keys as the gateway's actors (``handler{i}``,
    ``driven{i}``), so their CPU and memory group the same way."""

    actors: dict[str, Proc]
    client_ports: list[int]


def start_relays(procs: Procs, pairs: int, dictionary: Path | None) -> Relays:
    """A venue answering ``TRADER{i}`` as ``GATEWAY`` (the relays pass the client's bytes unchanged), the
    broker, and ``pairs`` relay pairs: the venue side's first (they connect when their client's Logon
    comes), then the client side's."""
    venue = procs.python("venue", "bench.responder", "--port", "0", "--sender", "GATEWAY",
                         *[arg for i in range(1, pairs + 1) for arg in ("--target", f"TRADER{i}")],
                         *dd_args(dictionary), world=True)
    venue_port = procs.wait_for(venue, "listening", 30)["port"]
    client_ports, ports = ports_apart(pairs)
    actors = {"broker": start_broker(procs, ports)}
    router = f"tcp://127.0.0.1:{ports['router']}"

    def relay(name: str, peer: str, *side: str) -> Proc:
        return procs.python(f"relay-{name}", "bench.relay", "--broker", router, "--name", name, "--peer", peer, *side)

    for i in range(1, pairs + 1):
        actors[f"driven{i}"] = relay(f"driven{i}", f"handler{i}", "--connect", str(venue_port))
    for i in range(1, pairs + 1):
        procs.wait_for(actors[f"driven{i}"], "ready", 30.0 + pairs)
    for i, port in enumerate(client_ports, 1):
        actors[f"handler{i}"] = relay(f"handler{i}", f"driven{i}", "--listen", str(port))
    for i in range(1, pairs + 1):
        procs.wait_for(actors[f"handler{i}"], "listening", 30.0 + pairs)
    return Relays(actors, client_ports)


def shape_floor(work: Path, sizes: Sizes, dictionary: Path | None) -> dict[str, Any]:
    """Client -> relay -> broker -> relay -> venue -> back (``bench.relay``): the routed pair's phases
    through actors that pass bytes and do no session work; CPU of broker and relays."""
    phases = routed_phases(sizes)
    out = work / "latencies"
    out.mkdir(parents=True, exist_ok=True)
    with Procs(work) as procs:
        relays = start_relays(procs, 1, dictionary)
        actors = relays.actors
        sampler = Sampler({"broker": actors["broker"], "handler": actors["handler1"], "driven": actors["driven1"]})
        client = procs.python("client", "bench.rt_client", "--port", str(relays.client_ports[0]),
                              "--sender", "TRADER1", "--target", "GATEWAY", "--out-dir", str(out),
                              *dd_args(dictionary), *[f"--phase={p}" for p in phases], world=True)
        results = run_client(procs, client, phases, sampler, 120.0 + sizes.closed_count / 200.0)
    return {"phases": results}


def scale_shape(work: Path, sizes: Sizes, dictionary: Path | None) -> dict[str, Any]:
    """The scale section's largest size through pass-through actors: N relay pairs at the same total
    rate, so that its tail reads beside the gateway's (what N pairs of processes cost, no session work)."""
    pairs = max(sizes.scale_pairs)
    out = work / "latencies"
    out.mkdir(parents=True, exist_ok=True)
    rate = sizes.scale_rate
    phases = [f"warm=paced:{rate:g}:{sizes.scale_warm_s:g}", f"run=paced:{rate:g}:{sizes.scale_s:g}"]
    with Procs(work) as procs:
        relays = start_relays(procs, pairs, dictionary)
        sampler = Sampler(relays.actors)
        client = procs.python("client", "bench.multi_client", "--target", "GATEWAY", "--out-dir", str(out),
                              *[arg for i, port in enumerate(relays.client_ports, 1)
                                for arg in ("--session", f"TRADER{i}@{port}")],
                              *dd_args(dictionary), *[f"--phase={p}" for p in phases], world=True)
        results = run_client(procs, client, phases, sampler, 60.0 + sizes.scale_s)
    for phase in results.values():
        phase["cpu_s"] = _groups(phase["cpu_s"])
    return {"pairs": pairs, "rate": rate, "phases": results}


def direct(work: Path, sizes: Sizes, dictionary: Path | None, engine: str) -> dict[str, Any]:
    """Client <-> venue without the gateway: QuickFIX on both sides, or fixmesh on both sides."""
    phases = [sizes.warm, f"r1000=paced:1000:{sizes.paced_1000_s}"]
    out = work / "latencies"
    out.mkdir(parents=True, exist_ok=True)
    with Procs(work) as procs:
        if engine == "quickfix":
            port = free_port()
            responder = procs.python("responder", "bench.qf_rt", "--role", "responder", "--port", str(port),
                                     "--work-dir", str(work / "responder"), *dd_args(dictionary), world=True)
            procs.wait_for(responder, "listening", 30)
            wait_listening(port, 20, procs)
            client = procs.python("client", "bench.qf_rt", "--role", "client", "--port", str(port),
                                  "--work-dir", str(work / "client"), "--out-dir", str(out), *dd_args(dictionary),
                                  *[f"--phase={p}" for p in phases], world=True)
        else:
            responder = procs.python("responder", "bench.responder", "--port", "0", "--sender", "VENUE",
                                     "--target", "TRADER", *dd_args(dictionary), world=True)
            port = procs.wait_for(responder, "listening", 30)["port"]
            client = procs.python("client", "bench.rt_client", "--port", str(port), "--sender", "TRADER",
                                  "--target", "VENUE", "--out-dir", str(out), *dd_args(dictionary),
                                  *[f"--phase={p}" for p in phases], world=True)
        results = run_client(procs, client, phases, None, 120.0)
    return {"phases": results}


# ------------------------------------------------------------------ 5. scale


#: Seconds the N pairs sit logged on and idle before the clients start: idle memory and idle CPU.
IDLE_S = 1.0

SCALE_PAIR = """\
  handler{i}: {{role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER{i}, port: {handler_port}}}
  driven{i}: {{role: driven, sender_comp_id: GW{i}, target_comp_id: VENUE, port: {venue_port},
             reconnect_interval: 0.5, connect_on_start: true}}"""


def scale_topology(pairs: int, handler_ports: list[int], venue_port: int) -> str:
    """The ``sessions:`` and ``pairs:`` of N pairs: Handler i serves TRADER{i} on its own port, Driven i
    is GW{i} at the one venue (each Driven needs its own identity there)."""
    sessions = "\n".join(SCALE_PAIR.format(i=i, handler_port=port, venue_port=venue_port)
                         for i, port in enumerate(handler_ports, 1))
    listed = "\n".join(f"  - {{handler: handler{i}, driven: driven{i}}}" for i in range(1, pairs + 1))
    return f"{sessions}\npairs:\n{listed}"


def wait_logons(procs: Procs, venue: Proc, sessions: int, timeout_s: float) -> None:
    """Until ``sessions`` distinct sessions of the venue have logged on (a reconnection counts once)."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = {e.get("session") for e in venue.events() if e.get("event") == "logon"}
        if len(seen) >= sessions:
            return
        procs.check_alive()
        if time.monotonic() > deadline:
            raise venue.failure(f"{venue.name}: {len(seen)} of {sessions} Driven sessions logged on "
                                f"after {timeout_s:g} s")
        time.sleep(POLL_S)


def _groups(values: dict[str, Any]) -> dict[str, Any]:
    """Per-actor figures (RSS or CPU) summed as broker, all Handlers, all Drivens and the total."""
    if any(v is None for v in values.values()):
        return {"total": None}
    out = {"broker": values.get("broker", 0),
           "handlers": sum(v for k, v in values.items() if k.startswith("handler")),
           "drivens": sum(v for k, v in values.items() if k.startswith("driven"))}
    out["total"] = out["broker"] + out["handlers"] + out["drivens"]
    return out


def scale_once(work: Path, pairs: int, sizes: Sizes, dictionary: Path | None) -> dict[str, Any]:
    """N Handler/Driven pairs behind one broker at a fixed total rate: round trip, actor memory and CPU.

    One venue process serves the N Driven sessions and one client process the
    N Handlers, so the processes added with each pair are the gateway's own.
    """
    out = work / "latencies"
    out.mkdir(parents=True, exist_ok=True)
    rate = sizes.scale_rate
    phases = [f"warm=paced:{rate:g}:{sizes.scale_warm_s:g}", f"run=paced:{rate:g}:{sizes.scale_s:g}"]
    with Procs(work) as procs:
        venue = procs.python("venue", "bench.responder", "--port", "0", "--sender", "VENUE",
                             *[arg for i in range(1, pairs + 1) for arg in ("--target", f"GW{i}")],
                             *dd_args(dictionary), world=True)
        venue_port = procs.wait_for(venue, "listening", 30)["port"]
        handler_ports, ports = ports_apart(pairs)
        text, _ = topology_text(work / "store", dictionary, scale_topology(pairs, handler_ports, venue_port),
                                ports=ports)
        topology = work / "topology.yaml"
        topology.write_text(text)
        started = time.monotonic()
        actors = {"broker": start_broker(procs, ports)}
        for i in range(1, pairs + 1):
            for role in ("handler", "driven"):
                name = f"{role}{i}"
                actors[name] = procs.python(name, "actors.gateway.session_actor", "--config", str(topology),
                                            "--session", name)
        ready_timeout_s = 30.0 + pairs  # about 0.3 s of CPU to start each actor, on two cores
        wait_logons(procs, venue, pairs, ready_timeout_s)
        for port in handler_ports:
            wait_listening(port, ready_timeout_s, procs)
        ready_s = time.monotonic() - started
        sampler = Sampler(actors)
        cpu_before, idle_started = sampler.cpu_now(), time.monotonic()
        time.sleep(IDLE_S)
        idle = _groups(sampler.snapshot())
        pss = [p.pss_kb() for p in actors.values()]
        pss_idle = None if any(v is None for v in pss) else sum(v for v in pss if v is not None)
        idle_cpu = _groups({k: _minus(v, cpu_before[k]) for k, v in sampler.cpu_now().items()})["total"]
        idle_s = time.monotonic() - idle_started
        client = procs.python("client", "bench.multi_client", "--target", "GATEWAY", "--out-dir", str(out),
                              *[arg for i, port in enumerate(handler_ports, 1)
                                for arg in ("--session", f"TRADER{i}@{port}")],
                              *dd_args(dictionary), *[f"--phase={p}" for p in phases], world=True)
        results = run_client(procs, client, phases, sampler, 60.0 + sizes.scale_s)
        # Stopped together, not one after the other: each actor's logout takes a few milliseconds.
        procs.stop_together([p for name, p in actors.items() if name != "broker"])
    for phase in results.values():
        phase["cpu_s"] = _groups(phase["cpu_s"])
    run = results["run"]
    per_k = 1000.0 / max(1, run["received"])
    return {"pairs": pairs, "rate": rate, "rate_per_pair": rate / pairs, "ready_s": ready_s,
            "phases": results, "rss_idle_kb": idle, "pss_idle_kb": pss_idle,
            "idle_cpu_pct": None if idle_cpu is None else 100.0 * idle_cpu / idle_s,
            "rss_load_peak_kb": max(sampler.total_peak_kb.values(), default=None),
            "cpu_ms_per_1000": {k: None if v is None else v * per_k * 1000 for k, v in run["cpu_s"].items()}}


def _num(value: float | None, unit: str, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value / scale:,.0f} {unit}"


def scale(work: Path, sizes: Sizes, dictionary: Path | None, log: Any) -> dict[str, Any]:
    """Each number of pairs in turn, on fresh processes: a size that fails leaves the others' figures."""
    results: dict[str, Any] = {}
    for pairs in sizes.scale_pairs:
        try:
            r = scale_once(work / f"scale-{pairs}", pairs, sizes, dictionary)
            results[str(pairs)] = r
            run = r["phases"]["run"]
            log(f"  scale {pairs} pair(s): ready in {r['ready_s']:.1f} s, {run['achieved_per_s']:,.0f}/s, "
                f"p50 {_num(run['latency_us']['p50'], 'us')}, p99 {_num(run['latency_us']['p99'], 'us')}, "
                f"RSS {_num(r['rss_idle_kb']['total'], 'MB', 1024)} idle, "
                f"{_num(r['rss_load_peak_kb'], 'MB', 1024)} under load, "
                f"CPU {_num(r['cpu_ms_per_1000']['total'], 'ms')} per 1,000 orders, "
                f"idle {_num(r['idle_cpu_pct'], '% of a core')}")
        except Exception as exc:
            results[str(pairs)] = {"error": str(exc).splitlines()[0], "detail": str(exc)}
            log(f"  scale {pairs} pair(s): failed: {exc}")
    return results


# ------------------------------------------------------------------ 6. recovery


#: A 200-byte NewOrderSingle: what each record of the prefilled stores holds.
def _stored_order(seq: int) -> bytes:
    header = [(34, b"%d" % seq), (49, b"GATEWAY"), (52, b"20260101-12:00:00.000"), (56, b"VENUE")]
    body = [(11, b"%012d" % seq), (21, b"1"), (38, b"100"), (40, b"2"), (44, b"101.25"), (54, b"1"),
            (55, b"MSFT"), (59, b"0"), (60, b"20260101-12:00:00.000"), (58, b"benchmark padding.....")]
    return encode(b"FIX.4.4", b"D", header, body)


def prefill(directory: Path, session_id: str, count: int) -> None:
    """A clean store of ``count`` outgoing messages (next sender seq count + 1, next target 1)."""
    template = _stored_order(1)
    store = FileStore(directory, session_id, now_ns=time.time_ns(), durability=Durability.OS_BUFFER)
    try:
        for seq in range(1, count + 1):
            # The records' contents are not read at recovery; one template keeps filling fast.
            store.save_outgoing(seq, template)
    finally:
        store.close()


REC_SESSION = """\
  rec: {{role: initiator, sender_comp_id: GATEWAY, target_comp_id: VENUE, port: {venue_port},
        reconnect_interval: 0.2, connect_on_start: true}}"""


def recovery_once(work: Path, count: int, dictionary: Path | None) -> dict[str, Any]:
    """Start a session actor on a store of ``count`` messages, kill -9 it once logged on, restart it:
    seconds from each start to the venue seeing it logged on (the Logon exchange completed)."""
    store_dir = work / "store"
    prefill_started = time.monotonic()
    prefill(store_dir, "rec", count)
    prefill_s = time.monotonic() - prefill_started
    store_bytes = sum(f.stat().st_size for f in store_dir.rglob("*") if f.is_file())
    with Procs(work) as procs:
        venue_port = free_port()
        venue = procs.python("venue", "bench.responder", "--port", str(venue_port), "--sender", "VENUE",
                             "--target", "GATEWAY", "--next-target", str(count + 1), *dd_args(dictionary))
        procs.wait_for(venue, "listening", 30)
        text, ports = topology_text(store_dir, dictionary, REC_SESSION.format(venue_port=venue_port))
        topology = work / "topology.yaml"
        topology.write_text(text)
        start_broker(procs, ports)
        times = []
        for attempt in (1, 2):
            started = time.monotonic()
            actor = procs.python("actor", "actors.gateway.session_actor", "--config", str(topology), "--session", "rec")
            logon = procs.wait_for(venue, "logon", 60, nth=attempt)
            times.append(logon["t"] - started)
            if attempt == 1:
                time.sleep(0.3)
                actor.expected_exit = True  # type: ignore[attr-defined]
                procs.kill(actor)
                procs.wait_for(venue, "disconnected", 20)
    shutil.rmtree(store_dir, ignore_errors=True)
    return {"messages": count, "store_bytes": store_bytes, "prefill_s": prefill_s, "cold_start_s": times[0],
            "restart_after_kill_s": times[1]}


def recovery(work: Path, sizes: Sizes, dictionary: Path | None, log: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for count in sizes.recovery_sizes:
        try:
            results[str(count)] = recovery_once(work / f"rec-{count}", count, dictionary)
            r = results[str(count)]
            log(f"  recovery {count:,}: cold {r['cold_start_s']:.3f} s, "
                f"after kill -9 {r['restart_after_kill_s']:.3f} s")
        except Exception as exc:
            results[str(count)] = {"error": str(exc).splitlines()[0], "detail": str(exc)}
            log(f"  recovery {count:,}: failed: {exc}")
    for count in sizes.skipped_recovery:
        results[str(count)] = {"skipped": True}
    return results

