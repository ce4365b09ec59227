"""Two brokers as a pair, primary and backup: which one serves, as one pure table (time is an argument).

Each broker of a pair runs this state machine; the broker loop feeds it what
its peer says (a ``PeerState`` every ``HEARTBEAT_INTERVAL_S`` on the pair's
own link) and every client's ``hello``, and serves clients only while it is
ACTIVE. Nothing here reads a clock or touches a socket (STYLE principles 2
and 7; ``broker/routing.py`` is the model).

States: STARTING (not yet decided: it has not heard its peer since it
started), ACTIVE (serves the clients) and PASSIVE (answers every client
``passive``: go to the other broker). The role, PRIMARY or BACKUP, is fixed
for the life of the process.

Rules (the whole of it; ``TRANSITIONS`` is the table):

* **Peer heard.** The peer's state decides, and ties go to the primary:
  both starting, or both passive, the primary becomes active and the
  backup passive; whoever hears an active peer (while not active itself)
  becomes passive; a passive primary that hears its peer starting (the
  active backup restarted and lost its clients) becomes active.
* **Only a peer that hears us is bound by us.** Each state a broker tells
  names the peer process (``instance``) it has heard within
  ``peer_silence_s``, if any. A starting or passive peer that has not heard
  this broker's process yet could still take a client's vote (it thinks us
  gone), so the primary takes no initiative on its word (``PEER_DEAF``):
  it waits for the next state, which names it once the peer hears it. A
  primary that comes back just as its backup takes a client's vote so
  becomes passive instead of a second active broker.
* **The client vote.** A broker that is not active becomes active on a
  client's ``hello`` only when its peer has been silent for
  ``PEER_LIVENESS`` intervals (``peer_silence_s``); otherwise it refuses the
  client. Clients come to a broker only after they lost the other one for
  ``LIVENESS`` intervals (more than ``PEER_LIVENESS``), so a peer lost by
  the clients too is already counted gone when they come. A cut between the
  two brokers alone makes nobody active: no client comes to the passive
  one while the active one serves them.
* **No split brain after a heal.** Two actives (the link between the
  brokers was cut and clients voted on both sides) resolve as soon as they
  hear each other: the backup yields, becomes passive and sends its clients
  away (``passive``); the primary stays active.
* **Starting.** Until a broker has heard its peer, the peer counts as heard
  at the start: a broker that starts alone waits ``peer_silence_s`` before a
  client may make it active.
* A ``PeerState`` from a peer with our own role is a misconfiguration: it
  changes nothing, and the caller logs it.

With the link between the brokers up and no client voting for a broker whose
peer is silent, at most one broker is active after each exchange, and one
is active once both have heard each other
(``tests/unit/test_broker_pair_table.py`` checks every row and, with Hypothesis,
random histories of two brokers).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from broker import protocol


class Role(Enum):
    PRIMARY = protocol.ROLE_PRIMARY
    BACKUP = protocol.ROLE_BACKUP

    @property
    def other(self) -> Role:
        return Role.BACKUP if self is Role.PRIMARY else Role.PRIMARY


class State(Enum):
    STARTING = protocol.STATE_STARTING
    ACTIVE = protocol.STATE_ACTIVE
    PASSIVE = protocol.STATE_PASSIVE


class Input(Enum):
    """What can happen to a broker of a pair."""

    #: The peer is starting (passive), and hears this broker: it takes no client's vote while it does.
    PEER_STARTING = "peer starting"
    PEER_ACTIVE = "peer active"
    PEER_PASSIVE = "peer passive"
    #: The peer is starting or passive and has not heard this broker's process: it may take a client's vote.
    PEER_DEAF = "peer starting or passive, not hearing us"
    #: A client's hello while the peer was heard within ``peer_silence_s``.
    CLIENT_PEER_HEARD = "client, peer heard"
    #: A client's hello while the peer has been silent for ``peer_silence_s`` or longer: the client vote.
    CLIENT_PEER_SILENT = "client, peer silent"


PEER_INPUTS = {State.STARTING: Input.PEER_STARTING, State.ACTIVE: Input.PEER_ACTIVE,
               State.PASSIVE: Input.PEER_PASSIVE}

P, B = Role.PRIMARY, Role.BACKUP
STARTING, ACTIVE, PASSIVE = State.STARTING, State.ACTIVE, State.PASSIVE
In = Input

#: (role, state, input) -> (next state, why). Every combination is here; a client input is accepted exactly
#: when the next state is ACTIVE.
TRANSITIONS: dict[tuple[Role, State, Input], tuple[State, str]] = {
    (P, STARTING, In.PEER_STARTING): (ACTIVE, "both brokers starting: the primary serves"),
    (P, STARTING, In.PEER_ACTIVE): (PASSIVE, "the backup is active: it keeps the clients"),
    (P, STARTING, In.PEER_PASSIVE): (ACTIVE, "the backup is passive: the primary serves"),
    (P, STARTING, In.PEER_DEAF): (STARTING, "the backup does not hear the primary yet: wait for it"),
    (P, STARTING, In.CLIENT_PEER_HEARD): (STARTING, "a client came before the backup's state: refused"),
    (P, STARTING, In.CLIENT_PEER_SILENT): (ACTIVE, "a client came and the backup is silent"),
    (P, ACTIVE, In.PEER_STARTING): (ACTIVE, "the backup started: it goes passive"),
    (P, ACTIVE, In.PEER_ACTIVE): (ACTIVE, "both active: the backup yields"),
    (P, ACTIVE, In.PEER_PASSIVE): (ACTIVE, "the backup is passive"),
    (P, ACTIVE, In.PEER_DEAF): (ACTIVE, "the backup does not hear the primary yet"),
    (P, ACTIVE, In.CLIENT_PEER_HEARD): (ACTIVE, "a client"),
    (P, ACTIVE, In.CLIENT_PEER_SILENT): (ACTIVE, "a client"),
    (P, PASSIVE, In.PEER_STARTING): (ACTIVE, "the backup restarted and lost its clients: the primary serves"),
    (P, PASSIVE, In.PEER_ACTIVE): (PASSIVE, "the backup is active"),
    (P, PASSIVE, In.PEER_PASSIVE): (ACTIVE, "both passive: the primary serves"),
    (P, PASSIVE, In.PEER_DEAF): (PASSIVE, "the backup does not hear the primary yet: wait for it"),
    (P, PASSIVE, In.CLIENT_PEER_HEARD): (PASSIVE, "the backup is active: client refused"),
    (P, PASSIVE, In.CLIENT_PEER_SILENT): (ACTIVE, "fail-over: a client came and the backup is silent"),
    (B, STARTING, In.PEER_STARTING): (PASSIVE, "both brokers starting: the primary serves"),
    (B, STARTING, In.PEER_ACTIVE): (PASSIVE, "the primary is active"),
    (B, STARTING, In.PEER_PASSIVE): (PASSIVE, "the primary is passive: it takes over, the backup waits"),
    (B, STARTING, In.PEER_DEAF): (PASSIVE, "the primary is not active: it takes over once it is heard"),
    (B, STARTING, In.CLIENT_PEER_HEARD): (STARTING, "a client came before the primary's state: refused"),
    (B, STARTING, In.CLIENT_PEER_SILENT): (ACTIVE, "a client came and the primary is silent"),
    (B, ACTIVE, In.PEER_STARTING): (ACTIVE, "the primary started: it goes passive"),
    (B, ACTIVE, In.PEER_ACTIVE): (PASSIVE, "both active: the backup yields and sends its clients to the primary"),
    (B, ACTIVE, In.PEER_PASSIVE): (ACTIVE, "the primary is passive"),
    (B, ACTIVE, In.PEER_DEAF): (ACTIVE, "the primary started: it goes passive"),
    (B, ACTIVE, In.CLIENT_PEER_HEARD): (ACTIVE, "a client"),
    (B, ACTIVE, In.CLIENT_PEER_SILENT): (ACTIVE, "a client"),
    (B, PASSIVE, In.PEER_STARTING): (PASSIVE, "the primary started: it takes over"),
    (B, PASSIVE, In.PEER_ACTIVE): (PASSIVE, "the primary is active"),
    (B, PASSIVE, In.PEER_PASSIVE): (PASSIVE, "both passive: the primary takes over"),
    (B, PASSIVE, In.PEER_DEAF): (PASSIVE, "the primary takes over once it is heard"),
    (B, PASSIVE, In.CLIENT_PEER_HEARD): (PASSIVE, "the primary is active: client refused"),
    (B, PASSIVE, In.CLIENT_PEER_SILENT): (ACTIVE, "fail-over: a client came and the primary is silent"),
}


@dataclass(frozen=True, slots=True)
class Change:
    """A change of state, for the log and the ``broker.switch`` event."""

    old: State
    new: State
    why: str


class PairState:
    """One broker's side of a pair: its role, its state, and when it last heard its peer (monotonic s)."""

    def __init__(self, role: Role, now_s: float, instance: str = "",
                 peer_silence_s: float = protocol.HEARTBEAT_INTERVAL_S * protocol.PEER_LIVENESS) -> None:
        """``instance``: this broker process's token, which the peer names once it hears it."""
        if peer_silence_s <= 0:
            raise ValueError("peer_silence_s must be positive")
        self.role = role
        self.instance = instance
        self.state = State.STARTING
        self.peer_silence_s = peer_silence_s
        #: The peer's last reported state and process; None until heard.
        self.peer_state: State | None = None
        self.peer_instance: str | None = None
        # The peer counts as heard at the start: a broker that starts alone does not take clients at once.
        self._peer_heard_s = now_s
        self._peer_lost_told = False

    @property
    def active(self) -> bool:
        return self.state is State.ACTIVE

    def peer_silent(self, now_s: float) -> bool:
        return now_s - self._peer_heard_s >= self.peer_silence_s

    def on_peer(self, role: Role, state: State, now_s: float, instance: str = "",
                heard: str | None = None) -> Change | None:
        """The peer (process ``instance``) said it is ``state`` and has heard ``heard`` (None: nobody lately);
        the change this makes, if any. A peer of our own role changes nothing."""
        if role is self.role:
            return None
        self._peer_heard_s = max(self._peer_heard_s, now_s)
        self._peer_lost_told = False
        self.peer_state = state
        self.peer_instance = instance
        if state is not State.ACTIVE and heard != self.instance:
            return self._step(Input.PEER_DEAF)
        return self._step(PEER_INPUTS[state])

    def heard(self, now_s: float) -> str | None:
        """The peer process this broker has heard within ``peer_silence_s`` (told with its state), else None."""
        return None if self.peer_instance is None or self.peer_silent(now_s) else self.peer_instance

    def on_client(self, now_s: float) -> tuple[bool, Change | None]:
        """A client's hello: whether to serve it, and the change this makes, if any."""
        change = self._step(Input.CLIENT_PEER_SILENT if self.peer_silent(now_s) else Input.CLIENT_PEER_HEARD)
        return self.state is State.ACTIVE, change

    def peer_lost(self, now_s: float) -> bool:
        """True once when the peer has fallen silent (for the log); again only after it was heard again."""
        if self._peer_lost_told or not self.peer_silent(now_s):
            return False
        self._peer_lost_told = True
        return True

    def peer_deadline(self) -> float | None:
        """When ``peer_lost`` would next have something to say; None when it said it already."""
        return None if self._peer_lost_told else self._peer_heard_s + self.peer_silence_s

    def _step(self, event: Input) -> Change | None:
        new, why = TRANSITIONS[(self.role, self.state, event)]
        if new is self.state:
            return None
        change = Change(self.state, new, why)
        self.state = new
        return change
