"""``fixmesh status``: every session of the topology in one table, asked over the bus at once.

    fixmesh status --config deploy/topology.yaml
    fixmesh status --config deploy/topology.yaml --json
    fixmesh status --config deploy/topology.yaml --watch 2
    fixmesh ctl --config deploy/topology.yaml status            (the same: ctl without a session)

One row per session of the topology, wherever it runs: name, role, pair,
state, next sender/target sequence numbers, the counterparty's address,
logged on since, application messages in and out, the last message's age
and the pair's health (``actors.tools.overview``). The tool joins the bus
once and sends ``status`` to every session together; a session that does
not answer within ``--timeout-s`` shows as NO ANSWER, and why.

``--json`` prints one JSON array, a row per session with its whole reading
(``stats``). ``--watch S`` redraws the table in place every S seconds until
Ctrl-C (``--count N`` stops after N tables). Exit status: 0 when every
session answered (and after Ctrl-C), 1 when one did not, 2 for a bad
topology or key.

On a bus with keys, ``status`` is a command: it needs an operator's key,
``--key NAME`` or ``FIXMESH_BUS_KEY``, as ``fixmesh ctl``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from actors.gateway.bus import BusClient, CurveKeys
from actors.gateway.topology import ConfigError, Topology, load_topology, operator_prefix
from actors.gateway.vocabulary import Refused, Status, StatusReply, parse_reply
from actors.shell import clock
from actors.shell.loop import Loop
from actors.tools.ctl import operator_keys
from actors.tools.keys import KEY_ENV
from actors.tools.overview import Reading, rows, table
from broker import protocol

#: The escape sequence that moves the cursor home and clears the screen (``--watch``), as ``top`` does.
CLEAR_SCREEN = "\x1b[H\x1b[2J"
_NS_PER_MS = 1_000_000
#: The longest one turn of the loop waits, so that Ctrl-C is honoured promptly.
_TURN_S = 0.05
FORBIDDEN = protocol.REASON_FORBIDDEN


class StatusAsker:
    """One bus client that asks many sessions for their status at once, as often as asked."""

    def __init__(self, router: str, xsub: str, curve: CurveKeys | None) -> None:
        self.curve = curve
        if curve is None:
            self.name = f"status-{os.getpid()}-{clock.now().utc_ns // _NS_PER_MS % 10**9}"
        else:
            self.name = f"{operator_prefix(curve.principal)}{os.getpid()}"
        self.bus = BusClient(self.name, router, xsub, curve=curve)
        self.loop = Loop()
        for sock in self.bus.sockets:
            self.loop.add_reader(sock, lambda: None)
        self.loop.add_timer_source(self.bus)

    def ask(self, sessions: Sequence[str], timeout_s: float) -> dict[str, Reading]:
        """Each session's counters, or why there are none; at most ``timeout_s`` for all of them together."""
        deadline = clock.monotonic_s() + timeout_s
        asked: dict[str, str] = {}  # command id -> session
        answers: dict[str, Reading] = {}
        unsent = list(sessions)
        while len(answers) < len(sessions) and clock.monotonic_s() < deadline:
            if unsent and self.bus.welcomed:
                for session in list(unsent):
                    command_id = self.bus.command(session, Status().to_body())
                    if command_id is None:
                        break  # the link is full: the rest go on the next turn
                    asked[command_id] = session
                    unsent.remove(session)
            self.loop.run_once(_TURN_S)
            for env in self.bus.handle_readable():
                answering = asked.get(env.corr or "")
                if answering is None and env.kind == protocol.UNDELIVERABLE and _reason(env.body) == FORBIDDEN:
                    refused = self._refused_here()  # the broker refused this tool's hello: nothing will be answered
                    return {session: answers.get(session, refused) for session in sessions}
                if answering is None or answering in answers:
                    continue
                if env.kind == protocol.REPLY:
                    answers[answering] = _reading(env.body)
                elif env.kind == protocol.UNDELIVERABLE:
                    answers[answering] = self._undeliverable(answering, env.body)
        for session in sessions:
            if session not in answers:
                waited = f"no answer within {timeout_s:g} s" if self.bus.welcomed else (
                    f"the broker did not welcome this tool within {timeout_s:g} s (is it running? on a bus with "
                    f"keys, {self._who()} must be an operator's, listed under bus.operators)")
                answers[session] = waited
        return answers

    def _undeliverable(self, session: str, body: object) -> str:
        if _reason(body) == FORBIDDEN:
            return f"the broker refused the command: {self._who()} may not command {session}"
        return f"{session} is not connected to the broker"

    def _refused_here(self) -> str:
        return (f"the broker refused the command: {self._who()} may not act as {self.name} (only an operator's "
                "key, listed under bus.operators, may)")

    def _who(self) -> str:
        return "this key" if self.curve is None else f"the key {self.curve.principal!r}"

    def wait(self, seconds: float) -> None:
        """Keep the bus alive (heartbeats) for ``seconds``."""
        until = clock.monotonic_s() + seconds
        while (left := until - clock.monotonic_s()) > 0:
            self.loop.run_once(min(_TURN_S, left))
            self.bus.handle_readable()

    def close(self) -> None:
        self.bus.close()


def _reason(body: object) -> object:
    return body.get("reason") if isinstance(body, dict) else None


def _reading(body: object) -> Reading:
    reply = parse_reply(body)
    if isinstance(reply, StatusReply):
        return reply.stats if reply.stats is not None else "answered without counters (an older actor)"
    if isinstance(reply, Refused):
        return f"refused: {reply.error}"
    return f"malformed reply: {reply.error}"


def render(topology: Topology, readings: dict[str, Reading], as_json: bool) -> str:
    found = rows(topology, readings)
    if as_json:
        return json.dumps([row.to_json() for row in found], indent=2, sort_keys=False)
    return table(found, clock.now().utc_ns)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fixmesh status", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the topology YAML file")
    p.add_argument("--json", action="store_true", help="one JSON array, a row per session, with every counter")
    p.add_argument("--watch", type=float, metavar="S", help="redraw the table every S seconds until Ctrl-C")
    p.add_argument("--count", type=int, metavar="N", help="with --watch: stop after N tables")
    p.add_argument("--timeout-s", type=float, default=2.0, help="how long to wait for the answers (default 2)")
    p.add_argument("--key", default=os.environ.get(KEY_ENV),
                   help=f"on a bus with keys: an operator's key name or .key_secret file (default: ${KEY_ENV})")
    return p


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    stream = out or sys.stdout
    if args.watch is not None and args.watch <= 0:
        print("fixmesh status: --watch needs a positive number of seconds", file=sys.stderr)
        return 2
    try:
        topology = load_topology(args.config)
        curve = operator_keys(topology, args.key)
    except ConfigError as exc:
        print(f"fixmesh status: {exc}", file=sys.stderr)
        return 2
    sessions = list(topology.sessions)
    asker = StatusAsker(topology.broker.router, topology.broker.xsub, curve)
    try:
        if args.watch is None:
            readings = asker.ask(sessions, args.timeout_s)
            print(render(topology, readings, args.json), file=stream, flush=True)
            return 0 if all(not isinstance(r, str) for r in readings.values()) else 1
        shown = 0
        while args.count is None or shown < args.count:
            started = clock.monotonic_s()
            readings = asker.ask(sessions, min(args.timeout_s, args.watch))
            heading = f"fixmesh status  {topology.path}  every {args.watch:g} s (Ctrl-C to stop)"
            print(f"{CLEAR_SCREEN}{heading}\n\n{render(topology, readings, args.json)}", file=stream, flush=True)
            shown += 1
            if args.count is None or shown < args.count:
                asker.wait(args.watch - (clock.monotonic_s() - started))
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        asker.close()


if __name__ == "__main__":
    sys.exit(main())
