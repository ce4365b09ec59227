"""``fixmesh deploy reload``: apply an edited topology to a running host, restarting only what changed.

    fixmesh deploy reload --conf supervisord.conf [--config T] [--dry-run]

Run on each host after editing the topology (the same file on every host).
It renders the host's supervisord configuration again with the code and the
options of ``fixmesh deploy render`` (the options are read back from the
configuration's own header, ``Written by `fixmesh deploy render ...```; any
given here win), writes it over ``--conf``, and has supervisord apply the
difference through its XML-RPC interface, as ``supervisorctl reread`` and
``update`` do:

* a program whose section is new is started (a session or pair added);
* a program whose section is gone is stopped and removed (the sessions log
  out first: their ``stopwaitsecs`` leaves time);
* a program whose section changed is restarted, alone. Each section carries
  a digest of what its program reads from the topology
  (``actors.tools.settings_digest``), so a session whose own settings
  changed (its ``defaults:`` and its pair included) restarts, and every other
  keeps running: its process, its FIX connection and its sequence numbers
  are untouched;
* every coordinator on the host that keeps running is told to re-read the
  topology's pairs (SIGHUP): it learns the new pairs and forgets the removed
  ones without a restart, before new sessions start and old ones stop.

A topology with a mistake changes nothing (exit 2, the mistake printed).
``--dry-run`` prints what would change, comparing with the configuration
file, and touches nothing. supervisorctl's socket and password come from
``--conf`` (``FIXMESH_SUPERVISOR_PASSWORD`` and, with the default root,
``FIXMESH_ROOT`` in the environment, as for supervisorctl). Exit status: 0
done, 1 a program did not stop or start (each named), 2 nothing was done.
"""

from __future__ import annotations

import argparse
import configparser
import os
import re
import shlex
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from actors.gateway.topology import ConfigError, Topology, load_topology
from actors.tools.deploy import DEFAULT_ROOT, RenderOptions, render
from actors.tools.settings_digest import program_kind
from actors.tools.supervisor_link import Supervisor, SupervisorError

#: The header line ``render`` writes: the command and options it was rendered with.
WRITTEN_BY = re.compile(r"^; Written by `fixmesh deploy render (?P<args>[^`]*)`", re.MULTILINE)
#: How long a started or restarted program may take to reach RUNNING (its startsecs is 1).
START_TIMEOUT_S = 30.0
POLL_S = 0.2
#: supervisord's states of a program that will not come up by itself.
FAILED_STATES = frozenset({"FATAL", "BACKOFF", "EXITED", "UNKNOWN"})


class ReloadError(Exception):
    """Nothing was done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class RenderedAs:
    """The host and the render options of a rendered configuration."""

    host: str
    options: RenderOptions


def rendered_as(text: str, *, config: str | None = None, host: str | None = None, root: str | None = None,
                fixmesh: str | None = None, user: str | None = None) -> RenderedAs:
    """How ``text`` was rendered (its header), with the given options in place of the header's."""
    m = WRITTEN_BY.search(text)
    if m is None:
        raise ReloadError("the configuration has no '; Written by `fixmesh deploy render ...`' line, so it was not "
                          "rendered by fixmesh deploy; render it first (docs/deploy.md)")
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    for option in ("--config", "--host", "--root", "--fixmesh", "--user"):
        parser.add_argument(option)
    try:
        given, _ = parser.parse_known_args(shlex.split(m["args"]))
    except (argparse.ArgumentError, ValueError) as exc:
        raise ReloadError(f"cannot read its header line ({exc}); give --config, --host, --root explicitly") from None
    chosen_config = config or given.config
    chosen_host = host or given.host
    if chosen_config is None or chosen_host is None:
        raise ReloadError("its header line names no --config or --host; give them")
    options = RenderOptions(config=chosen_config, root=root or given.root or DEFAULT_ROOT,
                            fixmesh=fixmesh or given.fixmesh or "fixmesh", user=user or given.user)
    return RenderedAs(chosen_host, options)


def expand_root(root: str, environ: Mapping[str, str]) -> Path:
    """The folder ``root`` names, with supervisord's ``%(ENV_NAME)s`` read from ``environ``."""
    def variable(m: re.Match[str]) -> str:
        name = m[1]
        if name not in environ:
            raise ReloadError(f"the configuration's folder is {root}, and {name} is not set; set it as for "
                              "supervisord, or give --root")
        return environ[name]
    return Path(re.sub(r"%\(ENV_([A-Za-z0-9_]+)\)s", variable, root))


def program_sections(text: str) -> dict[str, dict[str, str]]:
    """``[program:NAME]`` sections of a supervisord configuration: name -> its keys and values."""
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return {s.removeprefix("program:"): dict(parser[s]) for s in parser.sections() if s.startswith("program:")}


@dataclass(slots=True)
class Plan:
    """What a reload does to the programs of one host."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def plan(old_text: str, new_text: str) -> Plan:
    """Compare two renderings program by program (what ``--dry-run`` shows)."""
    old, new = program_sections(old_text), program_sections(new_text)
    result = Plan()
    for name, section in new.items():
        if name not in old:
            result.added.append(name)
        elif old[name] != section:
            result.changed.append(name)
        else:
            result.unchanged.append(name)
    result.removed = [name for name in old if name not in new]
    return result


def coordinators_on(topology: Topology, host: str) -> list[str]:
    """The programs of ``host`` that are coordinators (``coordinator``, ``coordinator-b``, ...)."""
    return [name for name, p in topology.programs.items()
            if host in p.runs_on and program_kind(topology, name) == "coordinator"]


# ----------------------------------------------------------------- supervisord


def apply(supervisor: Supervisor, coordinators: list[str], out: Callable[[str], None],
          start_timeout_s: float = START_TIMEOUT_S) -> tuple[Plan, list[str]]:
    """Have supervisord reread its configuration and apply it; the plan carried out and the problems met."""
    before = supervisor.states()
    [[added, changed, removed]] = supervisor.rpc.reloadConfig()
    done = Plan(sorted(added), sorted(changed), sorted(removed),
                sorted(n for n in before if n not in changed and n not in removed))
    problems: list[str] = []
    # First the coordinators that keep running re-read the pairs: a removed pair is forgotten before its
    # sessions stop (nothing to repair), a new one is known before its sessions start (their first event counts).
    for name in coordinators:
        if name in done.unchanged and before.get(name) == "RUNNING":
            supervisor.rpc.signalProcess(name, "HUP")
            out(f"  {name}: told to re-read the pairs (SIGHUP)")
    for name in done.removed + done.changed:
        try:
            supervisor.rpc.stopProcessGroup(name)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                problems.append(f"{name}: could not be stopped ({fault.faultString})")
                continue
        supervisor.rpc.removeProcessGroup(name)
    for name in done.changed + done.added:
        supervisor.rpc.addProcessGroup(name)  # autostart: supervisord starts it
    deadline = time.monotonic() + start_timeout_s
    waiting = set(done.changed + done.added)
    for _ in range(int(start_timeout_s / POLL_S) + 2):
        if not waiting:
            break
        states = supervisor.states()
        for name in sorted(waiting):
            state = states.get(name, "UNKNOWN")
            if state == "RUNNING":
                waiting.discard(name)
            elif state in FAILED_STATES and state != "UNKNOWN":
                problems.append(f"{name}: {state} (see its log, var/log/{name}.log)")
                waiting.discard(name)
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    problems += [f"{name}: not RUNNING within {start_timeout_s:g} s" for name in sorted(waiting)]
    return done, problems


def report(done: Plan, out: Callable[[str], None]) -> None:
    for label, names in (("stopped", done.removed), ("restarted", done.changed), ("started", done.added),
                         ("unchanged", done.unchanged)):
        out(f"  {label:<10} {', '.join(names) or '-'}")


# ----------------------------------------------------------------- the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conf", required=True, help="the host's supervisord configuration, rendered by fixmesh "
                                                      "deploy render (rewritten)")
    parser.add_argument("--config", help="the topology file as the programs name it (default: as rendered)")
    parser.add_argument("--host", help="the host (default: as rendered)")
    parser.add_argument("--root", help="the folder the programs run in (default: as rendered)")
    parser.add_argument("--fixmesh", help="the fixmesh command (default: as rendered)")
    parser.add_argument("--user", help="the user supervisord runs the programs as (default: as rendered)")
    parser.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    conf = Path(args.conf)
    try:
        old_text = conf.read_text(encoding="utf-8")
        how = rendered_as(old_text, config=args.config, host=args.host, root=args.root, fixmesh=args.fixmesh,
                          user=args.user)
        topology_path = Path(how.options.config)
        if not topology_path.is_absolute():
            topology_path = expand_root(how.options.root, os.environ) / topology_path
        topology = load_topology(topology_path)
        new_text = render(topology, how.host, how.options)
        out(f"fixmesh deploy reload: host {how.host} of {topology_path}")
        if args.dry_run:
            report(plan(old_text, new_text), out)
            out("  (dry run: nothing changed)")
            return 0
        supervisor = Supervisor(conf)
        supervisor.check()
        _write(conf, new_text)
    except ConfigError as exc:
        print(f"fixmesh deploy reload: {exc}; nothing changed", file=sys.stderr)
        return 2
    except (ReloadError, SupervisorError) as exc:
        print(f"fixmesh deploy reload: {conf}: {exc}; nothing changed", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fixmesh deploy reload: {exc.filename or conf}: {exc.strerror}; nothing changed", file=sys.stderr)
        return 2
    done, problems = apply(supervisor, coordinators_on(topology, how.host), out)
    report(done, out)
    for problem in problems:
        out(f"PROBLEM: {problem}")
    return 1 if problems else 0


def _write(path: Path, text: str) -> None:
    """Replace ``path`` in one step (a reader sees the old file or the new one), keeping its mode."""
    tmp = path.with_name(f".{path.name}.reload")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)
