"""The ``fixmesh`` command: one entry point for every fixmesh process and tool.

    fixmesh acceptance-server ...   the acceptor for QuickFIX's acceptance scripts
    fixmesh endpoint ...            one FIX session as a process (initiator or acceptor)
    fixmesh session --config T --session NAME   one gateway session actor of a topology
    fixmesh broker --config T       the ZeroMQ broker (business and event planes); or: --router R --xsub S --xpub P
    fixmesh keys create|list ...    the CURVE key pairs of a bus with keys (docs/bus.md)
    fixmesh coordinator --config T  the pairing and schedule policy of a topology
    fixmesh ctl --config T SESSION COMMAND   status, connect, logout, switch_connection, ...
    fixmesh status --config T       every session in one table (--json, --watch S)
    fixmesh metrics --config T      this host's Prometheus endpoint (/metrics) and the status page (/)
    fixmesh credentials hash        read a password from stdin, print its scrypt$... line for the topology
    fixmesh listener --config T     the TCP ports several acceptor sessions share (session qualifiers)
    fixmesh log SESSION [--follow]  a session's stored messages decoded (names, enums, secrets masked)
    fixmesh monitor [PREFIX ...]    print bus events as they happen
    fixmesh store show|reset ...    inspect or remove a session's store
    fixmesh deploy render|check --config T   a host's supervisord configuration; check the hosts (docs/deploy.md)
    fixmesh demo                    the demo topology under supervisord
    fixmesh venue-sim --port P ...  a FIX acceptor that fills and cancels orders like a simple exchange
    fixmesh client ORDER ...        log on, send orders, print the execution reports, log out
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "acceptance-server": "actors.sim.acceptance_server",
    "endpoint": "actors.sim.endpoint",
    "session": "actors.gateway.session_actor",
    "monitor": "actors.tools.monitor",
    "broker": "actors.tools.broker_program",
    "keys": "actors.tools.keys",
    "coordinator": "actors.gateway.coordinator",
    "ctl": "actors.tools.ctl",
    "status": "actors.tools.status",
    "metrics": "actors.tools.metrics",
    "credentials": "actors.tools.credentials",
    "listener": "actors.gateway.listener",
    "log": "actors.tools.fixlog",
    "store": "actors.store.__main__",
    "deploy": "actors.tools.deploy",
    "demo": "actors.tools.demo",
    "venue-sim": "actors.sim.venue_sim",
    "client": "actors.sim.trader_client",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print(__doc__.strip())
        if args and args[0] not in ("-h", "--help"):
            print(f"\nfixmesh: unknown command {args[0]!r}", file=sys.stderr)
            return 2
        return 0
    module = importlib.import_module(COMMANDS[args[0]])
    sys.argv = [f"fixmesh {args[0]}", *args[1:]]
    result = module.main(args[1:])
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
