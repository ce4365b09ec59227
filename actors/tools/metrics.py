"""``fixmesh metrics``: this host's Prometheus endpoint and the live status page, one HTTP port.

    fixmesh metrics --config deploy/topology.yaml [--listen 127.0.0.1:9570] [--sessions local|all]
                    [--key NAME] [--log-level INFO]

    GET /metrics       Prometheus text exposition (prometheus-client)
    GET /              the status page: every pair, both halves, refreshing itself every second
    GET /api/status    what the page shows, as JSON

One program per host, a plain subscriber of the event plane. Each session
actor publishes its counters once a second (``session.<name>.stats``,
``actors.gateway.stats``); the program keeps the latest of each
(``actors.tools.board``) and turns them into metrics when Prometheus scrapes.
Nothing is added to the message path, and the program can restart, or be
absent, without any session noticing.

Why one per host: Prometheus scrapes targets, and a host's target going
down (``up == 0``) is the host's trouble, not the whole gateway's; the CPU
and memory of every program of the topology on the host (broker,
coordinator, listener, sessions) are read from ``/proc``, which only a
process on the same host can read; and with ``--sessions local`` (the
default) the endpoint exports the sessions whose processes it finds on its
host, so two hosts never export the same series and a session that moves
host moves its metrics with it. ``--sessions all`` exports every session of
the topology (one endpoint for a whole one-host gateway). The status page
always shows every pair, whichever host its halves run on: it reads the
same event plane.

Read-only: the page has nothing that acts; operator actions stay with the
authenticated ``fixmesh ctl``. On a bus with keys the program reads events
with a subscriber's key (``--key``, or ``FIXMESH_BUS_KEY``; ``bus.subscribers``).
The HTTP port is plain and unauthenticated, loopback by default: expose it
only to the Prometheus server and the people who may see the sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import cast

import zmq
import zmq.asyncio
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from actors.fix.states import SessionState
from actors.fix.timefmt import NS_PER_S, Instant
from actors.gateway.bus import CurveKeys
from actors.gateway.topology import ConfigError, Topology, load_topology
from actors.gateway.vocabulary import HistogramBody, SessionStats
from actors.shell import clock
from actors.shell.process import configure_logging
from actors.tools.board import Board
from actors.tools.keys import KEY_ENV, key_argument
from actors.tools.monitor import check_event
from broker import protocol

log = logging.getLogger("fixmesh.metrics")

DEFAULT_LISTEN = "127.0.0.1:9570"
LOCAL = "local"
ALL = "all"
#: What the program reads off the event plane: the sessions' readings and events, actors up and down, pairs.
PREFIXES = (protocol.SESSION_TOPICS, "actor.", "pair.")
PAGE = "status_page.html"
#: The page runs its own small script and styles and talks only to this server.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "connect-src 'self'; img-src 'self' data:",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
_CLOCK_TICKS_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# ----------------------------------------------------------------- processes of the topology on this host


def identify(argv: Sequence[str], cwd: Path | None, topology_file: Path, router: str) -> tuple[str, str] | None:
    """``(program, name)`` of a process of this topology, from its command line; None for any other process.

    A fixmesh program names the topology (``--config``, resolved from the
    process's own directory); the broker that ``fixmesh broker`` replaced
    itself with (``python -m broker``) names the topology's ROUTER endpoint.
    ``program`` is the fixmesh command (``session``, ``coordinator``,
    ``listener``, ``metrics``, ``monitor``, ``broker``), ``name`` the session's
    name for a session and the program's otherwise.
    """
    args = list(argv)
    if "-m" in args and args.index("-m") + 1 < len(args) and args[args.index("-m") + 1] == "broker":
        return ("broker", "broker") if _option(args, "--router") == router else None
    config = _option(args, "--config")
    if config is None:
        return None
    path = Path(config)
    if not path.is_absolute():
        if cwd is None:
            return None
        path = cwd / path
    if os.path.realpath(path) != os.path.realpath(topology_file):
        return None
    program = _program(args)
    if program is None:
        return None
    if program == "session" or program.endswith("session_actor"):
        name = _option(args, "--session")
        return ("session", name) if name else None
    return program, program


def _option(args: list[str], option: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(option + "="):
            return arg[len(option) + 1:]
    return None


def _program(args: list[str]) -> str | None:
    """The fixmesh command of a command line: ``.../fixmesh CMD``, ``-m actors.cli CMD`` or ``-m MODULE``."""
    for i, arg in enumerate(args):
        if os.path.basename(arg) == "fixmesh" and i + 1 < len(args):
            return args[i + 1]
        if arg == "-m" and i + 1 < len(args):
            module = args[i + 1]
            if module == "actors.cli":
                return args[i + 2] if i + 2 < len(args) else None
            return module.rpartition(".")[2]
    return None


def cpu_seconds(stat: str) -> float:
    """User plus system CPU seconds from ``/proc/<pid>/stat`` (the fields after the command's parentheses)."""
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS_S


@dataclass(frozen=True, slots=True)
class ProcessReading:
    program: str
    name: str
    pid: int
    cpu_s: float
    rss_bytes: int


class ProcessScanner:
    """The processes of the topology on this host, found in ``/proc`` at each scrape.

    A command line is read once per process (a pid and its start time); what
    is read again at each scrape is its ``stat`` and ``statm``, two small files.
    """

    def __init__(self, topology: Topology, proc: Path = Path("/proc")) -> None:
        self.topology_file = topology.path
        self.router = topology.broker.router
        self.proc = proc
        self._known: dict[int, tuple[str, tuple[str, str] | None]] = {}
        #: Sessions whose process was ever found here: this host's sessions (``--sessions local``).
        self.local_sessions: set[str] = set()

    def scan(self) -> list[ProcessReading]:
        found: list[ProcessReading] = []
        alive: set[int] = set()
        try:
            entries = [e for e in os.listdir(self.proc) if e.isdigit()]
        except OSError:
            return found
        for entry in entries:
            pid = int(entry)
            base = self.proc / entry
            try:
                stat = (base / "stat").read_text()
                started = stat[stat.rindex(")") + 2:].split()[19]
                known = self._known.get(pid)
                if known is None or known[0] != started:
                    known = (started, self._identify(base))
                    self._known[pid] = known
                alive.add(pid)
                identity = known[1]
                if identity is None:
                    continue
                rss = int((base / "statm").read_text().split()[1]) * _PAGE_BYTES
                found.append(ProcessReading(identity[0], identity[1], pid, cpu_seconds(stat), rss))
                if identity[0] == "session":
                    self.local_sessions.add(identity[1])
            except (OSError, ValueError, IndexError):
                continue  # the process ended while being read, or is not ours to read
        for pid in set(self._known) - alive:
            del self._known[pid]
        return found

    def _identify(self, base: Path) -> tuple[str, str] | None:
        try:
            argv = [a.decode("utf-8", "replace") for a in (base / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            return None
        try:
            cwd: Path | None = Path(os.readlink(base / "cwd"))
        except OSError:
            cwd = None
        return identify(argv, cwd, self.topology_file, self.router)


# ----------------------------------------------------------------- the Prometheus collector

#: Every family the endpoint exports: name (as exposed), type, labels beyond ``session``, help.
FAMILIES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("fixmesh_session_up", "gauge", (), "1 while the session's actor publishes its counters, 0 when it stopped"),
    ("fixmesh_session_info", "gauge", ("role", "pair", "peer"), "Always 1: the session's role, pair and peer"),
    ("fixmesh_session_state", "gauge", ("state",), "1 for the session's current state, 0 for the others"),
    ("fixmesh_session_next_sender_seqnum", "gauge", (), "The next MsgSeqNum the session will send"),
    ("fixmesh_session_next_target_seqnum", "gauge", (), "The next MsgSeqNum the session expects to receive"),
    ("fixmesh_session_logged_on_timestamp_seconds", "gauge", (),
     "When the current logon began (Unix time); absent while not logged on"),
    ("fixmesh_session_last_received_timestamp_seconds", "gauge", (),
     "When bytes last came from the counterparty (Unix time, to the publishing interval)"),
    ("fixmesh_session_last_sent_timestamp_seconds", "gauge", (),
     "When a message last went to the counterparty (Unix time, to the publishing interval)"),
    ("fixmesh_messages_sent_total", "counter", ("msg_type",),
     "New messages sent, by MsgType (35), session messages included; resends not"),
    ("fixmesh_messages_received_total", "counter", ("msg_type",), "Application messages received, by MsgType (35)"),
    ("fixmesh_messages_resent_total", "counter", (), "Application messages sent again (PossDupFlag=Y) on request"),
    ("fixmesh_resend_requests_sent_total", "counter", (), "ResendRequests the session sent (gaps it asked to fill)"),
    ("fixmesh_resend_requests_answered_total", "counter", (), "ResendRequests from the counterparty answered"),
    ("fixmesh_gap_fills_sent_total", "counter", (), "SequenceReset-GapFill messages sent in answers"),
    ("fixmesh_rejects_total", "counter", ("direction", "reason"),
     "Rejects: sent by the session or received from the counterparty, by SessionRejectReason"),
    ("fixmesh_logons_total", "counter", (), "Logons completed (changes into CONNECTED)"),
    ("fixmesh_logouts_total", "counter", (), "Logged-on periods ended, by a Logout exchange or not"),
    ("fixmesh_logon_failures_total", "counter", (), "Logons refused for their credentials"),
    ("fixmesh_session_events_total", "counter", ("kind",), "Session events by kind (gap, resend, reject, ...)"),
    ("fixmesh_bus_queue_depth", "gauge", ("queue",),
     "Forwards queued: outbox (un-acked by the peer), backlog (waiting for outbox room), held (until the Logon)"),
    ("fixmesh_forward_latency_seconds", "histogram", (),
     "From the peer session's receipt of a message to this session's write of it (stored and synced)"),
    ("fixmesh_store_sync_seconds", "histogram", (), "One sync of the store's messages (per batch)"),
    ("fixmesh_stats_age_seconds", "gauge", (), "How old the session's latest counters are"),
    ("fixmesh_session_tls_expiry_timestamp_seconds", "gauge", (),
     "When the first of the session's TLS certificates (its own, the CAs it trusts) expires (Unix time); "
     "absent without TLS"),
)
PROCESS_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("fixmesh_process_cpu_seconds_total", "counter", "CPU time (user + system) of the topology's processes here"),
    ("fixmesh_process_resident_memory_bytes", "gauge", "Resident memory of the topology's processes here"),
)


class FixmeshCollector(Collector):
    """Reads the board and ``/proc`` when Prometheus scrapes; keeps nothing of its own."""

    def __init__(self, board: Board, scanner: ProcessScanner, sessions: str = LOCAL,
                 now: Callable[[], Instant] = clock.now) -> None:
        self.board = board
        self.scanner = scanner
        self.sessions = sessions
        self.now = now
        self.peers = {name: s.peer or "" for name, s in board.topology.sessions.items()}
        self.pairs = {}
        for pair in board.topology.pairs:
            self.pairs[pair.handler] = self.pairs[pair.driven] = pair.name

    def collect(self) -> Iterable[Metric]:
        now = self.now()
        processes = self.scanner.scan()
        yield from self._process_families(processes)
        names = [n for n in self.board.sessions if self.sessions == ALL or n in self.scanner.local_sessions]
        families = {name: _family(name, kind, ("session", *labels), text) for name, kind, labels, text in FAMILIES}
        for name in names:
            stats = self.board.fresh(name, now.mono_s)
            _add(families, "fixmesh_session_up", [name], 1.0 if stats is not None else 0.0)
            if stats is not None:
                self._session(families, name, stats, now)
        yield from families.values()
        malformed = CounterMetricFamily("fixmesh_metrics_stats_malformed", "Readings the program could not read")
        malformed.add_metric([], self.board.malformed)
        yield malformed

    def _session(self, f: dict[str, Metric], name: str, s: SessionStats, now: Instant) -> None:
        settings = self.board.topology.sessions[name]
        _add(f, "fixmesh_session_info", [name, settings.role, self.pairs.get(name, ""), self.peers[name]], 1)
        for state in SessionState:
            _add(f, "fixmesh_session_state", [name, state.value], 1.0 if s.state is state else 0.0)
        _add(f, "fixmesh_session_next_sender_seqnum", [name], s.next_sender)
        _add(f, "fixmesh_session_next_target_seqnum", [name], s.next_target)
        for family, stamp in (("fixmesh_session_logged_on_timestamp_seconds", s.logged_on_since_ns),
                              ("fixmesh_session_last_received_timestamp_seconds", s.last_received_ns),
                              ("fixmesh_session_last_sent_timestamp_seconds", s.last_sent_ns)):
            if stamp is not None:
                _add(f, family, [name], stamp / NS_PER_S)
        for msg_type, count in sorted(s.sent.items()):
            _add(f, "fixmesh_messages_sent_total", [name, msg_type], count)
        for msg_type, count in sorted(s.received.items()):
            _add(f, "fixmesh_messages_received_total", [name, msg_type], count)
        _add(f, "fixmesh_messages_resent_total", [name], s.resent)
        _add(f, "fixmesh_resend_requests_sent_total", [name], s.sent.get("2", 0))
        _add(f, "fixmesh_resend_requests_answered_total", [name], s.resend_requests_answered)
        _add(f, "fixmesh_gap_fills_sent_total", [name], s.gap_fills_sent)
        for direction, reasons in sorted(s.rejects.items()):
            for reason, count in sorted(reasons.items()):
                _add(f, "fixmesh_rejects_total", [name, direction, reason], count)
        _add(f, "fixmesh_logons_total", [name], s.logons)
        _add(f, "fixmesh_logouts_total", [name], s.logouts)
        _add(f, "fixmesh_logon_failures_total", [name], s.logon_failures)
        for kind, count in sorted(s.events.items()):
            _add(f, "fixmesh_session_events_total", [name, kind], count)
        for queue, depth in sorted(s.queues.items()):
            _add(f, "fixmesh_bus_queue_depth", [name, queue], depth)
        _histogram(f["fixmesh_forward_latency_seconds"], name, s.forward_latency)
        _histogram(f["fixmesh_store_sync_seconds"], name, s.store_sync)
        _add(f, "fixmesh_stats_age_seconds", [name], max(0.0, (now.utc_ns - s.time_ns) / NS_PER_S))
        if s.tls_expires_s is not None:
            _add(f, "fixmesh_session_tls_expiry_timestamp_seconds", [name], s.tls_expires_s)

    def _process_families(self, processes: list[ProcessReading]) -> Iterable[Metric]:
        cpu = CounterMetricFamily(PROCESS_FAMILIES[0][0], PROCESS_FAMILIES[0][2], labels=["program", "name"])
        rss = GaugeMetricFamily(PROCESS_FAMILIES[1][0], PROCESS_FAMILIES[1][2], labels=["program", "name"])
        # Two processes of one program and name (two monitors) are summed: labels stay stable across restarts.
        totals: dict[tuple[str, str], tuple[float, int]] = {}
        for p in processes:
            cpu_s, rss_bytes = totals.get((p.program, p.name), (0.0, 0))
            totals[(p.program, p.name)] = (cpu_s + p.cpu_s, rss_bytes + p.rss_bytes)
        for (program, name), (cpu_s, rss_bytes) in sorted(totals.items()):
            cpu.add_metric([program, name], cpu_s)
            rss.add_metric([program, name], rss_bytes)
        return cpu, rss


def _family(name: str, kind: str, labels: Sequence[str], text: str) -> Metric:
    if kind == "counter":
        return CounterMetricFamily(name, text, labels=list(labels))
    if kind == "histogram":
        return HistogramMetricFamily(name, text, labels=list(labels))
    return GaugeMetricFamily(name, text, labels=list(labels))


def _add(families: dict[str, Metric], family: str, labels: list[str], value: float) -> None:
    metric = families[family]
    assert isinstance(metric, CounterMetricFamily | GaugeMetricFamily)
    metric.add_metric(labels, value)


def _histogram(metric: Metric, session: str, h: HistogramBody) -> None:
    assert isinstance(metric, HistogramMetricFamily)
    buckets = [("+Inf" if math.isinf(bound) else repr(bound), float(count)) for bound, count in h.cumulative()]
    metric.add_metric([session], buckets, h.sum)


# ----------------------------------------------------------------- the HTTP server and the bus


def make_app(board: Board, registry: CollectorRegistry, now: Callable[[], Instant] = clock.now) -> web.Application:
    """``/``, ``/api/status`` and ``/metrics``; GET only (aiohttp answers anything else 405)."""
    page = resources.files("actors.tools").joinpath(PAGE).read_bytes()

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8", headers=_PAGE_HEADERS)

    async def status(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(board.page(now())), content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/api/status", status)
    app.router.add_get("/metrics", metrics)
    return app


async def pump(sub: zmq.asyncio.Socket, board: Board, now: Callable[[], Instant] = clock.now) -> None:
    """Events off the bus onto the board, for as long as the program runs."""
    skipped = 0
    while True:
        frames = await sub.recv_multipart()
        try:
            topic, body = check_event(frames)
        except protocol.ProtocolError as exc:
            skipped += 1
            if skipped == 1 or skipped % 1000 == 0:
                log.warning("malformed event skipped (%d so far): %s", skipped, exc)
            continue
        board.receive(topic, body, now().mono_s)


@dataclass(frozen=True, slots=True)
class Options:
    topology: Topology
    host: str
    port: int
    sessions: str
    curve: CurveKeys | None


def serve(options: Options) -> int:
    """Subscribe, serve until SIGTERM or SIGINT; 0 then, 1 when the port cannot be bound."""
    topology = options.topology
    board = Board(topology)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FixmeshCollector(board, ProcessScanner(topology), options.sessions))
    app = make_app(board, registry)

    async def events(app: web.Application) -> AsyncIterator[None]:
        context = zmq.asyncio.Context()
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 100_000)
        if options.curve is not None:
            options.curve.apply(cast("zmq.Socket[bytes]", sub))
        sub.connect(topology.broker.xpub)
        for prefix in PREFIXES:
            sub.subscribe(prefix)
        task = asyncio.create_task(pump(sub, board))
        log.info("metrics: reading %s; starting http://%s:%d/ (sessions: %s)", topology.broker.xpub, options.host,
                 options.port, options.sessions)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sub.close(linger=0)
        context.term()

    app.cleanup_ctx.append(events)
    try:
        web.run_app(app, host=options.host, port=options.port, print=None, access_log=None,
                    handle_signals=True, shutdown_timeout=2.0)
    except OSError as exc:
        log.error("metrics: cannot listen on %s:%d: %s", options.host, options.port, exc.strerror or exc)
        return 1
    return 0


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. {DEFAULT_LISTEN}; got {text!r}")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fixmesh metrics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the topology YAML file")
    parser.add_argument("--listen", type=parse_listen, default=DEFAULT_LISTEN,
                        help=f"HOST:PORT of the HTTP server (default {DEFAULT_LISTEN})")
    parser.add_argument("--sessions", choices=[LOCAL, ALL], default=LOCAL,
                        help="export the sessions running on this host (default) or every session of the topology")
    parser.add_argument("--key", default=os.environ.get(KEY_ENV),
                        help="on a bus with keys: a key that may read events (bus.subscribers or bus.operators)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        topology = load_topology(args.config)
        curve = None
        if topology.bus is not None:
            if not args.key:
                raise ConfigError(f"{topology.path}: bus: this bus has keys, so reading its events needs a key with "
                                  f"the right to subscribe: pass --key NAME or set {KEY_ENV} (bus.subscribers)")
            principal, secret_file = key_argument(args.key)
            curve = topology.bus_keys(principal, secret_file)
    except ConfigError as exc:
        print(f"fixmesh metrics: {exc}", file=sys.stderr)
        return 2
    host, port = args.listen
    return serve(Options(topology, host, port, args.sessions, curve))


if __name__ == "__main__":
    sys.exit(main())
