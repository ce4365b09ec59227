"""``fixmesh ctl``: send one command to a session actor over the bus and print its reply.

    fixmesh ctl --config deploy/topology.yaml venue status
    fixmesh ctl --config deploy/topology.yaml venue switch_connection --text "primary site maintenance"
    fixmesh ctl --config deploy/topology.yaml client logout --text "end of day"
    fixmesh ctl --config deploy/topology.yaml venue set_seqnums --next-sender 120 --next-target 87

Without a session, ``fixmesh ctl --config T status`` shows every session
in one table (``fixmesh status``, which takes ``--json`` and ``--watch`` too).

Commands: status, connect, disconnect, logout, reset_seqnums, set_seqnums,
switch_connection, answer_logon (``actors.gateway.vocabulary.CommandName``);
``--text`` is used by logout, disconnect, switch_connection and answer_logon
(there: a refusal; none accepts the held Logon), ``--next-sender`` and
``--next-target`` by set_seqnums (while the session is connected, only a
higher ``--next-sender``: docs/operations.md). The reply (JSON) is printed; the exit
status is 0 when the session answered ok, 1 when it or the broker refused,
2 when no answer came in time.

On a bus with keys (the topology's ``bus:``) a command needs an operator's
key: ``--key NAME`` (the key pair ``<keys_dir>/NAME.key_secret``) or
``--key PATH/NAME.key_secret``, or the variable ``FIXMESH_BUS_KEY``. ctl then
joins the bus as ``ctl-NAME-<pid>``, and the broker publishes the command as
``audit.command`` (who, what, when). Any other key is refused by the broker
(``forbidden``).

With a pair of brokers (``broker.backup``) ctl says hello to the primary
first and moves to the backup when the primary does not welcome it within
two seconds or answers that it is passive, as every bus client does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, assert_never

from actors.gateway.bus import BrokerAddress, BusClient, CurveKeys
from actors.gateway.topology import ConfigError, Topology, load_topology, operator_prefix
from actors.gateway.vocabulary import (
    AnswerLogon,
    Command,
    CommandName,
    Connect,
    Disconnect,
    Logout,
    Refused,
    ResetSeqNums,
    SetSeqNums,
    Status,
    StatusReply,
    SwitchConnection,
    parse_reply,
)
from actors.shell import clock
from actors.shell.loop import Loop
from actors.tools.keys import KEY_ENV, key_argument
from broker import protocol

COMMANDS = tuple(name.value for name in CommandName)
_NS_PER_MS = 1_000_000


def command_for(name: CommandName, text: str = "", next_sender: int | None = None,
                next_target: int | None = None) -> Command:
    """The typed command for the command line; an option a command has no use for is left out."""
    match name:
        case CommandName.STATUS:
            return Status()
        case CommandName.CONNECT:
            return Connect()
        case CommandName.DISCONNECT:
            return Disconnect(text)
        case CommandName.LOGOUT:
            return Logout(text)
        case CommandName.RESET_SEQNUMS:
            return ResetSeqNums()
        case CommandName.SET_SEQNUMS:
            return SetSeqNums(next_sender, next_target)
        case CommandName.SWITCH_CONNECTION:
            return SwitchConnection(text)
        case CommandName.ANSWER_LOGON:
            return AnswerLogon(text)
        case _:
            assert_never(name)


def send_command(router: str, xsub: str, session: str, command: Command,
                 timeout_s: float, curve: CurveKeys | None = None,
                 backup: BrokerAddress | None = None) -> dict[str, Any] | None:
    """One command, one reply body as the session sent it (None when none came within ``timeout_s``).

    ``curve``: an operator's keys on a bus with keys; ctl is then ``ctl-<key>-<pid>``, a name the key may use.
    ``backup``: the backup broker of a pair (``router`` and ``xsub`` are the primary's).
    """
    if curve is None:
        name = f"ctl-{clock.now().utc_ns // _NS_PER_MS % 10**9}"
    else:
        name = f"{operator_prefix(curve.principal)}{os.getpid()}"
    bus = BusClient(name, router, xsub, curve=curve,
                    backup=None if backup is None else BrokerAddress(backup.router, backup.xsub))
    loop = Loop()
    for sock in bus.sockets:
        loop.add_reader(sock, lambda: None)
    loop.add_timer_source(bus)
    deadline = clock.now().mono_s + timeout_s
    command_id: str | None = None
    try:
        while clock.now().mono_s < deadline:
            if command_id is None and bus.welcomed:
                command_id = bus.command(session, command.to_body())
            loop.run_once(0.05)
            for env in bus.handle_readable():
                if env.corr == command_id and env.kind == protocol.REPLY:
                    return env.body if isinstance(env.body, dict) else Refused("malformed reply").to_body()
                if env.kind == protocol.UNDELIVERABLE and _reason(env) == protocol.REASON_FORBIDDEN:
                    who = "this key" if curve is None else f"the key {curve.principal!r}"
                    return Refused(f"the broker refused the command: {who} may not command {session} or act "
                                   f"as {name} (only an operator's key, listed under bus.operators, may)").to_body()
                if env.corr == command_id and env.kind == protocol.UNDELIVERABLE:
                    return Refused(f"session {session} is not connected to the broker").to_body()
        return None
    finally:
        bus.close()


def _reason(env: protocol.Envelope) -> str:
    return str(env.body.get("reason", "")) if isinstance(env.body, dict) else ""


def operator_keys(topology: Topology, key: str | None) -> CurveKeys | None:
    """The keys ctl joins with: None on an open bus; ConfigError when the bus has keys and none is given or usable."""
    if topology.bus is None:
        return None
    if not key:
        operators = ", ".join(topology.bus.operators) or "none listed yet"
        raise ConfigError(f"{topology.path}: bus: this bus has keys, so a command needs an operator's key; pass "
                          f"--key NAME or set {KEY_ENV} (bus.operators: {operators})")
    principal, secret_file = key_argument(key)
    return topology.bus_keys(principal, secret_file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fixmesh ctl", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the topology YAML file (for the broker's endpoints)")
    parser.add_argument("session")
    parser.add_argument("command", nargs="?", choices=COMMANDS)
    parser.add_argument("--text", help="Logout text / reason")
    parser.add_argument("--next-sender", type=int)
    parser.add_argument("--next-target", type=int)
    parser.add_argument("--timeout-s", type=float, default=5.0)
    parser.add_argument("--key", default=os.environ.get(KEY_ENV),
                        help=f"on a bus with keys: an operator's key name or .key_secret file (default: ${KEY_ENV})")
    args, rest = parser.parse_known_args(argv)
    if args.command is None and args.session == CommandName.STATUS.value:
        from actors.tools import status  # every session in one table

        return status.main(["--config", args.config, "--timeout-s", str(args.timeout_s),
                            *(["--key", args.key] if args.key else []), *rest])
    if args.command is None:
        parser.error("the command is missing (or, for every session, only: status)")
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        topology = load_topology(args.config)
        topology.session(args.session)
        curve = operator_keys(topology, args.key)
    except ConfigError as exc:
        print(f"fixmesh ctl: {exc}", file=sys.stderr)
        return 2
    command = command_for(CommandName(args.command), args.text or "", args.next_sender, args.next_target)
    reply = send_command(topology.broker.router, topology.broker.xsub, args.session, command, args.timeout_s,
                         curve, topology.broker.backup_address)
    if reply is None:
        print(f"fixmesh ctl: no answer from {args.session} within {args.timeout_s:g} s", file=sys.stderr)
        return 2
    print(json.dumps(reply, indent=2, sort_keys=True, default=str))
    return 0 if isinstance(parse_reply(reply), StatusReply) else 1


if __name__ == "__main__":
    sys.exit(main())
