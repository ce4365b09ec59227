"""``fixmesh ctl``: send one command to a session actor over the bus and print its reply.

    fixmesh ctl --config deploy/topology.yaml venue status
    fixmesh ctl --config deploy/topology.yaml venue switch_connection --text "primary site maintenance"
    fixmesh ctl --config deploy/topology.yaml client logout --text "end of day"
    fixmesh ctl --config deploy/topology.yaml venue set_seqnums --next-sender 120 --next-target 87

Commands: status, connect, disconnect, logout, reset_seqnums, set_seqnums,
switch_connection. The reply (JSON) is printed; the exit status is 0 when
the session answered ok, 1 when it refused, 2 when no answer came in time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from actors.gateway.bus import BusClient
from actors.gateway.topology import ConfigError, load_topology
from actors.shell.loop import Loop
from broker import protocol

COMMANDS = ("status", "connect", "disconnect", "logout", "reset_seqnums", "set_seqnums", "switch_connection")


def send_command(router: str, xsub: str, session: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
    """One command, one reply (None when none came within ``timeout_s``)."""
    name = f"ctl-{int(time.time() * 1000) % 10**9}"
    bus = BusClient(name, router, xsub)
    loop = Loop()
    for sock in bus.sockets:
        loop.add_reader(sock, lambda: None)
    loop.add_timer_source(bus)
    deadline = time.monotonic() + timeout_s
    command_id: str | None = None
    try:
        while time.monotonic() < deadline:
            if command_id is None and bus.welcomed:
                command_id = bus.command(session, body)
            loop.run_once(0.05)
            for env in bus.handle_readable():
                if env.corr == command_id and env.kind == protocol.REPLY:
                    return env.body if isinstance(env.body, dict) else {"ok": False, "error": "malformed reply"}
                if env.corr == command_id and env.kind == protocol.UNDELIVERABLE:
                    return {"ok": False, "error": f"session {session} is not connected to the broker"}
        return None
    finally:
        bus.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fixmesh ctl", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the topology YAML file (for the broker's endpoints)")
    parser.add_argument("session")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--text", help="Logout text / reason")
    parser.add_argument("--next-sender", type=int)
    parser.add_argument("--next-target", type=int)
    parser.add_argument("--timeout-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    try:
        topology = load_topology(args.config)
        topology.session(args.session)
    except ConfigError as exc:
        print(f"fixmesh ctl: {exc}", file=sys.stderr)
        return 2
    body: dict[str, Any] = {"cmd": args.command}
    if args.text:
        body["text"] = args.text
    if args.command == "set_seqnums":
        body.update(next_sender=args.next_sender, next_target=args.next_target)
    reply = send_command(topology.broker.router, topology.broker.xsub, args.session, body, args.timeout_s)
    if reply is None:
        print(f"fixmesh ctl: no answer from {args.session} within {args.timeout_s:g} s", file=sys.stderr)
        return 2
    print(json.dumps(reply, indent=2, sort_keys=True, default=str))
    return 0 if reply.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
