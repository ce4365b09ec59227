"""Any input in any state: the session never raises and only makes legal moves.

In the manner of h2's state-machine tests: random operations and random
(often malformed) FIX messages are thrown at one session in either role. The
session may reject, log out or disconnect, but it must not raise, every
transition it reports must be in the table, and the expected incoming number
must never go backwards except through an explicit sequence reset.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.fix.codec import encode, parse
from actors.fix.config import Role, SessionConfig
from actors.fix.outputs import Output, Resend, ResetStore, Send, StateChanged
from actors.fix.session import Session
from actors.fix.states import TRANSITIONS, SessionState
from actors.fix.timefmt import TimestampFormatter
from actors.fix.validation import ValidationOptions, validate
from tests.fuzz.inputs import Context, generate, phase_of
from tests.fuzz.targets import profile_for
from tests.interop import spec_file
from tests.pair import FakeClock, make_config

fmt = TimestampFormatter(3)

msg_types = st.sampled_from(["A", "0", "1", "2", "3", "4", "5", "D", "8", "j", "*", ""])
extra_fields = st.lists(
    st.tuples(
        st.sampled_from([7, 16, 36, 43, 45, 58, 98, 108, 112, 122, 123, 141, 789, 11, 55, 999, -1]),
        st.sampled_from([b"", b"0", b"1", b"2", b"5", b"999999", b"Y", b"N", b"x", b"20260101-00:00:00", b"-3"]),
    ),
    max_size=6,
)


@st.composite
def fix_message(draw: st.DrawFn) -> bytes:
    mt = draw(msg_types)
    seq = draw(st.integers(-1, 12))
    sender = draw(st.sampled_from([b"BUY", b"SELL", b"X"]))
    begin = draw(st.sampled_from([b"FIX.4.4", b"FIX.4.2"]))
    skew_s = draw(st.sampled_from([0, 0, 0, -200, 200]))
    header = [(34, b"%d" % seq), (49, sender), (52, fmt.format(FakeClock().utc_ns + skew_s * 10**9)), (56, b"SELL")]
    data = encode(begin, mt.encode(), header, draw(extra_fields))
    if draw(st.booleans()) and len(data) > 20:
        cut = draw(st.integers(0, len(data) - 1))
        data = data[:cut] + draw(st.sampled_from([b"", b"\x01", b"=", b"x"])) + data[cut + 1 :]
    return data


operations = st.lists(
    st.one_of(
        st.tuples(st.just("receive"), fix_message()),
        st.tuples(st.just("time"), st.floats(0.1, 100)),
        st.tuples(st.just("send"), st.just(b"")),
        st.tuples(st.just("logout"), st.just(b"")),
        st.tuples(st.just("lost"), st.just(b"")),
        st.tuples(st.just("connect"), st.just(b"")),
    ),
    max_size=30,
)


@settings(max_examples=400, deadline=None)
@given(role=st.sampled_from([Role.ACCEPTOR, Role.INITIATOR]), ops=operations)
def test_random_inputs_never_break_the_session(role: Role, ops: list[tuple[str, object]]) -> None:
    clock = FakeClock()
    config = make_config(role, sender_comp_id="SELL", target_comp_id="BUY", heartbeat_interval_s=5)
    session = Session(config)
    outputs = []
    if role is Role.INITIATOR:
        outputs += session.start_connecting(clock())
    outputs += session.connection_made(clock())
    last_target = session.next_target
    for kind, arg in ops:
        if kind == "receive":
            session.receive(arg)  # type: ignore[arg-type]
            out = session.process(clock())
            while session.more_input:
                out += session.process(clock())
        elif kind == "time":
            clock.advance(arg)  # type: ignore[arg-type]
            out = session.on_timer(clock())
        elif kind == "send":
            out = session.send("D", [(11, b"1")], clock())
        elif kind == "logout":
            out = session.logout(clock(), "bye")
        elif kind == "lost":
            out = session.connection_lost(clock(), "test")
        else:
            if session.state.value in ("DISCONNECTED", "DISCONNECTED_ABNORMALLY"):
                if role is Role.INITIATOR:
                    session.start_connecting(clock())
                out = session.connection_made(clock())
            else:
                out = []
        outputs += out
        if any(isinstance(o, ResetStore) for o in out):
            last_target = 1
        assert session.next_target >= last_target
        last_target = session.next_target
    for o in outputs:
        if isinstance(o, StateChanged):
            assert (o.old, o.new) in TRANSITIONS


# ------------------------------------------------------------------ the live fuzzer's inputs, in process
#
# The inputs of ``tests/fuzz`` (the fuzzer against a live acceptor) thrown at the pure core of a
# validating acceptor, FIX.4.4 and FIXT.1.1: Hypothesis picks the seed and the stretch of inputs.
# What the live run checks on the wire is checked here on the outputs: nothing raises, every message
# sent parses and passes the session's own dictionary, and the stored numbers go up by one.


class _FuzzedAcceptor:
    """A validating acceptor's core with a store as a dict, logged on by a peer that keeps its numbers right."""

    def __init__(self, version: str) -> None:
        self.profile = profile_for(version)
        self.transport, self.app = self.profile.dictionaries()
        config = SessionConfig(version, "FIXMESH", "FUZZER", Role.ACCEPTOR,
                               default_appl_ver_id="9" if self.profile.fixt else None)
        self.session = Session(config, transport_dictionary=self.transport, app_dictionary=self.app)
        self.clock = FakeClock()
        self.stored: dict[int, bytes] = {}
        #: The peer's next MsgSeqNum, never below what the session expects.
        self.seq = 1

    def run(self, outputs: list[Output]) -> None:
        self.check(outputs)
        for output in outputs:
            if isinstance(output, Resend):
                stored = [(s, d) for s, d in sorted(self.stored.items()) if output.begin <= s <= output.end]
                self.check(self.session.answer_resend(output.begin, output.end, stored, self.clock()))

    def check(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, ResetStore):
                self.stored.clear()
            if not isinstance(output, Send):
                continue
            message = parse(output.data)
            problem = validate(message, self.transport, self.app, ValidationOptions())
            # A Reject of a message whose MsgSeqNum is no number has nothing to refer to.
            assert problem is None or (message.msg_type, problem.tag) == ("3", 45), (problem, message)
            if output.store:
                last = max(self.stored, default=0)
                assert output.seq == last + 1, f"stored {output.seq} after {last}"
                self.stored[output.seq] = output.data

    def reconnect(self) -> None:
        if self.session.state not in (SessionState.DISCONNECTED, SessionState.DISCONNECTED_ABNORMALLY):
            self.run(self.session.connection_lost(self.clock(), "the next input"))
        self.run(self.session.connection_made(self.clock()))

    def feed(self, data: bytes) -> None:
        self.session.receive(data)
        self.run(self.session.process(self.clock()))
        while self.session.more_input:
            self.run(self.session.process(self.clock()))

    def log_on(self) -> None:
        self.reconnect()
        self.seq = max(self.seq, self.session.next_target)
        body = b"98=0\x01108=30\x01" + (b"1137=9\x01" if self.profile.fixt else b"")
        rest = b"35=A\x0134=%d\x0149=FUZZER\x0152=%s\x0156=FIXMESH\x01" % (
            self.seq, TimestampFormatter(3).format(self.clock().utc_ns)) + body
        head = b"8=" + self.profile.begin + b"\x019=%d\x01" % len(rest)
        self.feed(head + rest + b"10=%03d\x01" % (sum(head + rest) % 256))
        self.seq += 1


@pytest.mark.skipif(spec_file("FIX50SP2.xml") is None or spec_file("FIXT11.xml") is None,
                    reason="the QuickFIX data dictionaries (FIXMESH_CONFORMANCE_DIR) are needed")
@settings(max_examples=60, deadline=None)
@given(version=st.sampled_from(["FIX.4.4", "FIXT.1.1"]), seed=st.integers(0, 2**31), start=st.integers(0, 10**6))
def test_the_live_fuzzers_inputs_never_break_a_validating_acceptor(version: str, seed: int, start: int) -> None:
    acceptor = _FuzzedAcceptor(version)
    session = acceptor.session
    acceptor.log_on()
    assert session.is_logged_on
    for index in range(start, start + 15):
        phase = phase_of(seed, index)
        if phase == "side":
            continue  # a connection beside the session: the acceptor's business, not the core's
        if phase == "logon":
            acceptor.reconnect()
        elif not session.is_logged_on:
            acceptor.log_on()
        acceptor.seq = max(acceptor.seq, session.next_target)
        made = generate(seed, index, acceptor.profile, Context(acceptor.seq, acceptor.clock().utc_ns,
                                                                session.next_sender))
        for chunk in made.chunks:
            acceptor.feed(chunk)
        acceptor.clock.advance(0.01)
        acceptor.seq = max(acceptor.seq + 1, session.next_target)
    assert session.next_sender == max(acceptor.stored, default=0) + 1
