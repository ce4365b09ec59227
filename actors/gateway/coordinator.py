"""The coordinator: ``fixmesh coordinator --config T.yaml``.

It enforces the pairing rule of every Handler/Driven pair of the topology
(``actors.gateway.pair_policy``) by listening to the session actors' events and
sending them commands over the bus. It keeps no state that cannot be
rebuilt: at start, and every ``STATUS_EVERY_S`` afterwards, it asks every
session for its status, so a restart of the coordinator (kill -9 included),
of an actor, or a missed event changes nothing but a few seconds.

It publishes ``coordinator.started``, ``coordinator.command`` and
``pair.<handler>-<driven>.<what>`` events for operators.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from actors.gateway.bus import BusClient
from actors.gateway.pair_policy import Command, PairPolicy
from actors.gateway.topology import Topology, load_topology_or_report
from actors.shell import clock
from actors.shell.loop import Loop
from actors.shell.process import configure_logging, run_until_signalled
from broker import protocol
from broker.protocol import Envelope

log = logging.getLogger("fixmesh.coordinator")

NAME = "coordinator"
STATUS_EVERY_S = 2.0
TICK_S = 0.5


class Coordinator:
    def __init__(self, topology: Topology, driven_grace_s: float = 10.0) -> None:
        self.loop = Loop()
        self.policies = [PairPolicy(p.handler, p.driven, driven_grace_s) for p in topology.pairs]
        self.by_session = {name: policy for policy in self.policies
                           for name in (policy.handler_name, policy.driven_name)}
        broker = topology.broker
        self.bus = BusClient(NAME, broker.router, broker.xsub, xpub_endpoint=broker.xpub, on_event=self._on_event)
        self.bus.subscribe("session.")
        for sock in self.bus.sockets:
            self.loop.add_reader(sock, self._on_bus)
        self.loop.add_timer_source(self.bus)
        self.loop.add_timer_source(self)
        self._tick_due = 0.0
        self._status_due = 0.0
        #: Status commands in flight: command id -> session.
        self._asked: dict[str, str] = {}

    # ---------------------------------------------------------------- timers

    def next_deadline(self) -> float | None:
        return min(self._tick_due, self._status_due)

    def on_timer(self) -> None:
        now_s = clock.now().mono_s
        if now_s >= self._status_due:
            self._ask_status()
            self._status_due = now_s + STATUS_EVERY_S
        if now_s >= self._tick_due:
            for policy in self.policies:
                self._execute(policy, policy.reconcile(now_s))
            self._tick_due = now_s + TICK_S

    def _ask_status(self) -> None:
        for session in self.by_session:
            command_id = self.bus.command(session, {"cmd": "status"})
            if command_id is not None:
                self._asked[command_id] = session
        if len(self._asked) > 10 * len(self.by_session) + 100:
            self._asked.clear()  # answers that never came: sessions that are down

    # ------------------------------------------------------------------ bus

    def _on_bus(self) -> None:
        for env in self.bus.handle_readable():
            if env.kind == protocol.REPLY:
                self._on_reply(env)
            elif env.kind == protocol.UNDELIVERABLE:
                self._asked.pop(env.corr, None)
            elif env.kind in (protocol.DELIVER, protocol.COMMAND):
                log.warning("coordinator: unexpected %s from %s dropped", env.kind, env.src)

    def _on_reply(self, env: Envelope) -> None:
        body = env.body if isinstance(env.body, dict) else {}
        session = self._asked.pop(env.corr, None)
        status = body.get("status")
        if not isinstance(status, dict):
            if body.get("ok") is False:
                log.warning("coordinator: %s answered %s", env.src, body.get("error"))
            return
        name = session or str(status.get("name", env.src))
        policy = self.by_session.get(name)
        if policy is None:
            return
        commands = policy.on_state(name, str(status.get("state")), str(status.get("reason", "")),
                                   clock.now().mono_s, str(status.get("incarnation", "")),
                                   _version(status.get("state_changes")))
        self._execute(policy, commands)

    def _on_event(self, topic: str, event: dict[str, Any]) -> None:
        parts = topic.split(".")
        if len(parts) != 3:
            return
        kind, name, what = parts
        policy = self.by_session.get(name)
        if policy is None:
            return
        now_s = clock.now().mono_s
        if kind == "session" and what == "state":
            commands = policy.on_state(name, str(event.get("new")), str(event.get("reason", "")), now_s,
                                       str(event.get("incarnation", "")), _version(event.get("state_changes")))
        elif kind == "actor" and what in ("up", "down"):
            commands = policy.on_actor(name, what == "up", now_s)
            if what == "up":
                self._status_due = 0.0  # ask the new process where it stands
        else:
            return
        self._execute(policy, commands)

    def _execute(self, policy: PairPolicy, commands: list[Command]) -> None:
        for command in commands:
            log.info("pair %s: %s %s (%s)", policy.name, command.cmd, command.session, command.why)
            sent = self.bus.command(command.session, command.body())
            self.bus.publish(f"pair.{policy.name}.{command.cmd}", {
                "session": command.session, "cmd": command.cmd, "text": command.text, "why": command.why,
                "sent": sent is not None})

    # --------------------------------------------------------------- running

    def run(self) -> int:
        self.bus.publish("coordinator.started", {"pairs": [p.name for p in self.policies]})
        log.info("coordinator: %d pair(s): %s", len(self.policies), ", ".join(p.name for p in self.policies))
        run_until_signalled(self.loop)
        self.bus.close()
        return 0


def _version(value: Any) -> int | None:
    """A report's count of state changes; None from an actor that does not send one."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fixmesh coordinator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the topology YAML file")
    parser.add_argument("--driven-grace-s", type=float, default=10.0,
                        help="how long a Driven's process may be gone before its Handler's user is logged out")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    topology = load_topology_or_report(args.config, "fixmesh coordinator")
    if topology is None:
        return 2
    try:
        return Coordinator(topology, args.driven_grace_s).run()
    except Exception:
        log.exception("coordinator: unexpected error; exiting for the supervisor to restart it")
        return 1


if __name__ == "__main__":
    sys.exit(main())
