"""What every program of a topology does first: its arguments, its logging, its topology.

The session actor, the coordinator and the listener each start from the
same three things: ``--config`` (the topology YAML), ``--log-level``, and the
topology read once, or one clear error naming the file, the key and the fix
(exit status 2, which supervisord shows as a failed start).
"""

from __future__ import annotations

import argparse
import sys

from actors.gateway.topology import ConfigError, Topology, load_topology
from actors.shell.process import configure_logging


def topology_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A parser with ``--config`` and ``--log-level``; ``doc``'s first paragraph is its description."""
    parser = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the topology YAML file")
    parser.add_argument("--log-level", default="INFO")
    return parser


def start(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, Topology] | None:
    """Parse, set up logging and read the topology; None after its one error was printed (exit 2)."""
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    topology = load_topology_or_report(args.config, parser.prog)
    return None if topology is None else (args, topology)


def load_topology_or_report(path: str, prog: str) -> Topology | None:
    """The topology, or None after printing its one clear error (the caller exits 2)."""
    try:
        return load_topology(path)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
