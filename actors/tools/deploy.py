"""``fixmesh deploy``: a supervisord configuration per host of a topology, and a check of each host.

    fixmesh deploy render --config T --host NAME [--out FILE]   one host's supervisord configuration
    fixmesh deploy render --config T --all --out DIR            DIR/<host>.conf for every host
    fixmesh deploy check --config T [--host NAME]               the topology, the bus endpoints, the keys
    fixmesh deploy reload --conf FILE [--dry-run]                 apply an edited topology, restarting only what
                                                                changed (actors/tools/reload.py)
    fixmesh deploy stop --conf FILE [--keep-supervisord]          stop a host's programs, a priority at a time,
                                                                each priority's at once (actors/tools/host_stop.py)

The topology places every program on a host (``hosts:``, ``runs_on``,
``programs:``; docs/deploy.md). ``render`` turns one host's share into the
supervisord configuration that runs it: one ``[program:*]`` per program,
each started through ``fixmesh <command>`` (never a module path), the broker
first, the sessions with time for their Logout when stopped, every program
restarted when it exits (crash-only). The rendering is a pure function of
the topology and a few options (``render``); the repository's
``supervisord.conf`` is ``render --config deploy/topology.yaml --host local``
and a test keeps the two equal.

Options of ``render``: ``--root`` is the folder programs run in on the host
(the topology file, ``var/``), by default ``%(ENV_FIXMESH_ROOT)s``, which
supervisord reads from its environment; the ``--config`` path is written
into the commands as given, so a relative one is relative to that folder.
``--fixmesh`` is the command's path (default ``fixmesh``, found on PATH),
``--user`` the user supervisord runs the programs as. supervisorctl's
password is ``FIXMESH_SUPERVISOR_PASSWORD`` from supervisord's environment
(and from supervisorctl's). Every program gets ``FIXMESH_CACHE_DIR`` set to
``<root>/var/cache`` (what it derives from the data dictionaries and the
topology, kept between starts): a program's user may have no writable home.

``check`` loads the topology (every mistake is one line naming the file, the
key and the fix), lists each host's programs and connects to each bus
endpoint once, with a timeout; with ``--host NAME`` (run it on that host) it
also checks that this machine has the host's address and that the host has
the keys its programs need. A broker that does not answer is a problem, the
backup of a pair too: while one broker of a pair is away the other is a
single point of failure, which the pair is there to prevent (docs/deploy.md).
Exit status: 0 all good, 1 a problem (each one printed: what, on which host,
what it means, what to look at), 2 a topology that cannot be used.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import shlex
import socket
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from actors.fix.config import Role
from actors.gateway.topology import (
    COORDINATOR_KEY,
    KEYED_PROGRAMS,
    ConfigError,
    Topology,
    endpoint_address,
    load_topology,
)
from actors.shell.plain_cache import CACHE_DIR_ENV
from actors.tools import host_check
from actors.tools.settings_digest import DIGEST_ENV, program_digest

#: The folder programs run in, unless ``--root`` says otherwise: supervisord expands it from its environment.
DEFAULT_ROOT = "%(ENV_FIXMESH_ROOT)s"
#: supervisorctl's user and where its password comes from (supervisord expands it from its environment).
SUPERVISOR_USER = "fixmesh"
PASSWORD_ENV = "FIXMESH_SUPERVISOR_PASSWORD"
#: supervisord's start order: the broker first, sessions before the programs that watch them.
PRIORITY = {"broker": 10, "listener": 15, "session": 20, "coordinator": 25, "monitor": 30, "metrics": 30,
            "other": 40}
#: Seconds supervisord waits after SIGTERM before SIGKILL: a session logs out first (``logout_timeout``).
STOP_WAIT_S = 10
DEFAULT_CHECK_TIMEOUT_S = 2.0
#: The programs' cache folder (``actors.shell.plain_cache``), under the folder they run in, beside the stores
#: of the example topology (``var/``): a program's user may have no writable home.
CACHE_DIR = "var/cache"
COMMENT_WIDTH = 98


@dataclass(frozen=True, slots=True)
class Program:
    """One ``[program:NAME]`` of a host: what it runs (the words after ``fixmesh``) and why."""

    name: str
    args: tuple[str, ...]
    priority: int
    about: str
    stop_wait_s: int = STOP_WAIT_S
    #: The key it joins the bus with (bus with keys), for ``check``; None: no key of the topology's.
    bus_key: str | None = None


@dataclass(frozen=True, slots=True)
class RenderOptions:
    #: The topology file as the programs name it (relative to ``root``, or absolute).
    config: str
    root: str = DEFAULT_ROOT
    fixmesh: str = "fixmesh"
    user: str | None = None


def programs_on(topology: Topology, host: str, config: str) -> list[Program]:
    """Every program the topology places on ``host``, in the order a reader expects them (broker first)."""
    topology.host(host)  # an unknown host is a ConfigError naming the known ones
    with_config = ("--config", config)

    def keyed(key: str | None) -> str | None:
        return key if topology.bus is not None else None

    out: list[Program] = []
    broker = topology.broker
    if broker.runs_on == host:
        out.append(Program("broker", ("broker", *with_config), PRIORITY["broker"],
                           f"The broker: business plane (ROUTER {broker.router}) and event plane (XSUB {broker.xsub}, "
                           f"XPUB {broker.xpub}).", bus_key=keyed(_broker_key(topology))))
    backup = broker.backup  # a second broker (Binary Star), when the topology has one
    if backup is not None and backup.runs_on == host:
        out.append(Program("broker-backup", ("broker", *with_config, "--backup"), PRIORITY["broker"],
                           f"The backup broker: takes the bus over when the broker on {broker.runs_on} is lost "
                           "(docs/deploy.md).", bus_key=keyed(_broker_key(topology))))
    for name, s in topology.sessions.items():
        if s.runs_on != host:
            continue
        c = s.config
        if c.role is Role.ACCEPTOR:
            who = ("Handler: the trader logs on here" if s.role == "handler"
                   else "Acceptor: its counterparty logs on here")
            about = f"{who} ({s.host}:{s.port}, {c.sender_comp_id} <- {c.target_comp_id})."
        else:
            who = "Driven: connects to the venue" if s.role == "driven" else "Initiator: connects to its counterparty"
            about = f"{who} ({s.host}:{s.port}, {c.sender_comp_id} -> {c.target_comp_id})."
        if s.peer is not None:
            about = f"{about[:-1]}; paired with {s.peer}."
        stop_wait_s = max(STOP_WAIT_S, math.ceil(c.logout_timeout_s) + 5)
        out.append(Program(name, ("session", *with_config, "--session", name), PRIORITY["session"], about,
                           stop_wait_s, bus_key=keyed(name)))
    known = {
        "listener": ("The listener: owns the ports several sessions share and hands each connection to its session "
                     "(docs/resilience.md)."),
        "coordinator": ("The coordinator: connects the Driven when the trader logs on, logs out the other half "
                        "when either goes away (docs/coordinator.md)."),
        "monitor": "The monitor: every event on the bus, one line each.",
        "metrics": "Metrics: this host's Prometheus endpoint (/metrics) and the status page (/).",
    }
    placed = [p for p in topology.programs.values() if host in p.runs_on]
    order = {name: i for i, name in enumerate(known)}
    placed.sort(key=lambda p: order.get(p.name, len(order)))  # stable: the others keep the topology's order
    for p in placed:
        kind = p.name if p.name in known else "other"
        bus_key: str | None = None
        if p.command is not None:
            args = tuple(shlex.split(p.command))
        elif p.name in KEYED_PROGRAMS:
            args = (p.name, *with_config, *(("--key", p.key) if p.key is not None else ()))
            bus_key = p.key
        else:
            args = (p.name, *with_config)
            bus_key = COORDINATOR_KEY if p.name == "coordinator" else None
        about = p.about or known.get(p.name) or f"fixmesh {' '.join(args)} (programs.{p.name} in the topology)."
        priority = p.priority if p.priority is not None else PRIORITY[kind]
        out.append(Program(p.name, args, priority, about, bus_key=keyed(bus_key)))
    return out


def _broker_key(topology: Topology) -> str | None:
    return topology.bus.broker_key if topology.bus is not None else None


def render(topology: Topology, host: str, options: RenderOptions) -> str:
    """The supervisord configuration of ``host``: text, the same for the same topology and options."""
    programs = programs_on(topology, host, options.config)
    address = topology.host(host).address
    root = options.root
    command = f"fixmesh deploy render --config {options.config} --host {host}"
    if root != DEFAULT_ROOT:
        command += f" --root {root}"
    if options.fixmesh != "fixmesh":
        command += f" --fixmesh {options.fixmesh}"
    if options.user is not None:
        command += f" --user {options.user}"
    names = ", ".join(p.name for p in programs) or "nothing yet"
    lines = [
        f"; Host {host} ({address}) of {options.config}: {names}.",
        f"; Written by `{command}`:",
        "; change the topology and render again rather than editing this file (docs/deploy.md).",
        f"; supervisord takes FIXMESH_ROOT (the folder the programs run in) and {PASSWORD_ENV}",
        "; (supervisorctl's password) from its environment; `fixmesh demo` sets both for the demo.",
        "; Programs start through `fixmesh <command>`, never a module path, and are crash-only:",
        "; supervisord restarts one that exits and it resumes from its store.",
        f"; {DIGEST_ENV} sums up what a program reads from the topology: `fixmesh deploy reload`",
        "; restarts only the programs whose digest changed (docs/operations.md).",
        "",
        "[supervisord]",
        f"logfile={root}/var/log/supervisord.log",
        f"pidfile={root}/var/supervisord.pid",
        f"childlogdir={root}/var/log",
        "nodaemon=true",
    ]
    if options.user is not None:
        lines.append(f"user={_escape(options.user)}")
    lines += [
        "",
        "[unix_http_server]",
        f"file={root}/var/supervisor.sock",
        "chmod=0700",
        f"username={SUPERVISOR_USER}",
        f"password=%(ENV_{PASSWORD_ENV})s",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{root}/var/supervisor.sock",
        f"username={SUPERVISOR_USER}",
        f"password=%(ENV_{PASSWORD_ENV})s",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    ]
    for p in programs:
        words = " ".join(_escape(shlex.quote(word)) for word in (options.fixmesh, *p.args))
        lines += ["", *(f"; {line}" for line in textwrap.wrap(p.about, COMMENT_WIDTH))]
        lines += [
            f"[program:{p.name}]",
            f"command={words}",
            f"directory={root}",
            f"priority={p.priority}",
            "autorestart=true",
            "startsecs=1",
            f"stopwaitsecs={p.stop_wait_s}",
            "redirect_stderr=true",
            f"stdout_logfile={root}/var/log/{p.name}.log",
            f'environment={DIGEST_ENV}="{program_digest(topology, p.name)}",{CACHE_DIR_ENV}="{root}/{CACHE_DIR}"',
        ]
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    """supervisord expands ``%(name)s`` in its values: a literal ``%`` is written ``%%``."""
    return text.replace("%", "%%")


# --------------------------------------------------------------------- check


def probe(endpoint: str, timeout_s: float, now: Callable[[], float] = time.monotonic) -> tuple[bool, str]:
    """Connect once to a bus endpoint (TCP, or the Unix socket of ``ipc://``): reachable?, and what happened."""
    if endpoint.startswith("inproc://"):
        return True, "in-process: nothing to connect to"
    started = now()
    try:
        if endpoint.startswith("ipc://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
                unix.settimeout(timeout_s)
                unix.connect(endpoint[len("ipc://"):])
        else:
            parsed = endpoint_address(endpoint)
            if parsed is None:
                return False, "not an endpoint to connect to (expected tcp://ADDRESS:PORT)"
            with socket.create_connection(parsed, timeout=timeout_s):
                pass
    except TimeoutError:
        return False, f"no answer within {timeout_s:g} s"
    except OSError as exc:
        return False, exc.strerror or str(exc)
    return True, f"reachable ({(now() - started) * 1000:.1f} ms)"


def has_address(address: str) -> bool:
    """True when this machine (this network namespace) has ``address`` on one of its interfaces."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


def check(topology: Topology, host: str | None, timeout_s: float, config: str,
          out: Callable[[str], None] = print) -> int:
    """Print what each host runs, probe the bus endpoints and, for ``host``, its address, keys, session stores and
    certificates (``host_check``); 1 on a problem, 0 with warnings only."""
    problems: list[str] = []
    warnings: list[str] = []
    placed = {name: programs_on(topology, name, config) for name in topology.hosts}
    count = sum(len(programs) for programs in placed.values())
    out(f"{topology.path}: valid: {len(topology.hosts)} host(s), {count} program(s)")
    for name, programs in placed.items():
        if host is not None and name != host:
            continue
        h = topology.hosts[name]
        out(f"host {name} ({h.address}): {', '.join(p.name for p in programs) or 'nothing placed here'}")
    if host is not None:
        address = topology.host(host).address
        if has_address(address):
            out(f"  this machine has {address}")
        else:
            problems.append(f"this machine has no address {address}: run the check on host {host}, or correct "
                            f"hosts.{host}.address")
    problems += _check_brokers(topology, host, timeout_s, out)
    if host is not None and topology.bus is not None:
        problems += _check_keys(topology, placed[host], out)
    elif topology.bus is not None:
        out(f"keys: run `fixmesh deploy check --config {config} --host NAME` on each host to check its keys")
    if host is not None:
        findings = host_check.check_sessions(topology, host, time.time(), out)
        problems += findings.problems
        warnings += findings.warnings
    for problem in problems:
        out(f"PROBLEM: {problem}")
    for warning in warnings:
        out(f"WARNING: {warning}")
    if problems:
        out(f"{len(problems)} problem(s)")
    else:
        out(f"OK, {len(warnings)} warning(s)" if warnings else "OK")
    return 1 if problems else 0


@dataclass(frozen=True, slots=True)
class _Broker:
    """One broker of the topology as ``check`` probes it."""

    #: The topology key (``broker``, ``broker.backup``), its supervisord program, the host it runs on.
    label: str
    program: str
    runs_on: str | None  # always set by the loader
    #: (plane, endpoint) for the router, xsub and xpub.
    planes: tuple[tuple[str, str], ...]


def _check_brokers(topology: Topology, host: str | None, timeout_s: float, out: Callable[[str], None]) -> list[str]:
    """Probe every bus endpoint of each broker; one problem per broker with an endpoint that does not answer.

    A pair with one broker unreachable still carries the bus, but the one left is a single point of
    failure: that is a problem like any other (exit 1), said in those words, with the host to look at.
    """
    primary, backup = topology.broker, topology.broker.backup
    brokers = [_Broker("broker", "broker", primary.runs_on,
                       (("router", primary.router), ("xsub", primary.xsub), ("xpub", primary.xpub)))]
    if backup is not None:
        brokers.append(_Broker("broker.backup", "broker-backup", backup.runs_on,
                               (("router", backup.router), ("xsub", backup.xsub), ("xpub", backup.xpub))))
    where = f"from host {host}" if host is not None else "from this machine"
    failed: dict[str, list[tuple[str, str, str]]] = {}
    for b in brokers:
        what_broker = "the backup broker" if b.program == "broker-backup" else \
            ("the primary broker" if backup is not None else "the broker")
        out(f"bus endpoints of {what_broker} on {b.runs_on}, {where}:")
        for plane, endpoint in b.planes:
            ok, what = probe(endpoint, timeout_s)
            out(f"  {plane:<6} {endpoint}  {what if ok else 'UNREACHABLE: ' + what}")
            if not ok:
                failed.setdefault(b.label, []).append((plane, endpoint, what))
    problems = []
    for b in brokers:
        down = failed.get(b.label)
        if not down:
            continue
        endpoints = ", ".join(f"{b.label}.{plane} {endpoint}" for plane, endpoint, _ in down)
        reasons = {what for _, _, what in down}
        why = reasons.pop() if len(reasons) == 1 else "; ".join(f"{plane}: {what}" for plane, _, what in down)
        other = next((o for o in brokers if o is not b), None)
        if other is None:
            meaning = "the broker is down or cut off: no forward, command or event crosses the bus from here"
        elif other.label in failed:
            meaning = "neither broker of the pair answers: the bus is down from here"
        elif b.program == "broker-backup":
            meaning = (f"the backup broker on {b.runs_on} is down or cut off, so the broker on {other.runs_on} is a "
                       f"single point of failure (losing {other.runs_on} stops the bus)")
        else:
            meaning = (f"the primary broker on {b.runs_on} is down or cut off; the backup on {other.runs_on} carries "
                       "the bus alone once the clients move to it, a single point of failure until the primary is "
                       "back")
        problems.append(
            f"{endpoints} unreachable {where} ({why}): {meaning}. Check `{b.program}` on host {b.runs_on} "
            f"(supervisorctl -c supervisord.conf status {b.program} there; start it, or that host's supervisord) "
            f"and that {'host ' + host if host is not None else 'this machine'} can reach those ports.")
    return problems


def _check_keys(topology: Topology, programs: list[Program], out: Callable[[str], None]) -> list[str]:
    """The key pair of each program of the host, and, on the broker's host, every principal's public key."""
    assert topology.bus is not None
    problems: list[str] = []
    out(f"keys in {topology.bus.keys_dir}:")
    for p in programs:
        if p.bus_key is None:
            continue
        try:
            if p.name in ("broker", "broker-backup"):
                principals = topology.bus_principals()
                topology.bus_keys(p.bus_key)  # the broker's own pair
                out(f"  {p.name}: its key pair and the public keys of {len(principals)} principal(s)")
            else:
                topology.bus_keys(p.bus_key)
                out(f"  {p.name}: the key pair {p.bus_key} and the broker's public key")
        except ConfigError as exc:
            problems.append(f"{p.name}: {exc}")
    return problems


# --------------------------------------------------------------------- the command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fixmesh deploy", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("render", help="write the supervisord configuration of a host (or of every host)")
    make.add_argument("--config", required=True, help="the topology file, as the programs will name it")
    which = make.add_mutually_exclusive_group(required=True)
    which.add_argument("--host", help="the host to render (a name under hosts:, or 'local' without hosts:)")
    which.add_argument("--all", action="store_true", help="every host, as DIR/<host>.conf (needs --out DIR)")
    make.add_argument("--out", help="the file (--host; default: standard output) or the folder (--all)")
    make.add_argument("--root", default=DEFAULT_ROOT, help=f"the folder programs run in (default: {DEFAULT_ROOT})")
    make.add_argument("--fixmesh", default="fixmesh", help="the fixmesh command (default: fixmesh, on PATH)")
    make.add_argument("--user", help="the user supervisord runs as and runs the programs as (user=)")
    test = commands.add_parser("check", help="check the topology, the bus endpoints and, with --host, its keys")
    test.add_argument("--config", required=True, help="the topology file")
    test.add_argument("--host", help="the host this machine is: also check its address and its keys")
    test.add_argument("--timeout-s", type=float, default=DEFAULT_CHECK_TIMEOUT_S,
                      help=f"seconds per connect (default {DEFAULT_CHECK_TIMEOUT_S:g})")
    from actors.tools import host_stop, reload  # reload renders with this module: imported here (a cycle)
    reloading = commands.add_parser("reload", help="apply an edited topology to a running host: start, stop or "
                                                   "restart only the programs whose settings changed")
    reload.add_arguments(reloading)
    stopping = commands.add_parser("stop", help="stop a host's programs faster than supervisord's shutdown: every "
                                                "program of a priority at once, the broker last")
    host_stop.add_arguments(stopping)
    args = parser.parse_args(argv)
    if args.command == "reload":
        return reload.run(args)
    if args.command == "stop":
        return host_stop.run(args)
    try:
        topology = load_topology(args.config)
        if args.host is not None:
            topology.host(args.host)
        if args.command == "check":
            return check(topology, args.host, args.timeout_s, args.config)
        options = RenderOptions(config=args.config, root=args.root, fixmesh=args.fixmesh, user=args.user)
        if args.all:
            if args.out is None:
                parser.error("render --all writes one file per host: give --out FOLDER")
            folder = Path(args.out)
            folder.mkdir(parents=True, exist_ok=True)
            for name in topology.hosts:
                path = folder / f"{name}.conf"
                path.write_text(render(topology, name, options), encoding="utf-8")
                programs = ", ".join(p.name for p in programs_on(topology, name, args.config)) or "nothing"
                print(f"{path}: host {name} ({topology.hosts[name].address}): {programs}")
            return 0
        text = render(topology, args.host, options)
    except ConfigError as exc:
        print(f"fixmesh deploy: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fixmesh deploy: cannot write {exc.filename} ({exc.strerror})", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(text)
    else:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"fixmesh deploy: cannot write {args.out} ({exc.strerror})", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
