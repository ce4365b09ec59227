"""Where everything of a chaos run runs, and the settings of one run.

Five namespace hosts (``bench.netns``), every hop of an order crossing hosts:

    hub     198.18.N.1  the primary broker and the coordinator
    spare   198.18.N.2  the backup broker, a second coordinator (coordinator-b) and the monitor
    edge    198.18.N.3  the Handlers handler1..K; user i logs on at port 9800+i
    exch    198.18.N.4  the Drivens driven1..K; driven i connects to venue i
    street  198.18.N.5  the witnesses: users 1..K (``bench.chaos.user``) and venues 1..K (``bench.chaos.venue``,
                        port 9900+i), each its own process, started by the run (not by a supervisord)

    user i (street) -> handler i (edge) -> active broker (hub or spare) -> driven i (exch) -> venue i (street)

The four gateway hosts run the supervisord configuration ``fixmesh deploy
render --all`` writes for them (``bench.deployment``), on a bus with keys,
each host with only the keys its programs use. The Drivens retry for ever
(``reconnect_max_tries: unlimited``) every 0.5 s, so a venue cut off for a
while is reconnected, not given up; the coordinators log a user out when
its Driven has been down 5 s (``--driven-grace-s 5``), which the users
answer by logging on again (``--reconnect-after-logout``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Template

HUB, SPARE, EDGE, EXCH, STREET = "hub", "spare", "edge", "exch", "street"
HOSTS = (HUB, SPARE, EDGE, EXCH, STREET)
#: The hosts supervisord runs programs on: the ones a fault may kill or lose.
GATEWAY_HOSTS = (HUB, SPARE, EDGE, EXCH)
#: Which broker program runs on which host.
BROKER_HOSTS = {"broker": HUB, "broker-backup": SPARE}
HANDLER_PORT = 9800
VENUE_PORT = 9900
PASSWORD = "chaos-run"
#: HeartBtInt of every session (the users propose it; the Drivens' comes from the topology).
HEARTBEAT_S = 10
DRIVEN_GRACE_S = 5

#: The topology as ``bench.deployment`` takes it: ``{host}`` is a host's address, YAML's braces doubled;
#: ``$name`` is filled here first (``string.Template``).
TOPOLOGY = Template("""\
hosts:
  hub: {{address: {hub}}}
  spare: {{address: {spare}}}
  edge: {{address: {edge}}}
  exch: {{address: {exch}}}
broker:
  runs_on: hub
  router: 'tcp://{hub}:5570'
  xsub: 'tcp://{hub}:5571'
  xpub: 'tcp://{hub}:5572'
  peer: 'tcp://{hub}:5573'
  backup: {{runs_on: spare, router: 'tcp://{spare}:5570', xsub: 'tcp://{spare}:5571', xpub: 'tcp://{spare}:5572',
           peer: 'tcp://{spare}:5573'}}
bus: {{keys_dir: keys, subscribers: [watcher]}}
defaults:
  heartbeat_interval: $heartbeat
  store: {{path: var/store}}
sessions:
$sessions
pairs:
$pairs
programs:
  coordinator: {{runs_on: hub, command: coordinator --config topology.yaml --driven-grace-s $grace}}
  coordinator-b:
    runs_on: spare
    command: coordinator --config topology.yaml --driven-grace-s $grace --name coordinator-b
  monitor: {{runs_on: spare, key: watcher}}
""")

SESSIONS = Template("""\
  handler$i: {{role: handler, runs_on: edge, sender_comp_id: GATEWAY, target_comp_id: TRADER$i, host: {edge},
              port: $handler_port}}
  driven$i: {{role: driven, runs_on: exch, sender_comp_id: GATEWAY, target_comp_id: VENUE$i, host: {street},
             port: $venue_port, reconnect_interval: 0.5, reconnect_max_tries: unlimited, connect_timeout: 1}}""")


@dataclass(frozen=True)
class Plan:
    """One run: how many pairs, how fast, how many faults of which kinds, for how long, from which seed."""

    pairs: int = 4
    #: Orders per second from each user.
    rate: float = 20.0
    #: Faults are injected until this many seconds have passed or ``faults`` were injected, whichever first.
    duration_s: float | None = 120.0
    faults: int | None = None
    #: The mean pause from the end of one fault to the start of the next (uniform in 0.5x..1.5x).
    fault_interval_s: float = 2.0
    seed: int = 1
    #: Relative weights of the fault kinds (``bench.chaos.faults.KINDS``).
    weights: dict[str, float] = field(default_factory=lambda: {"kill": 6.0, "host": 2.0, "link": 2.0})
    #: Orders keep flowing this long after the last fault, so the last fault's recovery is measured too.
    tail_s: float = 5.0
    #: At most this long for every order and ExecutionReport to arrive once the flow has stopped.
    settle_s: float = 120.0

    def __post_init__(self) -> None:
        if not 1 <= self.pairs <= 90:
            raise ValueError(f"pairs: 1 to 90, not {self.pairs}")
        if self.rate <= 0:
            raise ValueError("rate: orders per second per user, more than 0")
        if self.duration_s is None and self.faults is None:
            raise ValueError("give a duration, a number of faults, or both")
        if self.fault_interval_s < 0 or self.settle_s <= 0 or self.tail_s < 0:
            raise ValueError("fault interval and tail must be 0 or more, settle more than 0")


def topology_text(pairs: int) -> str:
    """The topology, with ``{host}`` placeholders for each host's address (``bench.deployment`` fills them)."""
    sessions = "\n".join(SESSIONS.substitute(i=i, handler_port=HANDLER_PORT + i, venue_port=VENUE_PORT + i)
                         for i in range(1, pairs + 1))
    listed = "\n".join(f"  - {{{{handler: handler{i}, driven: driven{i}}}}}" for i in range(1, pairs + 1))
    return TOPOLOGY.substitute(heartbeat=HEARTBEAT_S, grace=DRIVEN_GRACE_S, sessions=sessions, pairs=listed)


def programs(pairs: int) -> dict[str, tuple[str, ...]]:
    """The programs each gateway host's supervisord runs."""
    return {HUB: ("broker", "coordinator"), SPARE: ("broker-backup", "coordinator-b", "monitor"),
            EDGE: tuple(f"handler{i}" for i in range(1, pairs + 1)),
            EXCH: tuple(f"driven{i}" for i in range(1, pairs + 1))}


def keys(pairs: int) -> dict[str, tuple[str, ...]]:
    """Each host's key files: each secret only where it is used, every public key on both brokers' hosts."""
    sessions = [f"{role}{i}" for i in range(1, pairs + 1) for role in ("handler", "driven")]
    brokers = ("broker.key", "broker.key_secret", "coordinator.key", "coordinator.key_secret", "watcher.key",
               *(f"{name}.key" for name in sessions))
    return {HUB: brokers, SPARE: (*brokers, "watcher.key_secret"),
            EDGE: ("broker.key", *(f"handler{i}.key{s}" for i in range(1, pairs + 1) for s in ("", "_secret"))),
            EXCH: ("broker.key", *(f"driven{i}.key{s}" for i in range(1, pairs + 1) for s in ("", "_secret")))}


def pair_of(program: str) -> int | None:
    """The pair a session actor belongs to (``handler3`` -> 3); None for the other programs."""
    for role in ("handler", "driven"):
        if program.startswith(role) and program[len(role):].isdigit():
            return int(program[len(role):])
    return None
