"""The pair policy brings both halves to rest together, whatever the interleaving.

A small model of the two halves stands in for the processes: the Handler's
session as its user sees it, and the Driven's session with its initiator
(the phases and rules of ``actors.shell.initiator``: tries, give-up, a wait
after a drop or a venue Logout, a connect command that waits for the end of
the previous connection, a stop that abandons a TCP connect in progress).
State reports and commands travel in per-half queues (the bus keeps each
sender's order, but events and commands of different halves interleave
freely), and status polls read the current state.

Hypothesis draws the user's logons and logouts, the venue's Logouts, drops
and outages, and the order of every delivery and effect. Then the user and
the venue stop acting (the venue stays up or stays away) and the model runs
to rest within a bounded number of rounds. At rest both halves are up (the
user logged on and the venue session open) or both are down (the user logged
off and the Driven stopped): never one half open alone.

With ``logon_waits_for_venue`` (drawn too) the user's Logon is held in
LOGON_RECEIVED until the coordinator answers it; a held Logon is not at
rest, so the policy itself must answer every one (accept or refuse), without
the Handler's own logon timeout, which the script may fire as one more
chaos action.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.fix.states import LOGON_HELD_REASON, OFFLINE
from actors.fix.states import SessionState as S
from actors.gateway.pair_policy import PairCommand, PairPolicy
from actors.gateway.vocabulary import AnswerLogon, Connect, Disconnect, Logout
from actors.shell.give_up import GAVE_UP

MAX_TRIES = 3
#: Rounds of settling allowed: each round delivers everything due and advances 1 s of coordinator time.
SETTLE_ROUNDS = 200


@dataclass
class Side:
    """One session as the model runs it: state, reason, and the count of its state changes."""

    name: str
    state: S = S.DISCONNECTED
    reason: str = "session process started"
    version: int = 0
    commands: deque[PairCommand] = field(default_factory=deque)

    def go(self, state: S, reason: str, reports: deque[tuple[str, S, str, int]]) -> None:
        if state is not self.state:
            self.state, self.reason = state, reason
            self.version += 1
            reports.append((self.name, state, reason, self.version))


@dataclass
class Driven(Side):
    """The Driven's session and its initiator (``actors.shell.initiator.Phase`` names)."""

    phase: str = "idle"
    tries: int = 0
    attached: bool = False


class Model:
    def __init__(self, waits: bool = False) -> None:
        #: The Handler's ``logon_waits_for_venue``.
        self.waits = waits
        self.policy = PairPolicy("client", "venue", driven_grace_s=10.0)
        self.h = Side("client")
        self.d = Driven("venue")
        self.reports: deque[tuple[str, S, str, int]] = deque()
        self.venue_up = True
        self.now_s = 0.0
        self.trace: list[str] = []

    # ------------------------------------------------------------ coordinator

    def deliver_report(self) -> None:
        name, state, reason, version = self.reports.popleft()
        self.run(self.policy.on_state(name, state, reason, self.now_s, "1", version))

    def poll(self) -> None:
        for side in (self.h, self.d):
            self.run(self.policy.on_state(side.name, side.state, side.reason, self.now_s, "1", side.version))

    def tick(self, seconds: float) -> None:
        self.now_s += seconds
        self.run(self.policy.reconcile(self.now_s))

    def run(self, commands: list[PairCommand]) -> None:
        for c in commands:
            self.trace.append(f"t={self.now_s:g} {c.session}.{c.cmd}")
            (self.h if c.session == "client" else self.d).commands.append(c)

    # ----------------------------------------------------------------- halves

    def handler_command(self) -> None:
        command = self.h.commands.popleft().command
        if isinstance(command, Logout) and self.h.state is S.CONNECTED:
            self.h.go(S.WAITING_FOR_LOGOFF, command.text, self.reports)
        elif isinstance(command, Logout | AnswerLogon) and self.h.state is S.LOGON_RECEIVED:
            if isinstance(command, AnswerLogon) and not command.text:
                self.h.go(S.CONNECTED, "Logon accepted", self.reports)
            else:  # the session core: Logout with the text, then the connection is dropped
                self.h.go(S.DISCONNECTED_ABNORMALLY, f"Logon refused: {command.text}", self.reports)

    def driven_command(self) -> None:
        command = self.d.commands.popleft().command
        d = self.d
        if isinstance(command, Connect):
            if d.phase in ("idle", "stopped"):
                d.tries = 0
                d.phase = "pending"
                self.pending_start()
        elif isinstance(command, Disconnect):
            if d.phase == "connecting" and not d.attached:
                d.go(S.DISCONNECTED_ABNORMALLY, "connect abandoned", self.reports)
            d.phase = "stopped"
            if d.state is S.CONNECTED:
                d.go(S.WAITING_FOR_LOGOFF, command.text, self.reports)
            elif d.state is S.CONNECTING and d.attached:
                d.go(S.WAITING_FOR_FORCED_DISCONNECT, command.text, self.reports)

    def pending_start(self) -> None:
        d = self.d
        if d.phase == "pending" and d.state in OFFLINE and not d.attached:
            self.attempt()

    def attempt(self) -> None:
        d = self.d
        d.tries += 1
        d.phase = "connecting"
        d.go(S.CONNECTING, f"try {d.tries}", self.reports)

    def tcp_done(self) -> None:
        d = self.d
        if self.venue_up:
            d.attached = True
            d.phase = "attached"
        else:
            d.go(S.DISCONNECTED_ABNORMALLY, "Connection refused", self.reports)
            self.retry_or_give_up("Connection refused")

    def retry_or_give_up(self, reason: str) -> None:
        d = self.d
        if d.tries >= MAX_TRIES:
            d.go(S.DISCONNECTED, f"{reason}; {GAVE_UP} {d.tries} tries", self.reports)
            d.phase = "stopped"
        else:
            d.go(S.RECONNECTING, f"{reason}; next try soon", self.reports)
            d.phase = "waiting"

    def connection_ended(self, state: S, reason: str) -> None:
        """The Driven's connection closed (either side); the initiator follows if it still runs."""
        d = self.d
        d.attached = False
        d.go(state, reason, self.reports)
        if d.phase == "attached":
            if state is S.DISCONNECTED:
                d.phase = "waiting"  # reconnect after a Logout too (a Driven's reconnect_after_logout)
            else:
                self.retry_or_give_up("connection lost")
        elif d.phase == "pending":
            self.pending_start()

    def driven_effects(self) -> list[str]:
        """What can happen to the Driven now without anyone deciding it."""
        d = self.d
        out = []
        if d.phase == "connecting" and not d.attached:
            out.append("tcp_done")
        if d.attached and d.state is S.CONNECTING:
            out.append("logon_reply" if self.venue_up else "logon_timeout")
        if d.attached and d.state in (S.WAITING_FOR_LOGOFF, S.WAITING_FOR_FORCED_DISCONNECT):
            out.append("closed")
        if d.phase == "waiting":
            out.append("timer")
        if d.phase == "pending" and d.state in OFFLINE and not d.attached:
            out.append("pending")
        return out

    def driven_effect(self, effect: str) -> None:
        d = self.d
        if effect == "tcp_done":
            self.tcp_done()
        elif effect == "logon_reply":
            d.tries = 0
            d.go(S.CONNECTED, "Logon reply received", self.reports)
        elif effect == "logon_timeout":
            self.connection_ended(S.DISCONNECTED_ABNORMALLY, "no Logon reply within 10 s")
        elif effect == "closed":
            clean = d.state is S.WAITING_FOR_LOGOFF
            self.connection_ended(S.DISCONNECTED if clean else S.DISCONNECTED_ABNORMALLY, "closed")
        elif effect == "timer":
            self.attempt()
        elif effect == "pending":
            self.pending_start()

    def handler_effects(self) -> list[str]:
        return ["logoff_done"] if self.h.state is S.WAITING_FOR_LOGOFF else []

    # ------------------------------------------------------------ the world

    def chaos(self, what: str) -> None:
        h, d = self.h, self.d
        if what == "user_logon" and h.state is S.DISCONNECTED:
            if self.waits:
                h.go(S.LOGON_RECEIVED, LOGON_HELD_REASON, self.reports)
            else:
                h.go(S.CONNECTED, "Logon accepted", self.reports)
        elif what == "user_logout" and h.state is S.CONNECTED:
            h.go(S.DISCONNECTED, "Logout exchange complete", self.reports)
        elif what in ("user_logout", "held_timeout") and h.state is S.LOGON_RECEIVED:
            h.go(S.DISCONNECTED_ABNORMALLY, "Logon refused while it waited", self.reports)
        elif what == "user_drop" and h.state in (S.CONNECTED, S.WAITING_FOR_LOGOFF, S.LOGON_RECEIVED):
            h.go(S.DISCONNECTED_ABNORMALLY, "connection reset", self.reports)
        elif what == "venue_logout" and d.attached and d.state is S.CONNECTED:
            self.connection_ended(S.DISCONNECTED, "Logout exchange complete: closing")
        elif what == "venue_drop" and d.attached:
            self.connection_ended(S.DISCONNECTED_ABNORMALLY, "connection reset")
        elif what == "venue_down":
            self.venue_up = False
            if d.attached:
                self.connection_ended(S.DISCONNECTED_ABNORMALLY, "connection reset")
        elif what == "venue_up":
            self.venue_up = True
        elif what == "poll":
            self.poll()
        elif what == "tick":
            self.tick(2.5)

    def step(self, pick: int) -> bool:
        """One delivery or effect chosen by ``pick``; False when nothing was due."""
        options: list[str] = []
        if self.reports:
            options.append("report")
        if self.h.commands:
            options.append("handler_command")
        if self.d.commands:
            options.append("driven_command")
        options += [f"d:{e}" for e in self.driven_effects()] + [f"h:{e}" for e in self.handler_effects()]
        if not options:
            return False
        choice = options[pick % len(options)]
        self.trace.append(choice)
        if choice == "report":
            self.deliver_report()
        elif choice == "handler_command":
            self.handler_command()
        elif choice == "driven_command":
            self.driven_command()
        elif choice.startswith("d:"):
            self.driven_effect(choice[2:])
        elif choice == "h:logoff_done":
            self.h.go(S.DISCONNECTED, "Logout exchange complete", self.reports)
        return True

    def settle(self) -> None:
        for _ in range(SETTLE_ROUNDS):
            for _ in range(50):
                if not self.step(0):
                    break
            self.tick(1.0)
            if self.at_rest():
                return

    def at_rest(self) -> bool:
        h, d = self.h, self.d
        quiet = not (self.reports or h.commands or d.commands or self.driven_effects() or self.handler_effects())
        both_up = h.state is S.CONNECTED and d.state is S.CONNECTED
        both_down = h.state in OFFLINE and d.state in OFFLINE and d.phase in ("idle", "stopped")
        return quiet and (both_up or both_down)


chaos = st.sampled_from(["user_logon"] * 3 + ["user_logout"] * 2 + [
    "user_drop", "venue_logout", "venue_drop", "venue_down", "venue_up", "poll", "tick", "held_timeout"])
steps = st.lists(st.one_of(st.tuples(st.just("chaos"), chaos), st.tuples(st.just("step"), st.integers(0, 7))),
                 max_size=120)


@settings(max_examples=1500)
@given(steps, st.booleans(), st.booleans())
def test_every_interleaving_ends_with_both_halves_up_or_both_down(script: list[tuple[str, object]],
                                                                   venue_stays_up: bool, waits: bool) -> None:
    model = Model(waits)
    for kind, what in script:
        if kind == "chaos":
            model.chaos(str(what))
        else:
            model.step(int(str(what)))
    model.chaos("venue_up" if venue_stays_up else "venue_down")
    model.poll()
    model.settle()
    assert model.at_rest(), (
        f"not at rest: handler {model.h.state.value}, driven {model.d.state.value} ({model.d.phase}, "
        f"{model.d.reason!r}); last steps: {model.trace[-40:]}")
    if model.h.state is S.CONNECTED:
        assert venue_stays_up, "the user can only trade while the venue is up"


def test_the_quick_relogon_of_the_issue_trades_again() -> None:
    """The user logs out while the Driven is still connecting and logs on again at once: both end up."""
    model = Model()
    model.poll()                     # the coordinator knows both halves
    model.chaos("user_logon")
    model.deliver_report()           # coordinator: connect
    model.driven_command()           # the Driven starts connecting (TCP in progress)
    model.chaos("user_logout")
    model.deliver_report()           # the Driven's CONNECTING report is still queued
    model.chaos("user_logon")
    model.settle()
    assert model.h.state is S.CONNECTED and model.d.state is S.CONNECTED, model.trace


@pytest.mark.parametrize("venue_up", [True, False])
def test_a_held_logon_is_answered_after_the_venue_session_or_refused_with_the_give_up(venue_up: bool) -> None:
    """logon_waits_for_venue: the user is CONNECTED only after the Driven is; with the venue away, refused."""
    model = Model(waits=True)
    model.poll()
    if not venue_up:
        model.chaos("venue_down")
    model.chaos("user_logon")
    order: list[str] = []
    for _ in range(SETTLE_ROUNDS):
        for _ in range(50):
            if not model.step(0):
                break
            for side in (model.h, model.d):
                if side.state is S.CONNECTED and side.name not in order:
                    order.append(side.name)
        model.tick(1.0)
        if model.at_rest():
            break
    assert model.at_rest(), model.trace
    if venue_up:
        assert order == ["venue", "client"], model.trace
    else:
        assert order == [] and model.h.reason.startswith("Logon refused: venue session unavailable: "), model.h.reason
        assert "gave up after 3 tries" in model.h.reason
