"""Any input in any state: the session never raises and only makes legal moves.

In the manner of h2's state-machine tests: random operations and random
(often malformed) FIX messages are thrown at one session in either role. The
session may reject, log out or disconnect, but it must not raise, every
transition it reports must be in the table, and the expected incoming number
must never go backwards except through an explicit sequence reset.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.fix.codec import encode
from actors.fix.config import Role
from actors.fix.outputs import ResetStore, StateChanged
from actors.fix.session import Session
from actors.fix.states import TRANSITIONS
from actors.fix.timefmt import TimestampFormatter
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
