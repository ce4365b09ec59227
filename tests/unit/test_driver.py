"""The driver's intents and the MsgSeqNums it promises, over the in-memory pair with a fake clock.

Callers speak in intents (``driver.logout``, ``driver.reset_sequence_numbers``
...), each read with the driver's own clock. ``send`` returns the number its
message goes out with, also inside a batch, where the message is stored and
written only when the batch ends: the gateway's forwarding journal records
that number before the message is stored, so the promise must hold whatever
else the batch does.
"""

from __future__ import annotations

from actors.fix.codec import Framer, encode, parse
from actors.fix.message import Message
from actors.fix.outputs import StateChanged
from actors.fix.states import SessionState as S
from actors.fix.timefmt import TimestampFormatter
from actors.shell.driver import SessionDriver
from actors.store import MessageStore
from tests.pair import FakeClock, RecordingApp, SessionPair, Side

ORDER = [(54, b"1"), (55, b"X"), (60, b"20260101-00:00:00")]


def order(cl_ord_id: int) -> list[tuple[int, bytes]]:
    return [(11, b"%d" % cl_ord_id), *ORDER]


def changes(side: Side) -> list[StateChanged]:
    return [o for o in side.app.outputs if isinstance(o, StateChanged)]


def stored(store: MessageStore) -> dict[int, Message]:
    return {seq: parse(data) for seq, data in store.get_outgoing(1, 10**9)}


def wire_of(side: Side) -> list[Message]:
    """Every message ``side`` writes from now on, as the peer will read it."""
    assert side.end is not None
    end, write, framer = side.end, side.end.write, Framer()
    seen: list[Message] = []

    def spy(data: bytes) -> None:
        framer.feed(data)
        while (frame := framer.next_frame()) is not None:
            seen.append(parse(frame.data))
        write(data)

    end.write = spy  # type: ignore[method-assign]
    return seen


def logged_on_pair() -> SessionPair:
    pair = SessionPair()
    pair.connect()
    assert pair.both_logged_on
    return pair


# ------------------------------------------------------------------ intents


def test_the_initiators_connection_intents_walk_its_states_at_the_drivers_time() -> None:
    clock = FakeClock()
    pair = SessionPair(clock)
    driver = pair.initiator.driver
    driver.start_connecting("connecting to the venue")
    clock.advance(1.5)
    driver.connection_failed("connection refused")
    driver.start_reconnecting("next try in 5 s")
    clock.advance(5)
    driver.give_up("gave up after 1 tries")
    got = [(c.new, c.reason, c.utc_ns) for c in changes(pair.initiator)]
    t0 = clock.utc_ns - int(6.5e9)
    assert got == [
        (S.CONNECTING, "connecting to the venue", t0),
        (S.DISCONNECTED_ABNORMALLY, "connection refused", t0 + int(1.5e9)),
        (S.RECONNECTING, "next try in 5 s", t0 + int(1.5e9)),
        (S.DISCONNECTED, "gave up after 1 tries", clock.utc_ns),
    ]


def test_shut_down_ends_the_session_for_good() -> None:
    pair = SessionPair()
    pair.acceptor.driver.shut_down("process stopping")
    [change] = changes(pair.acceptor)
    assert (change.old, change.new, change.reason) == (S.DISCONNECTED, S.DEAD, "process stopping")


def test_reset_and_set_sequence_numbers_reach_the_session_and_the_store() -> None:
    pair = logged_on_pair()
    side = pair.initiator
    side.driver.logout("end of day")
    pair.pump()
    assert side.driver.session.next_sender > 1
    side.driver.reset_sequence_numbers("operator reset")
    assert (side.driver.session.next_sender, side.driver.session.next_target) == (1, 1)
    assert (side.store.next_sender_seq, side.store.next_target_seq) == (1, 1)
    assert stored(side.store) == {}
    side.driver.set_sequence_numbers(40, None)
    assert (side.driver.session.next_sender, side.driver.session.next_target) == (40, 1)
    assert (side.store.next_sender_seq, side.store.next_target_seq) == (40, 1)
    side.driver.set_sequence_numbers(None, 7)
    assert (side.store.next_sender_seq, side.store.next_target_seq) == (40, 7)


# ---------------------------------------------------------------- numbering


def test_send_outside_a_batch_is_stored_and_written_before_it_returns() -> None:
    pair = logged_on_pair()
    side = pair.initiator
    wire = wire_of(side)
    seq = side.driver.send("D", order(1))
    assert stored(side.store)[seq].get(11) == b"1"
    assert [(m.seq_num, m.get(11)) for m in wire] == [(seq, b"1")]


def test_sends_in_a_batch_are_numbered_at_once_and_stored_and_written_at_its_end() -> None:
    pair = logged_on_pair()
    side = pair.initiator
    wire = wire_of(side)
    first = side.driver.session.next_sender
    promised: list[int] = []
    with side.driver.batch():
        for i in range(1, 4):
            promised.append(side.driver.send("D", order(i)))
            assert first + len(promised) - 1 not in stored(side.store), "stored before the batch ended"
        assert wire == []
    assert promised == [first, first + 1, first + 2]
    assert [(m.seq_num, m.get(11)) for m in wire] == [(first, b"1"), (first + 1, b"2"), (first + 2, b"3")]
    assert {seq: stored(side.store)[seq].get(11) for seq in promised} == {first: b"1", first + 1: b"2",
                                                                           first + 2: b"3"}


def test_before_sync_is_called_before_a_batch_that_stored_something_waits_on_the_disk() -> None:
    pair = logged_on_pair()
    driver = pair.initiator.driver
    syncs = driver.traffic.store_sync  # one observation per store sync, made when it returns
    seen: list[int] = []
    driver.before_sync = lambda: seen.append(syncs.count)
    with driver.batch():
        pass
    assert seen == [], "a batch that stored nothing syncs nothing"
    before = syncs.count
    with driver.batch():
        driver.send("D", order(1))
    assert seen == [before] and syncs.count == before + 1, "called once, before the sync"


def test_a_logout_between_sends_in_a_batch_takes_its_own_number() -> None:
    pair = logged_on_pair()
    side = pair.initiator
    wire = wire_of(side)
    with side.driver.batch():
        a = side.driver.send("D", order(1))
        side.driver.logout("end of day")
        b = side.driver.send("D", order(2))
    assert b == a + 2
    assert [(m.seq_num, m.msg_type) for m in wire] == [(a, "D"), (a + 1, "5")]
    # Sent while logging out: stored under the promised number, for a resend after the next Logon.
    assert stored(side.store)[b].get(11) == b"2"


def test_a_reset_inside_a_batch_does_not_falsify_an_earlier_promise() -> None:
    """A caller that adds its sends to ``next_sender`` would have named 1 wrongly here."""
    pair = logged_on_pair()
    side = pair.initiator
    side.driver.logout("end of day")
    pair.pump()
    with side.driver.batch():
        before = side.driver.send("D", order(1))
        side.driver.reset_sequence_numbers("operator reset")
        after = side.driver.send("D", order(2))
    assert before > 1 and after == 1
    assert {seq: m.get(11) for seq, m in stored(side.store).items()} == {1: b"2"}, "the reset emptied the store"
    assert side.store.next_sender_seq == 2


class Replier(RecordingApp):
    """Answers each order from ``on_message``, inside the batch that delivers it, and notes the numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.promised: list[int] = []

    def on_message(self, driver: SessionDriver, message: Message) -> None:
        super().on_message(driver, message)
        self.promised.append(driver.send("8", [(11, message.get(11) or b"")]))


def test_a_send_from_on_message_returns_the_number_it_goes_out_with() -> None:
    pair = SessionPair()
    replier = Replier()
    pair.acceptor.driver.app = replier
    pair.acceptor.app = replier
    pair.connect()
    wire = wire_of(pair.acceptor)
    stamp = TimestampFormatter(3).format(pair.clock.utc_ns)
    seq = pair.initiator.driver.session.next_sender
    header = [(49, b"BUY"), (52, stamp), (56, b"SELL")]
    orders = [encode(b"FIX.4.4", b"D", [(34, b"%d" % (seq + i)), *header], order(i + 1)) for i in range(2)]
    test_request = encode(b"FIX.4.4", b"1", [(34, b"%d" % (seq + 2)), *header], [(112, b"T")])
    # One read: each order is answered before the next message is handled, the TestRequest's Heartbeat last.
    pair.acceptor.driver.feed(b"".join(orders) + test_request)
    reports = {m.get(11): m.seq_num for m in wire if m.msg_type == "8"}
    assert reports == {b"1": replier.promised[0], b"2": replier.promised[1]}
    assert [m.msg_type for m in wire] == ["8", "8", "0"]
    numbers = [m.seq_num for m in wire]
    assert numbers == sorted(numbers) and numbers == list(range(numbers[0], numbers[0] + 3)), "in order, no gap"
