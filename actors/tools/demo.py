"""``fixmesh demo``: run the demo topology of ``supervisord.conf`` in the foreground.

    fixmesh demo [--root DIR]            start it; Ctrl-C stops every program
    fixmesh demo ctl [--root DIR] ARGS   supervisorctl for the running demo: status, restart NAME, tail NAME ...

Broker, a Handler/Driven pair (``deploy/topology.yaml``), the coordinator, a
venue simulator and the monitor, each its own program under supervisord,
whose configuration is ``fixmesh deploy render`` of the demo topology. Once
every program runs the demo says what runs, what to try and where the logs
are. supervisorctl's password is made afresh for each run and kept in
``var/supervisor.password`` (mode 0600), which ``fixmesh demo ctl`` reads;
as root, supervisord is told to stay root (``-u root``), so a local demo
logs no CRIT line.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from actors.gateway.topology import ConfigError, load_topology
from actors.tools.deploy import PASSWORD_ENV, programs_on

ROOT = Path(__file__).resolve().parents[2]
PASSWORD_FILE = Path("var") / "supervisor.password"
TOPOLOGY = Path("deploy") / "topology.yaml"
#: How long the demo waits for every program to be RUNNING before it says which is not.
START_TIMEOUT_S = 60.0
POLL_S = 0.5


def _environment(root: Path, password: str) -> dict[str, str]:
    # supervisord finds `fixmesh` on PATH: the one installed beside this interpreter.
    bindir = str(Path(sys.executable).parent)
    return dict(os.environ, FIXMESH_ROOT=str(root), PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")]),
                **{PASSWORD_ENV: password})


def _write_password(root: Path) -> str:
    password = secrets.token_urlsafe(24)
    path = root / PASSWORD_FILE
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(password + "\n")
    return password


def _supervisorctl(config: Path, env: dict[str, str], args: list[str], timeout_s: float = 30.0) -> str:
    result = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(config), *args],
                            capture_output=True, text=True, env=env, timeout=timeout_s)
    return result.stdout


def _states(config: Path, env: dict[str, str]) -> dict[str, str]:
    """Program -> state, from ``supervisorctl status`` (empty while supervisord is not answering yet)."""
    states = {}
    for line in _supervisorctl(config, env, ["status"]).splitlines():
        words = line.split()
        if len(words) >= 2 and words[1].isupper() and words[1].isalpha():
            states[words[0]] = words[1]
    return states


def _command_word() -> str:
    """How the reader runs fixmesh: ``fixmesh`` when that is this one on PATH, else its path."""
    beside = Path(sys.executable).parent / "fixmesh"
    found = shutil.which("fixmesh")
    return "fixmesh" if found is not None and Path(found).resolve() == beside.resolve() else str(beside)


def greeting(root: Path, states: dict[str, str], abouts: dict[str, str], root_option: str) -> str:
    """What runs, what to try and where the logs are: printed once every program runs."""
    fixmesh = _command_word()
    topology = root / TOPOLOGY
    width = max((len(name) for name in states), default=0) + 2
    lines = [f"fixmesh demo: {len(states)} programs running in {root}:"]
    lines += [f"  {name:<{width}}{state:<9}{abouts.get(name, '')}".rstrip() for name, state in states.items()]
    tries = [
        (f"{fixmesh} client 'buy 100 MSFT@101.5' 'sell 250 IBM' 'buy 10 REJECT@1'",
         "log on as the trader, send orders, print the ExecutionReports"),
        (f"{fixmesh} status --config {topology}", "every session in one table: state, sequence numbers, traffic"),
        (f"{fixmesh} monitor --config {topology}", "every event on the bus as it happens"),
        (f"{fixmesh} demo ctl{root_option} status", "supervisorctl: the programs (also restart NAME, tail NAME)"),
    ]
    lines += ["", "Try, in another terminal:"]
    lines += [f"  {command}\n      {why}" for command, why in tries]
    lines += ["", f"Logs: {root / 'var' / 'log'} (one file per program; monitor.log shows each step, "
                  "supervisord.log the starts and stops)",
              "Ctrl-C stops every program."]
    return "\n".join(lines)


def _abouts(root: Path) -> dict[str, str]:
    """Each program's line from the demo topology (its rendering), or nothing if it cannot be read."""
    try:
        topology = load_topology(root / TOPOLOGY)
    except ConfigError:
        return {}
    return {p.name: p.about for host in topology.hosts for p in programs_on(topology, host, str(TOPOLOGY))}


def run(root: Path, config: Path, timeout_s: float) -> int:
    (root / "var" / "log").mkdir(parents=True, exist_ok=True)
    env = _environment(root, _write_password(root))
    command = [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(config)]
    if os.geteuid() == 0:
        command += ["-u", "root"]  # as root on purpose: supervisord would otherwise log a CRIT line about it
    supervisord = subprocess.Popen(command, env=env, cwd=root)
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if supervisord.poll() is None:
            supervisord.send_signal(signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    deadline = time.monotonic() + timeout_s
    states: dict[str, str] = {}
    while not stopping and supervisord.poll() is None and time.monotonic() < deadline:
        states = _states(config, env)
        if states and all(state == "RUNNING" for state in states.values()):
            break
        time.sleep(POLL_S)
    if not stopping and supervisord.poll() is None:
        root_option = "" if root == ROOT else f" --root {root}"
        if states and all(state == "RUNNING" for state in states.values()):
            print(greeting(root, states, _abouts(root), root_option), flush=True)
        else:
            waiting = ", ".join(f"{name} {state}" for name, state in states.items() if state != "RUNNING")
            print(f"fixmesh demo: not every program runs after {timeout_s:g} s ({waiting or 'no answer'}); "
                  f"see {root / 'var' / 'log'}", flush=True)
    while True:
        try:
            return supervisord.wait()
        except KeyboardInterrupt:  # pragma: no cover - the handler above replaces the default
            stop(signal.SIGINT, None)


def ctl(root: Path, config: Path, args: list[str]) -> int:
    try:
        password = (root / PASSWORD_FILE).read_text(encoding="ascii").strip()
    except OSError:
        print(f"fixmesh demo ctl: no demo has run in {root} ({root / PASSWORD_FILE} is missing); start it with "
              "`fixmesh demo`", file=sys.stderr)
        return 2
    result = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(config), *args],
                            env=_environment(root, password))
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="fixmesh demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(ROOT),
                        help="the folder the programs run in: deploy/topology.yaml and var/ (default: the repository)")
    parser.add_argument("--config", default=str(ROOT / "supervisord.conf"), help="the supervisord configuration")
    parser.add_argument("--timeout-s", type=float, default=START_TIMEOUT_S,
                        help=f"how long to wait for every program to run (default {START_TIMEOUT_S:g})")
    if args[:1] == ["ctl"]:
        parser.prog = "fixmesh demo ctl"
        parser.add_argument("ctl_args", nargs=argparse.REMAINDER, metavar="ARGS",
                            help="supervisorctl's command, e.g. status, restart venue, tail -f monitor")
        options = parser.parse_args(args[1:])
        return ctl(Path(options.root).resolve(), Path(options.config).resolve(), options.ctl_args or ["status"])
    options = parser.parse_args(args)
    return run(Path(options.root).resolve(), Path(options.config).resolve(), options.timeout_s)


if __name__ == "__main__":
    sys.exit(main())
