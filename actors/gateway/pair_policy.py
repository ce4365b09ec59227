"""The gateway's pairing rule for one Handler/Driven pair, as a pure reconciler.

In the words of its users: when my trader logs on, connect me to the venue;
when either side goes away, do not leave the other half open. Concretely:

* the Handler is logged on and the Driven is idle -> connect the Driven;
* the Handler is not logged on and the Driven is up or connecting -> log the
  Driven out and disconnect it; a Handler whose process fell silent counts
  as not logged on only once it stays away ``handler_grace_s``: a process
  frozen for seconds (a disk slow to sync, a paused VM) still holds its
  user's connection, and ending the venue session for it would cancel the
  user's orders at a venue that cancels on disconnect. A Handler process
  that died is restarted and reports its new state at once;
* the Driven has lost the venue session (a venue Logout or a dropped
  connection) -> nothing: it reconnects by itself within its reconnect
  budget, and the user stays logged on;
* the Driven has ended for good (every reconnect attempt failed: its reason
  ends in the initiator's give-up words) while the Handler is logged on ->
  log the Handler's user out with a text that says why;
* the venue said the session needs manual repair (``manual_repair``: a
  sequence-number error such as "MsgSeqNum too low, expecting 12 but received
  7") -> stop the Driven and log the user out with the venue's text, since
  reconnecting cannot cure it;
* the Driven's process is gone while the Handler is logged on and does not
  come back within ``driven_grace_s`` -> the same.

A Handler with ``logon_waits_for_venue`` holds its user's Logon in
LOGON_RECEIVED (its state reason is ``LOGON_HELD_REASON``). The policy reads
that as a user who wants to trade: it connects the Driven as above, answers
the Logon (``answer_logon``) once the Driven is CONNECTED, and where it would
log a trading user out (give-up, manual repair, the Driven's process gone)
it refuses the held Logon with the same text instead.

The policy is level-triggered: it looks at the last known state of both
halves, not at the event that changed it, so a missed event, a restarted
actor or a restarted coordinator (which learns the states by asking) all
end in the same decisions. Time is an argument.

Every interleaving of the user's logon/logout with the Driven's
connect/logout/disconnect ends with both halves up or both down
(``tests/property/test_pair_policy_converges.py``). Two rules make it so: a
Driven the coordinator told to stop is connected again as soon as it is
offline and the user is logged on (a quick re-logon), and the hold that
keeps a command from being repeated is lifted by any state change of the
pair, the user's new Logon included.

State events and status replies travel different planes of the bus and can
arrive out of order: a reply written before a state change may be read
after it. Each carries the number of state changes its process has made so
far (``version``), and a report older than one already seen from the same
process is ignored, so a stale "DISCONNECTED" cannot undo a newer
"CONNECTING".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from actors.fix.states import LOGON_HELD_REASON, SessionState
from actors.gateway.vocabulary import AnswerLogon, CommandName, Connect, Disconnect, Logout
from actors.shell.give_up import gave_up

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
#: The Driven has no connection: it may be waiting to retry, stopped, or never started.
DRIVEN_OFFLINE = frozenset({S.DISCONNECTED, S.DISCONNECTED_ABNORMALLY, S.RECONNECTING})
#: The Driven has a connection, or is opening one: a Disconnect has something to end.
DRIVEN_LINKED = frozenset({S.CONNECTING, S.CONNECTED})
#: After a command, do not repeat it for this long unless a state of the pair changes.
COMMAND_HOLD_S = 5.0

#: Texts of a venue's Logout (or of our own session's complaint about the venue's numbers) after which
#: reconnecting cannot help: the sequence numbers disagree and someone must repair them (QuickFIX's
#: "MsgSeqNum too low, expecting N but received M", FIX Antenna's "manual intervention"). Case-insensitive.
MANUAL_REPAIR = re.compile(r"msg\s*seq\s*num too low|seq(uence)?\s*num(ber)? too low|manual (repair|intervention)",
                           re.IGNORECASE)
#: Prefixes the session core puts before a Logout's text in its state reasons.
_LOGOUT_PREFIXES = ("Logout exchange complete: ", "Logon refused by the counterparty: ")


def manual_repair(reason: str) -> str | None:
    """The venue's text when a Driven's state reason says the session must not simply come back, else None."""
    if MANUAL_REPAIR.search(reason) is None:
        return None
    for prefix in _LOGOUT_PREFIXES:
        if reason.startswith(prefix):
            return reason[len(prefix):]
    return reason


@dataclass(frozen=True, slots=True)
class PairCommand:
    """A command the policy decided on: the session to send it to, the command, and why (for log and event)."""

    session: str
    command: Connect | Disconnect | Logout | AnswerLogon
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
    #: The process was replaced or went silent since the session was last logged on: its own last
    #: reason ("session process started") does not say why the session ended.
    process_ended: bool = False
    #: The last of connect / disconnect sent to the current process (None: none, or not known).
    told: CommandName | None = None
    #: The venue's text, when it said the session needs manual repair (cleared by a later Logon).
    repair: str | None = None


@dataclass
class PairPolicy:
    handler_name: str
    driven_name: str
    driven_grace_s: float = 10.0
    handler_grace_s: float = 10.0
    handler: Half = field(init=False)
    driven: Half = field(init=False)
    #: The Driven was told to connect for the Handler's current Logon and has been under way since, so a
    #: later give-up (or manual-repair text) is the end of this Logon's venue session, not of an older one.
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
            if half.incarnation:
                half.process_ended = True
                if half is self.driven:
                    self.driven_under_way = False
            half.incarnation = incarnation
            half.last_command = None
            half.told = None
            half.version = -1
        if version is not None:
            if version < half.version:
                return []
            half.version = version
        if half.state != state:
            self._state_changed()
        half.state, half.reason = state, reason
        half.actor_up = True
        half.gone_since_s = None
        if state is S.CONNECTED:
            half.process_ended = False
            half.repair = None
        elif half is self.driven and (text := manual_repair(reason)) is not None:
            half.repair = text
        return self.reconcile(now_s)

    def on_actor(self, session: str, up: bool, now_s: float) -> list[PairCommand]:
        """The broker saw the actor's process come up or go silent."""
        half = self.half(session)
        if half is None:
            return []
        half.actor_up = up
        self._state_changed()
        if up:
            half.gone_since_s = None
        else:
            half.state = None
            half.gone_since_s = now_s
            half.process_ended = True
            half.told = None
            if half is self.driven:
                # A restarted Driven starts idle: connecting it again is a new attempt.
                self.driven_under_way = False
        return self.reconcile(now_s)

    @property
    def handler_held(self) -> bool:
        """The Handler holds its user's Logon until the venue session is up (``logon_waits_for_venue``)."""
        return self.handler.state is S.LOGON_RECEIVED and self.handler.reason == LOGON_HELD_REASON

    def reconcile(self, now_s: float) -> list[PairCommand]:
        h, d = self.handler, self.driven
        commands: list[PairCommand] = []
        held = self.handler_held
        if h.state in HANDLER_TRADING or held:
            if d.state in DRIVEN_UNDER_WAY and d.told == "connect":
                self.driven_under_way = True
            if d.repair is not None and self.driven_under_way:
                if d.state not in DRIVEN_OFFLINE or d.told != "disconnect":
                    commands.append(self._tell(d, Disconnect(f"venue session needs manual repair: {d.repair}"),
                                               "the venue asked for a manual repair"))
                commands.append(self._logout_handler(
                    f"venue session ended and needs manual repair: {d.repair}"))
            elif d.state is S.DISCONNECTED and self.driven_under_way and gave_up(d.reason):
                # A held Logon never had a venue session: it was unavailable rather than ended.
                ended = "venue session unavailable" if held else "venue session ended"
                commands.append(self._logout_handler(f"{ended}: {d.reason}"))
            elif d.state in DRIVEN_OFFLINE and d.actor_up and (d.told != "connect" or d.state is S.DISCONNECTED):
                # Stopped by us (the user logged out a moment ago), never started, or between two tries
                # after a venue Logout: a connect starts it, or is a no-op for a Driven already retrying.
                commands.append(self._tell(d, Connect(), f"{h.name} is logged on"))
            elif d.state is None and d.gone_since_s is not None and now_s - d.gone_since_s >= self.driven_grace_s:
                commands.append(self._logout_handler(
                    f"venue session unavailable: its process has been down for {now_s - d.gone_since_s:.0f} s"))
            elif held and d.state is S.CONNECTED:
                commands.append(PairCommand(h.name, AnswerLogon(), why=f"{d.name} is logged on to the venue"))
        else:
            self.driven_under_way = False
            handler_gone = h.state is None and h.gone_since_s is not None \
                and now_s - h.gone_since_s >= self.handler_grace_s
            if (h.state in HANDLER_ENDED or handler_gone) and self._driven_may_be_active():
                ended = self._handler_ended_because()
                commands.append(self._tell(d, Disconnect(f"end user's session ended: {ended}"),
                                           f"{h.name} is {h.state.value if h.state is not None else 'down'}"))
        return [c for c in commands if self._not_repeated(c, now_s)]

    def _driven_may_be_active(self) -> bool:
        """The Driven has, or may open, a venue connection that the user no longer wants."""
        d = self.driven
        if d.state in DRIVEN_LINKED:
            return True
        if d.state in (S.DISCONNECTED_ABNORMALLY, S.RECONNECTING):
            return d.told != "disconnect"  # its initiator may be waiting for the next try
        if d.state is S.DISCONNECTED:
            # After a venue Logout it waits to reconnect; after a give-up it has stopped by itself.
            return d.told == "connect" and not gave_up(d.reason)
        return False

    def _handler_ended_because(self) -> str:
        """Why the user's session ended, as the venue will read it in the Driven's Logout."""
        h = self.handler
        if h.state is None or h.process_ended:
            return "the end user's session process ended"
        return h.reason or "session ended"

    # ---------------------------------------------------------------- helpers

    def _logout_handler(self, text: str) -> PairCommand:
        """End the user's session with ``text``: a Logout, or the refusal of a Logon still held."""
        if self.handler_held:
            return PairCommand(self.handler_name, AnswerLogon(text), why=text)
        return PairCommand(self.handler_name, Logout(text), why=text)

    def _tell(self, half: Half, command: Connect | Disconnect, why: str) -> PairCommand:
        return PairCommand(half.name, command, why=why)

    def _state_changed(self) -> None:
        """Something changed in the pair: a command held back because nothing had changed may go again."""
        self.handler.last_command = self.driven.last_command = None

    def _not_repeated(self, command: PairCommand, now_s: float) -> bool:
        half = self.half(command.session)
        assert half is not None
        if half.last_command is not None:
            cmd, at_s = half.last_command
            if cmd == command.cmd and now_s - at_s < COMMAND_HOLD_S:
                return False
        half.last_command = (command.cmd, now_s)
        if command.cmd in ("connect", "disconnect"):
            half.told = command.cmd
        return True
