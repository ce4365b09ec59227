"""The gateway's pairing rule for one Handler/Driven pair, as a pure reconciler.

In the words of its users: when my trader logs on, connect me to the venue;
when either side goes away, do not leave the other half open. Concretely:

* the Handler is logged on and the Driven is idle -> connect the Driven;
* the Handler is not logged on and the Driven is up or connecting -> log the
  Driven out and disconnect it;
* the Driven has ended for good (the venue logged out, or every reconnect
  attempt failed) while the Handler is logged on -> log the Handler's user
  out with a text that says why;
* the Driven's process is gone while the Handler is logged on and does not
  come back within ``driven_grace_s`` -> the same.

The policy is level-triggered: it looks at the last known state of both
halves, not at the event that changed it, so a missed event, a restarted
actor or a restarted coordinator (which learns the states by asking) all
end in the same decisions. Time is an argument.

State events and status replies travel different planes of the bus and can
arrive out of order: a reply written before a state change may be read
after it. Each carries the number of state changes its process has made so
far (``version``), and a report older than one already seen from the same
process is ignored, so a stale "DISCONNECTED" cannot undo a newer
"CONNECTING".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.fix.states import SessionState
from actors.gateway.vocabulary import CommandName, Connect, Disconnect, Logout

S = SessionState

# The three sets below are the policy's own readings of the session states, named for the half they
# judge; none of them is the core's ``actors.fix.states.LOGGED_ON`` (which also holds the logging-out states).

#: The Handler's user can trade: its Logon exchange is complete and nobody has started to log it out.
HANDLER_TRADING = frozenset({S.CONNECTED})
#: The Driven (an initiator) reaches CONNECTED from here without being told again.
DRIVEN_UNDER_WAY = frozenset({S.CONNECTING, S.CONNECTED, S.RECONNECTING, S.DISCONNECTED_ABNORMALLY})
#: The Handler's user has no session: never logged on yet, being logged out, or gone.
HANDLER_ENDED = frozenset({S.DISCONNECTED, S.DISCONNECTED_ABNORMALLY, S.WAITING_FOR_FORCED_DISCONNECT,
                           S.WAITING_FOR_LOGON, S.LOGON_RECEIVED, S.DEAD, S.WAITING_FOR_LOGOFF,
                           S.WAITING_FOR_FORCED_LOGOFF})
#: After a command, do not repeat it for this long unless the state changes.
COMMAND_HOLD_S = 5.0


@dataclass(frozen=True, slots=True)
class PairCommand:
    """A command the policy decided on: the session to send it to, the command, and why (for log and event)."""

    session: str
    command: Connect | Disconnect | Logout
    why: str = ""

    @property
    def cmd(self) -> CommandName:
        return self.command.cmd

    @property
    def text(self) -> str:
        """The command's text ("" for ``connect``, which has none), as the ``pair.*`` event carries it."""
        return "" if isinstance(self.command, Connect) else self.command.text


@dataclass
class Half:
    """What the coordinator knows of one session of the pair."""

    name: str
    state: SessionState | None = None
    reason: str = ""
    actor_up: bool = False
    gone_since_s: float | None = None
    last_command: tuple[CommandName, float] | None = None
    incarnation: str = ""
    #: State changes the current process had made at the newest report (-1: none counted yet).
    version: int = -1


@dataclass
class PairPolicy:
    handler_name: str
    driven_name: str
    driven_grace_s: float = 10.0
    handler: Half = field(init=False)
    driven: Half = field(init=False)
    #: The Driven was told to connect for the Handler's current Logon ...
    connect_requested: bool = field(init=False, default=False)
    #: ... and has been under way since, so a later DISCONNECTED is its end.
    driven_under_way: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.handler = Half(self.handler_name)
        self.driven = Half(self.driven_name)

    @property
    def name(self) -> str:
        return f"{self.handler_name}-{self.driven_name}"

    def half(self, session: str) -> Half | None:
        if session == self.handler_name:
            return self.handler
        if session == self.driven_name:
            return self.driven
        return None

    # ------------------------------------------------------------------ inputs

    def on_state(self, session: str, state: SessionState, reason: str, now_s: float, incarnation: str = "",
                 version: int | None = None) -> list[PairCommand]:
        """A state change event, or a status reply, of one half.

        ``incarnation`` identifies the process; a new one means the actor was
        restarted (perhaps too quickly for the broker to notice it was gone).
        ``version`` is how many state changes that process had made when it
        reported; a report older than the newest one seen is ignored.
        """
        half = self.half(session)
        if half is None:
            return []
        if incarnation and incarnation != half.incarnation:
            if half.incarnation and half is self.driven:
                self.driven_under_way = False
            half.incarnation = incarnation
            half.last_command = None
            half.version = -1
        if version is not None:
            if version < half.version:
                return []
            half.version = version
        if half.state != state:
            half.last_command = None
        half.state, half.reason = state, reason
        half.actor_up = True
        half.gone_since_s = None
        return self.reconcile(now_s)

    def on_actor(self, session: str, up: bool, now_s: float) -> list[PairCommand]:
        """The broker saw the actor's process come up or go silent."""
        half = self.half(session)
        if half is None:
            return []
        half.actor_up = up
        half.last_command = None
        if up:
            half.gone_since_s = None
        else:
            half.state = None
            half.gone_since_s = now_s
            if half is self.driven:
                # A restarted Driven starts idle: connecting it again is a new attempt.
                self.driven_under_way = False
        return self.reconcile(now_s)

    def reconcile(self, now_s: float) -> list[PairCommand]:
        h, d = self.handler, self.driven
        commands: list[PairCommand] = []
        if h.state in HANDLER_TRADING:
            if d.state in DRIVEN_UNDER_WAY and self.connect_requested:
                self.driven_under_way = True
            if d.state is S.DISCONNECTED and d.actor_up:
                if self.driven_under_way:
                    commands.append(self._logout_handler(f"venue session ended: {d.reason}"))
                else:
                    self.connect_requested = True
                    commands.append(PairCommand(d.name, Connect(), why=f"{h.name} is logged on"))
            elif d.state is None and d.gone_since_s is not None and now_s - d.gone_since_s >= self.driven_grace_s:
                commands.append(self._logout_handler(
                    f"venue session unavailable: its process has been down for {now_s - d.gone_since_s:.0f} s"))
        else:
            self.connect_requested = self.driven_under_way = False
            handler_gone = h.state is None and h.gone_since_s is not None
            if (h.state in HANDLER_ENDED or handler_gone) and d.state in DRIVEN_UNDER_WAY:
                ended = h.reason or "session process down"
                commands.append(PairCommand(d.name, Disconnect(f"end user's session ended: {ended}"),
                                            why=f"{h.name} is {h.state.value if h.state is not None else 'down'}"))
        return [c for c in commands if self._not_repeated(c, now_s)]

    # ---------------------------------------------------------------- helpers

    def _logout_handler(self, text: str) -> PairCommand:
        return PairCommand(self.handler_name, Logout(text), why=text)

    def _not_repeated(self, command: PairCommand, now_s: float) -> bool:
        half = self.half(command.session)
        assert half is not None
        if half.last_command is not None:
            cmd, at_s = half.last_command
            if cmd == command.cmd and now_s - at_s < COMMAND_HOLD_S:
                return False
        half.last_command = (command.cmd, now_s)
        return True
