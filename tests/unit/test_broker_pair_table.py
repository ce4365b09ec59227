"""The pair of brokers as a pure state machine: every row of the table, the client vote, and random histories.

Time is a plain number. ``EXPECTED`` is written out here again, row by row, from the rules in
``broker/pair.py``'s header, so that a changed row in the table is a failing test, not a silent change.
The Hypothesis test runs two brokers against each other through a link that can be cut, with clients
voting at either and brokers killed and restarted at random, and checks the two promises: no two
active brokers unless the link between them was cut, and exactly one active once they hear each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.pair import TRANSITIONS, Input, PairState, Role, State
from broker.protocol import HEARTBEAT_INTERVAL_S, LIVENESS, PEER_LIVENESS

P, B = Role.PRIMARY, Role.BACKUP
STARTING, ACTIVE, PASSIVE = State.STARTING, State.ACTIVE, State.PASSIVE
SILENCE_S = HEARTBEAT_INTERVAL_S * PEER_LIVENESS
T0 = 100.0

#: (role, state, input) -> next state, from the rules.
EXPECTED: dict[tuple[Role, State, Input], State] = {
    # The primary.
    (P, STARTING, Input.PEER_STARTING): ACTIVE,
    (P, STARTING, Input.PEER_ACTIVE): PASSIVE,
    (P, STARTING, Input.PEER_PASSIVE): ACTIVE,
    (P, STARTING, Input.PEER_DEAF): STARTING,
    (P, STARTING, Input.CLIENT_PEER_HEARD): STARTING,
    (P, STARTING, Input.CLIENT_PEER_SILENT): ACTIVE,
    (P, ACTIVE, Input.PEER_STARTING): ACTIVE,
    (P, ACTIVE, Input.PEER_ACTIVE): ACTIVE,
    (P, ACTIVE, Input.PEER_PASSIVE): ACTIVE,
    (P, ACTIVE, Input.PEER_DEAF): ACTIVE,
    (P, ACTIVE, Input.CLIENT_PEER_HEARD): ACTIVE,
    (P, ACTIVE, Input.CLIENT_PEER_SILENT): ACTIVE,
    (P, PASSIVE, Input.PEER_STARTING): ACTIVE,
    (P, PASSIVE, Input.PEER_ACTIVE): PASSIVE,
    (P, PASSIVE, Input.PEER_PASSIVE): ACTIVE,
    (P, PASSIVE, Input.PEER_DEAF): PASSIVE,
    (P, PASSIVE, Input.CLIENT_PEER_HEARD): PASSIVE,
    (P, PASSIVE, Input.CLIENT_PEER_SILENT): ACTIVE,
    # The backup: it takes the initiative only on a client's vote, and yields when both are active.
    (B, STARTING, Input.PEER_STARTING): PASSIVE,
    (B, STARTING, Input.PEER_ACTIVE): PASSIVE,
    (B, STARTING, Input.PEER_PASSIVE): PASSIVE,
    (B, STARTING, Input.PEER_DEAF): PASSIVE,
    (B, STARTING, Input.CLIENT_PEER_HEARD): STARTING,
    (B, STARTING, Input.CLIENT_PEER_SILENT): ACTIVE,
    (B, ACTIVE, Input.PEER_STARTING): ACTIVE,
    (B, ACTIVE, Input.PEER_ACTIVE): PASSIVE,
    (B, ACTIVE, Input.PEER_PASSIVE): ACTIVE,
    (B, ACTIVE, Input.PEER_DEAF): ACTIVE,
    (B, ACTIVE, Input.CLIENT_PEER_HEARD): ACTIVE,
    (B, ACTIVE, Input.CLIENT_PEER_SILENT): ACTIVE,
    (B, PASSIVE, Input.PEER_STARTING): PASSIVE,
    (B, PASSIVE, Input.PEER_ACTIVE): PASSIVE,
    (B, PASSIVE, Input.PEER_PASSIVE): PASSIVE,
    (B, PASSIVE, Input.PEER_DEAF): PASSIVE,
    (B, PASSIVE, Input.CLIENT_PEER_HEARD): PASSIVE,
    (B, PASSIVE, Input.CLIENT_PEER_SILENT): ACTIVE,
}

#: The peer's state and whether it hears us, for each peer input (a deaf peer: starting, not hearing us).
PEER_OF_INPUT = {Input.PEER_STARTING: (STARTING, True), Input.PEER_ACTIVE: (ACTIVE, True),
                 Input.PEER_PASSIVE: (PASSIVE, True), Input.PEER_DEAF: (STARTING, False)}
ME, PEER = "me", "peer"


def broker_in(role: Role, state: State, now_s: float = T0) -> PairState:
    """A broker of ``role`` in ``state``, reached the way a running broker reaches it, peer heard at ``now_s``."""
    pair = PairState(role, now_s - 1.0 if state is not STARTING else now_s, ME)
    if state is ACTIVE:
        assert pair.on_client(now_s - 1.0 + SILENCE_S)[0]
        pair.on_peer(role.other, PASSIVE, now_s, PEER, ME)
    elif state is PASSIVE:
        pair.on_peer(role.other, ACTIVE, now_s, PEER, ME)
    assert pair.state is state
    return pair


def test_the_table_has_every_role_state_and_input_and_says_why() -> None:
    assert set(TRANSITIONS) == {(r, s, i) for r in Role for s in State for i in Input}
    assert all(why for _, why in TRANSITIONS.values())


@pytest.mark.parametrize(("role", "state", "event"), sorted(EXPECTED, key=str), ids=str)
def test_each_row(role: Role, state: State, event: Input) -> None:
    pair = broker_in(role, state)
    expected = EXPECTED[(role, state, event)]
    if event in PEER_OF_INPUT:
        peer_state, hears_us = PEER_OF_INPUT[event]
        change = pair.on_peer(role.other, peer_state, T0 + 0.5, PEER, ME if hears_us else None)
    else:
        now_s = T0 + (SILENCE_S if event is Input.CLIENT_PEER_SILENT else 0.5)
        accepted, change = pair.on_client(now_s)
        assert accepted is (expected is ACTIVE), "a client is served exactly when the broker is active"
    assert pair.state is expected
    assert (change is None) is (expected is state)
    if change is not None:
        assert (change.old, change.new) == (state, expected) and change.why


def test_a_broker_that_starts_alone_waits_before_a_client_makes_it_active() -> None:
    pair = PairState(B, T0)
    assert pair.on_client(T0 + SILENCE_S - 0.01) == (False, None)
    accepted, change = pair.on_client(T0 + SILENCE_S)
    assert accepted and change is not None and (change.old, change.new) == (STARTING, ACTIVE)


def test_the_peer_counts_gone_before_the_clients_leave_it() -> None:
    """The order the fail-over depends on: clients leave a silent broker after LIVENESS intervals, its peer
    counts it gone after PEER_LIVENESS, so the clients' first hello at the peer is served."""
    assert PEER_LIVENESS < LIVENESS
    backup = broker_in(B, PASSIVE)
    heard_last_s = T0
    clients_arrive_s = heard_last_s + HEARTBEAT_INTERVAL_S * LIVENESS
    assert backup.on_client(clients_arrive_s)[0]


def test_a_primary_does_not_take_over_from_a_peer_that_does_not_hear_it() -> None:
    """The race the instance check closes: the primary comes back just as its backup, which counts it gone,
    takes a client's vote. The backup's passive word, sent before it heard the new primary, binds nothing."""
    backup = broker_in(B, PASSIVE)
    primary = PairState(P, T0 + 5, "p2")
    assert primary.on_peer(B, PASSIVE, T0 + 5.1, PEER, "p1") is None and primary.state is STARTING
    assert backup.on_client(T0 + 5.2)[0], "the backup counted the old primary gone and took the vote"
    change = primary.on_peer(B, ACTIVE, T0 + 5.3, PEER, None)
    assert change is not None and change.new is PASSIVE
    # Once the backup names the new primary's process, its word binds it again.
    other = PairState(P, T0, "p3")
    assert other.on_peer(B, PASSIVE, T0 + 1, PEER, "p3") is not None and other.state is ACTIVE
    assert other.heard(T0 + 1) == PEER and other.heard(T0 + 1 + SILENCE_S) is None


def test_a_peer_with_our_own_role_changes_nothing() -> None:
    pair = PairState(P, T0)
    assert pair.on_peer(P, ACTIVE, T0 + 5) is None
    assert pair.state is STARTING and pair.peer_state is None
    assert pair.peer_silent(T0 + SILENCE_S), "a misconfigured peer is not heard"


def test_the_peer_is_reported_lost_once_per_silence() -> None:
    pair = broker_in(B, PASSIVE)
    assert pair.peer_deadline() == T0 + SILENCE_S
    assert not pair.peer_lost(T0 + SILENCE_S - 0.01)
    assert pair.peer_lost(T0 + SILENCE_S)
    assert not pair.peer_lost(T0 + 10 * SILENCE_S) and pair.peer_deadline() is None
    pair.on_peer(P, ACTIVE, T0 + 20, PEER, ME)
    assert pair.peer_deadline() == T0 + 20 + SILENCE_S


def test_the_backup_yields_after_a_split_and_the_primary_keeps_serving() -> None:
    primary, backup = broker_in(P, ACTIVE), broker_in(B, PASSIVE)
    # The link between them is cut; a client that reaches only the backup votes there.
    assert backup.on_client(T0 + SILENCE_S)[0] and backup.state is ACTIVE
    # The link is back: each hears the other active.
    change = backup.on_peer(P, ACTIVE, T0 + 10, PEER, ME)
    assert change is not None and change.new is PASSIVE and "yields" in change.why
    assert primary.on_peer(B, ACTIVE, T0 + 10, PEER, ME) is None and primary.state is ACTIVE


# ------------------------------------------------------------------ random histories of two brokers


#: What one broker tells the other: its state, its process, the peer process it has heard lately.
Told = tuple[State, str, str | None]


@dataclass
class Node:
    pair: PairState
    alive: bool = True
    #: States on their way to the other broker, oldest first.
    outbox: list[Told] = field(default_factory=list)

    def tell(self, now_s: float) -> None:
        self.outbox.append((self.pair.state, self.pair.instance, self.pair.heard(now_s)))


class Cluster:
    """Two brokers, a link between them, a clock. ``tick`` delivers what is in flight, then lets a heartbeat
    interval pass and has each live broker tell its state (as the broker loop does)."""

    def __init__(self) -> None:
        self.now_s = T0
        self.starts = 0
        self.nodes = {P: Node(PairState(P, T0, "P0")), B: Node(PairState(B, T0, "B0"))}
        self.link_up = True
        self.ever_cut = False
        for node in self.nodes.values():
            node.tell(self.now_s)

    def both_active(self) -> bool:
        return all(n.alive and n.pair.active for n in self.nodes.values())

    def actives(self) -> int:
        return sum(1 for n in self.nodes.values() if n.alive and n.pair.active)

    def deliver(self, role: Role) -> None:
        """One state in flight from ``role`` reaches the other broker."""
        node, other = self.nodes[role], self.nodes[role.other]
        if not node.outbox:
            return
        state, instance, heard = node.outbox.pop(0)
        if self.link_up and other.alive:
            self._changed(other, other.pair.on_peer(role, state, self.now_s, instance, heard))

    def tick(self) -> None:
        for role in (P, B):
            while self.nodes[role].outbox:
                self.deliver(role)
        self.now_s += HEARTBEAT_INTERVAL_S
        for node in self.nodes.values():
            if node.alive:
                node.tell(self.now_s)

    def vote(self, role: Role) -> None:
        node = self.nodes[role]
        if node.alive:
            self._changed(node, node.pair.on_client(self.now_s)[1])

    def kill(self, role: Role) -> None:
        node = self.nodes[role]
        node.alive = False
        node.outbox.clear()

    def start(self, role: Role) -> None:
        node = self.nodes[role]
        self.starts += 1
        node.pair, node.alive = PairState(role, self.now_s, f"{role.value}{self.starts}"), True
        node.outbox = []
        node.tell(self.now_s)

    def cut(self) -> None:
        self.link_up, self.ever_cut = False, True
        for node in self.nodes.values():
            node.outbox.clear()

    def heal(self) -> None:
        self.link_up = True

    def _changed(self, node: Node, change: object) -> None:
        if change is not None and self.link_up:
            node.tell(self.now_s)


ACTIONS = st.sampled_from(["tick", "tick", "tick", "deliver P", "deliver B", "vote P", "vote B", "vote P",
                           "vote B", "kill P", "kill B", "start P", "start B", "cut", "heal"])


def run(cluster: Cluster, action: str) -> None:
    word, _, who = action.partition(" ")
    role = {"P": P, "B": B}.get(who)
    if word in ("deliver", "vote", "kill", "start"):
        assert role is not None
        getattr(cluster, word)(role)
    else:
        getattr(cluster, word)()


@settings(max_examples=3000)
@given(st.lists(ACTIONS, max_size=60), st.booleans())
def test_no_split_brain_without_a_cut_link_and_one_active_once_they_hear_each_other(
        actions: list[str], allow_cuts: bool) -> None:
    cluster = Cluster()
    for action in actions:
        if action in ("cut", "heal") and not allow_cuts:
            continue
        run(cluster, action)
        if not cluster.ever_cut:
            assert not cluster.both_active(), f"two active brokers with the link up, after {actions}"
    # Whatever happened: both brokers running and hearing each other end with exactly one active.
    cluster.heal()
    for role in (P, B):
        if not cluster.nodes[role].alive:
            cluster.start(role)
    for _ in range(3):
        cluster.tick()
    assert cluster.actives() == 1, f"{cluster.actives()} active brokers after healing, after {actions}"
    # ... and further votes change nothing.
    cluster.vote(P)
    cluster.vote(B)
    cluster.tick()
    assert cluster.actives() == 1


def test_the_table_in_the_docs_is_the_codes() -> None:
    """docs/bus.md shows the table as a matrix: one row per role and state, one column per input."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "bus.md").read_text(encoding="utf-8")
    table = text.split("<!-- pair-table -->")[1].split("<!-- /pair-table -->")[0].strip().splitlines()
    columns = [Input(c.strip().replace("peer deaf", Input.PEER_DEAF.value)) for c in table[0].strip("|").split("|")[1:]]
    shown: dict[tuple[Role, State, Input], State] = {}
    for line in table[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        role, state = (w.strip() for w in cells[0].split(","))
        for event, cell in zip(columns, cells[1:], strict=True):
            shown[(Role(role), State(state), event)] = State(cell)
    assert shown == {key: new for key, (new, _) in TRANSITIONS.items()}
