"""The driver answers a ResendRequest part by part, paced by its transport, and keeps the answer contiguous.

The transport here is a stand-in for a socket whose peer reads only when the
test says so (``SlowSocket``): what is written stays "unsent" until then, as
in ``SocketTransport``'s buffer, and ``when_drained`` calls back after the
read. The driver, the session and the store are the real ones.
"""

from __future__ import annotations

from collections.abc import Callable

from actors.fix import tags as T
from actors.fix.codec import Framer, encode, parse
from actors.fix.config import Role, SessionConfig
from actors.fix.message import Message
from actors.fix.session import Session
from actors.fix.states import SessionState
from actors.fix.timefmt import TimestampFormatter
from actors.shell.driver import BackPressure, SessionDriver
from actors.store import MemoryStore
from tests.pair import FakeClock, RecordingApp

STORED = 3000
PART = 100
HEADER = [(49, b"SELL"), (52, b"20260101-00:00:00.000"), (56, b"BUY")]


class SlowSocket:
    """Bytes written wait "unsent" until the test reads them; ``when_drained`` as ``SocketTransport`` has it."""

    def __init__(self) -> None:
        self.read_so_far: list[Message] = []
        self.unsent = bytearray()
        self.closed = False
        self.waiter: tuple[int, Callable[[], None]] | None = None
        self._framer = Framer()

    @property
    def unsent_bytes(self) -> int:
        return len(self.unsent)

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.unsent += data

    def close(self) -> None:
        self.closed = True

    def when_drained(self, below_bytes: int, callback: Callable[[], None]) -> None:
        assert len(self.unsent) > below_bytes, "the driver asks only when there is something to wait for"
        self.waiter = (below_bytes, callback)

    def peer_reads(self) -> list[Message]:
        """The peer takes everything written so far; the driver is called back as a loop would."""
        self._framer.feed(bytes(self.unsent))
        self.unsent.clear()
        new = []
        while (frame := self._framer.next_frame()) is not None:
            new.append(parse(frame.data))
        self.read_so_far += new
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            waiter[1]()
        return new


class Client:
    """The counterparty's side of the wire, by hand: what the acceptor reads."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.seq = 1

    def message(self, msg_type: bytes, body: list[tuple[int, bytes]]) -> bytes:
        stamp = TimestampFormatter(3).format(self.clock.utc_ns)
        data = encode(b"FIX.4.4", msg_type, [(34, b"%d" % self.seq), (49, b"BUY"), (52, stamp), (56, b"SELL")], body)
        self.seq += 1
        return data


def acceptor_with_history(clock: FakeClock) -> tuple[SessionDriver, SlowSocket, Client]:
    """A logged-on acceptor whose store holds 3,000 orders it sent before (1..3000); its Logon reply is 3001."""
    store = MemoryStore("SELL", now_ns=clock.utc_ns)
    for seq in range(1, STORED + 1):
        store.save_outgoing(seq, encode(b"FIX.4.4", b"8", [(34, b"%d" % seq), *HEADER], [(11, b"%d" % seq)]))
    config = SessionConfig("FIX.4.4", "SELL", "BUY", Role.ACCEPTOR, use_data_dictionary=False,
                           resend_answer_chunk_size=PART)
    session = Session(config, next_sender=store.next_sender_seq, next_target=1)
    driver = SessionDriver(session, store, RecordingApp(), name="acceptor", now=clock)
    driver.resend_high_water_bytes = 20_000
    driver.resend_low_water_bytes = 5_000
    socket = SlowSocket()
    assert isinstance(socket, BackPressure)
    client = Client(clock)
    driver.attach(socket)
    driver.feed(client.message(b"A", [(98, b"0"), (108, b"30")]))
    assert session.state is SessionState.CONNECTED
    [logon] = socket.peer_reads()
    assert (logon.msg_type, logon.seq_num) == ("A", STORED + 1)
    socket.read_so_far.clear()
    return driver, socket, client


def covered(messages: list[Message]) -> list[int]:
    """The MsgSeqNums a run of messages accounts for, a GapFill for its whole run."""
    numbers: list[int] = []
    for m in messages:
        assert m.seq_num is not None
        new_seq = m.get_int(T.NEW_SEQ_NO)
        numbers += list(range(m.seq_num, new_seq)) if m.msg_type == "4" and new_seq is not None else [m.seq_num]
    return numbers


def read_until_quiet(socket: SlowSocket, limit: int = 1000) -> int:
    """The peer reads until nothing more comes; how many reads it took (bounded)."""
    for reads in range(1, limit + 1):
        if not socket.peer_reads():
            return reads
    raise AssertionError(f"still writing after {limit} reads")


def test_the_answer_pauses_while_the_peer_lags_and_new_messages_wait_behind_it() -> None:
    clock = FakeClock()
    driver, socket, client = acceptor_with_history(clock)
    driver.feed(client.message(b"2", [(T.BEGIN_SEQ_NO, b"1"), (T.END_SEQ_NO, b"0")]))
    assert socket.waiter is not None, "the answer paused for the peer"
    assert 20_000 < socket.unsent_bytes < 20_000 + 2 * PART * 200, "at most a part beyond the high-water mark"
    new_seq = driver.send("8", [(11, b"new")])
    assert new_seq == STORED + 2, "numbered at once, after the Logon reply"
    reads = read_until_quiet(socket)
    wire = socket.read_so_far
    assert reads > 5, "the answer came in several writes"
    assert covered(wire) == list(range(1, STORED + 3)), "1..3000 resent, the Logon gap-filled, then the new one"
    assert all(m.flag(T.POSS_DUP_FLAG) for m in wire[:-1]) and not wire[-1].flag(T.POSS_DUP_FLAG)
    assert wire[-1].get(11) == b"new" and wire[-2].msg_type == "4"
    assert [m.get_int(11) for m in wire if m.msg_type == "8"][:-1] == list(range(1, STORED + 1))
    assert driver.traffic.resend_requests_answered == 1


def test_a_second_request_during_the_answer_is_answered_after_it_and_before_new_messages() -> None:
    clock = FakeClock()
    driver, socket, client = acceptor_with_history(clock)
    driver.feed(client.message(b"2", [(T.BEGIN_SEQ_NO, b"1"), (T.END_SEQ_NO, b"0")]))
    assert socket.waiter is not None
    driver.feed(client.message(b"2", [(T.BEGIN_SEQ_NO, b"2990"), (T.END_SEQ_NO, b"2995")]))
    driver.send("8", [(11, b"new")])
    read_until_quiet(socket)
    numbers = covered(socket.read_so_far)
    assert numbers == list(range(1, STORED + 2)) + list(range(2990, 2996)) + [STORED + 2]


def test_a_logout_during_the_answer_is_answered_after_what_was_written_and_ends_it() -> None:
    clock = FakeClock()
    driver, socket, client = acceptor_with_history(clock)
    driver.feed(client.message(b"2", [(T.BEGIN_SEQ_NO, b"1"), (T.END_SEQ_NO, b"0")]))
    written = len(socket.unsent)
    driver.feed(client.message(b"5", []))
    assert socket.closed and driver.transport is None
    socket.peer_reads()
    wire = socket.read_so_far
    assert wire[-1].msg_type == "5" and wire[-1].seq_num == STORED + 2, "the Logout reply, with its own number"
    assert len(wire) < STORED and written > 0, "the rest of the answer was abandoned with the connection"
    assert covered(wire[:-1]) == list(range(1, len(covered(wire[:-1])) + 1)), "what went out is in order"


def test_a_peer_that_reads_nothing_while_new_messages_pile_up_is_disconnected() -> None:
    clock = FakeClock()
    driver, socket, client = acceptor_with_history(clock)
    driver.max_held_bytes = 10_000
    driver.feed(client.message(b"2", [(T.BEGIN_SEQ_NO, b"1"), (T.END_SEQ_NO, b"0")]))
    for n in range(200):
        driver.send("8", [(11, b"pile %d" % n)])
        if driver.transport is None:
            break
    assert driver.transport is None and socket.closed, "disconnected once 10,000 bytes waited behind the answer"
    assert driver.session.state is SessionState.DISCONNECTED_ABNORMALLY
    assert 60 < n < 120, f"after about 10,000 bytes of new messages, not {n}"
    assert driver.store.next_sender_seq == STORED + 3 + n, "what was sent stays stored for the next resend"


class Link:
    """A transport that takes everything at once (no back-pressure), as the in-memory link of the pair tests."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def messages(self) -> list[Message]:
        framer = Framer()
        framer.feed(b"".join(self.writes))
        return [parse(frame.data) for frame in iter(framer.next_frame, None)]


def acceptor_on_a_link(clock: FakeClock, stored: int) -> tuple[SessionDriver, Link]:
    store = MemoryStore("SELL", now_ns=clock.utc_ns)
    for seq in range(1, stored + 1):
        store.save_outgoing(seq, encode(b"FIX.4.4", b"8", [(34, b"%d" % seq), *HEADER], [(11, b"%d" % seq)]))
    config = SessionConfig("FIX.4.4", "SELL", "BUY", Role.ACCEPTOR, use_data_dictionary=False,
                           resend_answer_chunk_size=64)
    driver = SessionDriver(Session(config, next_sender=stored + 1), store, RecordingApp(), name="acceptor",
                           now=clock)
    link = Link()
    driver.attach(link)
    return driver, link


def test_without_back_pressure_the_whole_answer_goes_out_in_one_call() -> None:
    clock = FakeClock()
    driver, link = acceptor_on_a_link(clock, 1000)
    client = Client(clock)
    driver.feed(client.message(b"A", [(98, b"0"), (108, b"30")]) +
                client.message(b"2", [(T.BEGIN_SEQ_NO, b"1"), (T.END_SEQ_NO, b"0")]))
    wire = link.messages()
    assert covered(wire[1:]) == list(range(1, 1002)) and len(link.writes) >= 1000 // 64, "one write per part"


def test_a_resend_request_read_with_a_logout_is_answered_in_full_before_the_logout_reply() -> None:
    clock = FakeClock()
    driver, link = acceptor_on_a_link(clock, 300)
    client = Client(clock)
    driver.feed(client.message(b"A", [(98, b"0"), (108, b"30")]))
    driver.feed(client.message(b"2", [(T.BEGIN_SEQ_NO, b"1"), (T.END_SEQ_NO, b"0")]) + client.message(b"5", []))
    wire = link.messages()
    assert covered(wire[1:-1]) == list(range(1, 302)) and wire[-1].msg_type == "5" and link.closed
