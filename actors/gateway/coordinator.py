"""The coordinator: ``fixmesh coordinator --config T.yaml``.

It enforces the pairing rule of every Handler/Driven pair of the topology
(``actors.gateway.pair_policy``) by listening to the session actors' events and
sending them commands over the bus. It keeps no state that cannot be
rebuilt: at start, and every ``STATUS_EVERY_S`` afterwards, it asks every
session for its status, so a restart of the coordinator (kill -9 included),
of an actor, or a missed event changes nothing but a few seconds.

A state event that arrives while the other half of its pair is still
unknown (a coordinator that has just started: its first status requests can
go out before the broker has welcomed it, and are then lost) makes it ask
that half at once rather than at the next poll, so a user's Logon connects
the Driven within milliseconds, not up to ``STATUS_EVERY_S`` later.

It publishes ``coordinator.started`` and, for every command it sends,
``pair.<handler>-<driven>.<cmd>`` for operators (``actors.gateway.vocabulary``).

On a bus with keys it joins with the key ``coordinator`` (``bus.keys_dir``),
which may command the paired sessions and publish those topics, nothing more.

Two coordinators (or more) may run, each under a name of its own
(``--name coordinator-b`` on another host), and never command at once: each
asks the broker for the lease ``coordinator`` in its hello, the broker
grants it to one live coordinator at a time and forwards commands from that
one only (``broker.routing.Leases``; any other coordinator's command is
answered ``undeliverable``, reason ``standby``). A coordinator without the
lease stands by: it asks nothing and commands nothing. When it is granted
the lease (its holder went silent for the broker's liveness limit, or the
broker changed) it starts as a restarted coordinator does, from fresh
policies and a status request to every session, and publishes
``coordinator.active``; one that loses the lease publishes
``coordinator.standby`` and stops. It follows the active broker of a pair
like every bus client (``broker.backup``).

SIGHUP makes it read the topology file again and take its pairs from it
(``fixmesh deploy reload`` sends it): a new pair gets a fresh policy and its
halves are asked for their status at once, a removed pair is forgotten, and
the pairs that stay keep their policies, so nothing they do is interrupted.
It publishes ``coordinator.reloaded`` with what changed. A file that does not
load leaves the pairs as they were (the error is logged). Anything else that
changed in the file (the broker, the keys) takes a restart; ``reload``
restarts it then instead.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import Any

from actors.gateway.bus import BusClient
from actors.gateway.pair_policy import PairCommand, PairPolicy
from actors.gateway.program import start, topology_parser
from actors.gateway.topology import COORDINATOR_KEY, COORDINATOR_NAME_PREFIX, ConfigError, Topology, load_topology
from actors.gateway.vocabulary import (
    COORDINATOR_STARTED,
    SESSION_TOPICS,
    STATE,
    CoordinatorStarted,
    Malformed,
    PairCommandEvent,
    Refused,
    StateEvent,
    Status,
    pair_topic,
    parse_reply,
    parse_session_topic,
)
from actors.shell import clock
from actors.shell.loop import Loop
from actors.shell.process import run_until_signalled
from broker import protocol
from broker.protocol import Envelope

log = logging.getLogger("fixmesh.coordinator")

NAME = COORDINATOR_KEY
#: The lease that only one coordinator holds at a time: the right to command the sessions.
LEASE = COORDINATOR_KEY
#: Published by the coordinator that takes the lease, and by one that loses it.
COORDINATOR_ACTIVE = "coordinator.active"
COORDINATOR_STANDBY = "coordinator.standby"
#: Published after SIGHUP made the coordinator take its pairs from the topology file again.
COORDINATOR_RELOADED = "coordinator.reloaded"
STATUS_EVERY_S = 2.0
TICK_S = 0.5
#: An unknown half is asked for its status at most this often outside the regular poll.
ASK_UNKNOWN_EVERY_S = 0.1


class Coordinator:
    def __init__(self, topology: Topology, driven_grace_s: float = 10.0, name: str = NAME,
                 handler_grace_s: float = 10.0) -> None:
        self.loop = Loop()
        self.name = name
        self.topology = topology
        self.driven_grace_s = driven_grace_s
        self.handler_grace_s = handler_grace_s
        #: The pairs' policies while this coordinator holds the lease; empty while it stands by.
        self.policies: list[PairPolicy] = []
        self.by_session: dict[str, PairPolicy] = {}
        #: True while this coordinator holds the lease and commands.
        self.active = False
        broker = topology.broker
        self.bus = BusClient(name, broker.router, broker.xsub, xpub_endpoint=broker.xpub, on_event=self._on_event,
                             curve=topology.bus_keys(COORDINATOR_KEY), backup=broker.backup_address, lease=LEASE)
        self.bus.subscribe(SESSION_TOPICS)
        for sock in self.bus.sockets:
            self.loop.add_reader(sock, self._on_bus)
        self.loop.add_timer_source(self.bus)
        self.loop.add_timer_source(self)
        self._tick_due = 0.0
        self._status_due = 0.0
        #: Status commands in flight: command id -> session.
        self._asked: dict[str, str] = {}
        #: When each session was last asked outside the regular poll (monotonic seconds).
        self._asked_early_s: dict[str, float] = {}
        #: Set by SIGHUP: read the topology's pairs again at the next timer.
        self._reread = False

    # ---------------------------------------------------------------- timers

    def next_deadline(self) -> float | None:
        return min(self._tick_due, self._status_due)

    def on_timer(self) -> None:
        if self._reread:
            self._reread = False
            self.reread_pairs()
        self._follow_lease()
        if not self.active:
            self._tick_due = self._status_due = clock.now().mono_s + TICK_S
            return
        now_s = clock.now().mono_s
        if now_s >= self._status_due:
            self._ask_status()
            self._status_due = now_s + STATUS_EVERY_S
        if now_s >= self._tick_due:
            for policy in self.policies:
                self._execute(policy, policy.reconcile(now_s))
            self._tick_due = now_s + TICK_S

    def _ask_status(self, sessions: list[str] | None = None) -> None:
        for session in self.by_session if sessions is None else sessions:
            command_id = self.bus.command(session, Status().to_body())
            if command_id is not None:
                self._asked[command_id] = session
        if len(self._asked) > 10 * len(self.by_session) + 100:
            self._asked.clear()  # answers that never came: sessions that are down

    def _ask_unknown(self, policy: PairPolicy) -> None:
        """Ask at once for the status of a half the policy has not heard of yet (not one known to be down)."""
        now_s = clock.now().mono_s
        unknown = [half.name for half in (policy.handler, policy.driven)
                   if half.state is None and half.gone_since_s is None
                   and now_s - self._asked_early_s.get(half.name, -1e9) >= ASK_UNKNOWN_EVERY_S]
        for name in unknown:
            self._asked_early_s[name] = now_s
        if unknown:
            self._ask_status(unknown)

    # ------------------------------------------------------------------ bus

    def _on_bus(self) -> None:
        for env in self.bus.handle_readable():
            if env.kind == protocol.REPLY:
                self._on_reply(env)
            elif env.kind == protocol.UNDELIVERABLE:
                self._asked.pop(env.corr, None)
            elif env.kind in (protocol.DELIVER, protocol.COMMAND):
                log.warning("coordinator: unexpected %s from %s dropped", env.kind, env.src)
        self._follow_lease()

    # ------------------------------------------------------------------ the lease

    def _follow_lease(self) -> None:
        """Command while the broker says this coordinator holds the lease; stand by otherwise."""
        held = self.bus.lease_held
        if held and not self.active:
            self._take_over()
        elif not held and self.active:
            self._stand_by()

    def _take_over(self) -> None:
        """As a restarted coordinator: fresh policies, every session asked where it stands."""
        self.active = True
        self.policies = [self._policy(p.handler, p.driven) for p in self.topology.pairs]
        self.by_session = {name: policy for policy in self.policies
                           for name in (policy.handler_name, policy.driven_name)}
        self._asked.clear()
        self._asked_early_s.clear()
        self._tick_due = self._status_due = 0.0
        log.warning("coordinator %s holds the lease: it commands %d pair(s) now", self.name, len(self.policies))
        self.bus.publish(COORDINATOR_ACTIVE, {"name": self.name, "pairs": [p.name for p in self.policies]})

    # ------------------------------------------------------------ the pairs

    def _policy(self, handler: str, driven: str) -> PairPolicy:
        return PairPolicy(handler, driven, self.driven_grace_s, self.handler_grace_s)

    def _on_sighup(self, _signum: int, _frame: FrameType | None) -> None:
        """Only a flag, and the next timer now: the loop does the work (the signal wakes its poll)."""
        self._reread = True
        self._tick_due = 0.0

    def reread_pairs(self) -> None:
        """Take the pairs from the topology file again: new ones start, removed ones are forgotten, the rest go on."""
        try:
            topology = load_topology(self.topology.path)
        except ConfigError as exc:
            log.error("coordinator %s: the topology was not read again (%s); the %d pair(s) stay as they were",
                      self.name, exc, len(self.topology.pairs))
            return
        old = {(p.handler, p.driven) for p in self.topology.pairs}
        new = {(p.handler, p.driven) for p in topology.pairs}
        added = [p.name for p in topology.pairs if (p.handler, p.driven) not in old]
        removed = [p.name for p in self.topology.pairs if (p.handler, p.driven) not in new]
        self.topology = topology
        if self.active:
            kept = {(p.handler_name, p.driven_name): p for p in self.policies}
            self.policies = [kept.get((p.handler, p.driven)) or self._policy(p.handler, p.driven)
                             for p in topology.pairs]
            self.by_session = {name: policy for policy in self.policies
                               for name in (policy.handler_name, policy.driven_name)}
            fresh = [name for p in topology.pairs if (p.handler, p.driven) not in old for name in (p.handler, p.driven)]
            if fresh:
                self._ask_status(fresh)
        log.warning("coordinator %s: pairs read again from %s: %d pair(s); added %s; removed %s", self.name,
                    topology.path, len(topology.pairs), ", ".join(added) or "none", ", ".join(removed) or "none")
        self.bus.publish(COORDINATOR_RELOADED, {"name": self.name, "pairs": [p.name for p in topology.pairs],
                                                "added": added, "removed": removed})

    def _stand_by(self) -> None:
        self.active = False
        self.policies = []
        self.by_session = {}
        self._asked.clear()
        log.warning("coordinator %s does not hold the lease: it stands by and commands nothing", self.name)
        self.bus.publish(COORDINATOR_STANDBY, {"name": self.name})

    def _on_reply(self, env: Envelope) -> None:
        session = self._asked.pop(env.corr, None)
        reply = parse_reply(env.body)
        if isinstance(reply, Refused):
            log.warning("coordinator: %s answered %s", env.src, reply.error)
            return
        if isinstance(reply, Malformed):
            log.warning("coordinator: %s sent a malformed reply: %s", env.src, reply.error)
            return
        name = session or reply.name
        policy = self.by_session.get(name)
        if policy is None:
            return
        commands = policy.on_state(name, reply.state, reply.reason, clock.now().mono_s, reply.incarnation,
                                   reply.state_changes)
        self._execute(policy, commands)

    def _on_event(self, topic: str, event: dict[str, Any]) -> None:
        session_topic = parse_session_topic(topic)
        if session_topic is not None:
            name, what = session_topic
            policy = self.by_session.get(name)
            if policy is None or what != STATE:
                return
            state = StateEvent.from_body(event)
            if isinstance(state, Malformed):
                log.warning("coordinator: %s dropped: %s", topic, state.error)
                return
            commands = policy.on_state(name, state.new, state.reason, clock.now().mono_s, state.incarnation,
                                       state.state_changes)
            self._ask_unknown(policy)
        else:
            actor_topic = protocol.parse_actor_topic(topic)
            if actor_topic is None:
                return
            name, what = actor_topic
            policy = self.by_session.get(name)
            if policy is None or what not in ("up", "down"):
                return
            commands = policy.on_actor(name, what == "up", clock.now().mono_s)
            if what == "up":
                self._status_due = 0.0  # ask the new process where it stands
        self._execute(policy, commands)

    def _execute(self, policy: PairPolicy, commands: list[PairCommand]) -> None:
        if not self.active:
            return
        for command in commands:
            log.info("pair %s: %s %s (%s)", policy.name, command.cmd, command.session, command.why)
            sent = self.bus.command(command.session, command.command.to_body())
            event = PairCommandEvent(command.session, command.cmd, command.text, command.why, sent is not None)
            self.bus.publish(pair_topic(policy.name, command.cmd), event.to_body())

    # --------------------------------------------------------------- running

    def run(self) -> int:
        pairs = tuple(p.name for p in self.topology.pairs)
        self.bus.publish(COORDINATOR_STARTED, CoordinatorStarted(pairs).to_body())
        log.info("coordinator %s: %d pair(s): %s; it commands once the broker grants it the lease %s", self.name,
                 len(pairs), ", ".join(pairs), LEASE)
        previous = signal.signal(signal.SIGHUP, self._on_sighup)
        try:
            run_until_signalled(self.loop)
        finally:
            signal.signal(signal.SIGHUP, previous)
        self.bus.close()
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = topology_parser("fixmesh coordinator", __doc__)
    parser.add_argument("--driven-grace-s", type=float, default=10.0,
                        help="how long a Driven's process may be gone before its Handler's user is logged out")
    parser.add_argument("--handler-grace-s", type=float, default=10.0,
                        help="how long a Handler's process may be silent before its Driven leaves the venue "
                             "(a restarted Handler reports its state at once)")
    parser.add_argument("--name", default=NAME,
                        help=f"the coordinator's name on the bus (default {NAME}); a second coordinator needs one of "
                             f"its own, {COORDINATOR_NAME_PREFIX}<something>")
    started = start(parser, argv)
    if started is None:
        return 2
    args, topology = started
    if args.name != NAME and not (args.name.startswith(COORDINATOR_NAME_PREFIX) and len(args.name) > len(NAME) + 1):
        print(f"fixmesh coordinator: --name {args.name!r}: a coordinator's name is {NAME} or starts with "
              f"{COORDINATOR_NAME_PREFIX} (the names its key may use)", file=sys.stderr)
        return 2
    try:
        return Coordinator(topology, args.driven_grace_s, args.name, args.handler_grace_s).run()
    except ConfigError as exc:  # a missing or unreadable bus key
        print(f"fixmesh coordinator: {exc}", file=sys.stderr)
        return 2
    except Exception:
        log.exception("coordinator: unexpected error; exiting for the supervisor to restart it")
        return 1


if __name__ == "__main__":
    sys.exit(main())
