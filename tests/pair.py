"""Two real ``SessionDriver``s over an in-memory link, with a fake clock.

The link carries whole FIX messages (it frames the byte stream) so that a
test can drop, duplicate or hold back individual messages, or cut the
connection, and then check what each application received. Nothing sleeps:
time moves only when a test calls ``advance``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from actors.fix.codec import Framer
from actors.fix.config import Role, SessionConfig
from actors.fix.message import Message
from actors.fix.outputs import Output
from actors.fix.session import Session
from actors.fix.timefmt import NS_PER_S, Instant
from actors.shell.driver import SessionDriver
from actors.store import MemoryStore, MessageStore

START_UTC_NS = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00:00Z


class FakeClock:
    def __init__(self) -> None:
        self.mono_s = 1000.0
        self.utc_ns = START_UTC_NS

    def __call__(self) -> Instant:
        return Instant(self.mono_s, self.utc_ns)

    def advance(self, seconds: float) -> None:
        self.mono_s += seconds
        self.utc_ns += int(seconds * NS_PER_S)


class RecordingApp:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.outputs: list[Output] = []

    def on_message(self, driver: SessionDriver, message: Message) -> None:
        self.messages.append(message)

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        self.outputs.append(output)


@dataclass
class Fault:
    """What the link does to each message it carries, as probabilities."""

    drop: float = 0.0
    duplicate: float = 0.0
    hold: float = 0.0


class LinkEnd:
    """The transport one driver writes to; the pair moves its messages."""

    def __init__(self) -> None:
        self.framer = Framer()
        self.outbox: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        self.framer.feed(data)
        while (frame := self.framer.next_frame()) is not None:
            if frame.data:
                self.outbox.append(frame.data)

    def close(self) -> None:
        self.closed = True


@dataclass
class Side:
    driver: SessionDriver
    app: RecordingApp
    store: MessageStore
    end: LinkEnd | None = None
    held: list[bytes] = field(default_factory=list)


def make_config(role: Role, **overrides: object) -> SessionConfig:
    initiator = role is Role.INITIATOR
    base: dict[str, object] = dict(
        begin_string="FIX.4.4",
        sender_comp_id="BUY" if initiator else "SELL",
        target_comp_id="SELL" if initiator else "BUY",
        role=role,
        heartbeat_interval_s=30,
        use_data_dictionary=False,
    )
    base.update(overrides)
    return SessionConfig(**base)  # type: ignore[arg-type]


class SessionPair:
    """An initiator and an acceptor driver joined by a controllable link."""

    def __init__(
        self,
        clock: FakeClock | None = None,
        initiator_store: MessageStore | None = None,
        acceptor_store: MessageStore | None = None,
        seed: int = 0,
        **config: object,
    ) -> None:
        self.clock = clock or FakeClock()
        self.rng = random.Random(seed)
        self.fault = Fault()
        self.initiator = self._side(Role.INITIATOR, initiator_store, config)
        self.acceptor = self._side(Role.ACCEPTOR, acceptor_store, config)

    def _side(self, role: Role, store: MessageStore | None, config: dict[str, object]) -> Side:
        store = store or MemoryStore(f"{role.value}", now_ns=self.clock.utc_ns)
        session = Session(
            make_config(role, **config), next_sender=store.next_sender_seq, next_target=store.next_target_seq
        )
        app = RecordingApp()
        driver = SessionDriver(session, store, app, name=role.value, now=self.clock)
        return Side(driver, app, store)

    # -------------------------------------------------------------- link

    def connect(self) -> None:
        """Open a new connection: the acceptor first, then the initiator's Logon."""
        for side in (self.acceptor, self.initiator):
            side.end = LinkEnd()
            side.held.clear()
        self.initiator.driver.start_connecting()
        self.acceptor.driver.attach(self.acceptor.end)  # type: ignore[arg-type]
        self.initiator.driver.attach(self.initiator.end)  # type: ignore[arg-type]
        self.pump()

    def cut(self, reason: str = "link cut") -> None:
        """Break the connection under both sides without a Logout."""
        for side in (self.initiator, self.acceptor):
            if side.end is not None:
                side.end.closed = True
        self.pump()

    @property
    def both_logged_on(self) -> bool:
        return self.initiator.driver.session.is_logged_on and self.acceptor.driver.session.is_logged_on

    def pump(self, max_rounds: int = 10_000) -> None:
        """Move messages until neither side has anything to say."""
        for _ in range(max_rounds):
            moved = self._move(self.initiator, self.acceptor) | self._move(self.acceptor, self.initiator)
            closed = self._propagate_close()
            if not moved and not closed:
                return
        raise AssertionError("the pair did not go quiet")

    def release_held(self) -> None:
        for src, dst in ((self.initiator, self.acceptor), (self.acceptor, self.initiator)):
            held, src.held = src.held, []
            if dst.end is not None and not dst.end.closed and dst.driver.connected:
                for data in held:
                    dst.driver.feed(data)
        self.pump()

    def _move(self, src: Side, dst: Side) -> bool:
        end = src.end
        if end is None or not end.outbox:
            return False
        batch, end.outbox = end.outbox, []
        for data in batch:
            if not dst.driver.connected:
                break
            for copy in self._apply_fault(src, data):
                dst.driver.feed(copy)
        return True

    def _apply_fault(self, src: Side, data: bytes) -> list[bytes]:
        f, r = self.fault, self.rng.random
        if f.drop and r() < f.drop:
            return []
        if f.hold and r() < f.hold:
            src.held.append(data)
            return []
        if f.duplicate and r() < f.duplicate:
            return [data, data]
        return [data]

    def _propagate_close(self) -> bool:
        changed = False
        for side, other in ((self.initiator, self.acceptor), (self.acceptor, self.initiator)):
            if side.end is not None and side.end.closed:
                side.end = None
                if side.driver.connected:
                    side.driver.connection_lost("link closed")
                if other.driver.connected and other.end is not None:
                    other.end.closed = True
                changed = True
        return changed

    # -------------------------------------------------------------- time

    def advance(self, seconds: float, step_s: float = 1.0) -> None:
        """Let time pass in steps, firing timers and moving messages."""
        remaining = seconds
        while remaining > 0:
            dt = min(step_s, remaining)
            self.clock.advance(dt)
            remaining -= dt
            for side in (self.initiator, self.acceptor):
                deadline = side.driver.next_deadline()
                if deadline is not None and deadline <= self.clock.mono_s:
                    side.driver.on_timer()
            self.pump()


def app_payloads(messages: list[Message], tag: int = 11) -> list[bytes]:
    return [m.get(tag) or b"" for m in messages]


def send_orders(side: Side, ids: list[int], on_sent: Callable[[int], None] | None = None) -> None:
    for i in ids:
        side.driver.send("D", [(11, b"%d" % i), (54, b"1"), (55, b"X"), (60, b"20260101-00:00:00")])
        if on_sent:
            on_sent(i)
