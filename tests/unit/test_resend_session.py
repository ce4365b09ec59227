"""The session core's resend safeguards and its one-message-at-a-time processing, without I/O.

* ``resend_request_chunk_size``: a long gap is asked for in ResendRequests of
  at most that many messages, the next once the previous is filled;
* ``answer_resend(..., through=)``: a range answered in parts gives the same
  messages as the range answered at once, however it is cut;
* ``resend_storm_interval_s``: the same ResendRequest again within the
  interval is not answered again, and is reported once per interval;
* ``process`` stops after each application message (``more_input``), so that
  the application answers it before the next message of the read is handled.
"""

from __future__ import annotations

import dataclasses

import pytest

from actors.fix import tags as T
from actors.fix.codec import encode, parse
from actors.fix.config import Role, SessionConfig
from actors.fix.message import Message
from actors.fix.outputs import Deliver, Log, Output, Resend, Send, SessionEvent
from actors.fix.session import Session
from actors.fix.states import SessionState
from actors.fix.timefmt import NS_PER_S, Instant, TimestampFormatter

NOW = Instant(100.0, 1_800_000_000 * NS_PER_S)
STAMP = TimestampFormatter(3).format(NOW.utc_ns)
CONFIG = SessionConfig("FIX.4.4", "GATEWAY", "TRADER", Role.ACCEPTOR, use_data_dictionary=False)


def message(msg_type: bytes, seq: int, body: list[tuple[int, bytes]], *, possdup: bool = False) -> bytes:
    header = [(34, b"%d" % seq), (49, b"TRADER"), (52, STAMP), (56, b"GATEWAY")]
    if possdup:
        header += [(43, b"Y"), (122, STAMP)]
    return encode(b"FIX.4.4", msg_type, sorted(header), body)


def logged_on(**settings: object) -> Session:
    session = Session(dataclasses.replace(CONFIG, **settings))  # type: ignore[arg-type]
    session.connection_made(NOW)
    feed(session, message(b"A", 1, [(98, b"0"), (108, b"30")]))
    assert session.state is SessionState.CONNECTED
    return session


def feed(session: Session, data: bytes, now: Instant = NOW) -> list[Output]:
    """As a runner does: ``process`` again while it stopped after an application message."""
    session.receive(data)
    outputs = session.process(now)
    while session.more_input:
        outputs += session.process(now)
    return outputs


def sent(outputs: list[Output]) -> list[Message]:
    return [parse(o.data) for o in outputs if isinstance(o, Send)]


def resend_requests(outputs: list[Output]) -> list[tuple[int | None, int | None]]:
    return [(m.get_int(T.BEGIN_SEQ_NO), m.get_int(T.END_SEQ_NO)) for m in sent(outputs) if m.msg_type == "2"]


def gap_fill(seq: int, new_seq: int) -> bytes:
    return message(b"4", seq, [(T.NEW_SEQ_NO, b"%d" % new_seq), (T.GAP_FILL_FLAG, b"Y")], possdup=True)


def order(seq: int, *, possdup: bool = False) -> bytes:
    return message(b"D", seq, [(11, b"%d" % seq)], possdup=possdup)


# ------------------------------------------------------- ResendRequests we send


def test_a_gap_longer_than_the_chunk_is_asked_for_one_chunk_at_a_time() -> None:
    session = logged_on(resend_request_chunk_size=2500)
    # Expecting 2, the peer's 10,002 opens a gap of 10,000 messages (2..10,001).
    assert resend_requests(feed(session, order(10_002))) == [(2, 2501)]
    # Filled message by message: the chunk's last one brings the next chunk's request, not before.
    assert resend_requests(feed(session, b"".join(order(s, possdup=True) for s in range(2, 2501)))) == []
    assert resend_requests(feed(session, order(2501, possdup=True))) == [(2502, 5001)]
    # A GapFill past the chunk's end: the next chunk starts where it landed.
    assert resend_requests(feed(session, gap_fill(2502, 6000))) == [(6000, 8499)]
    assert resend_requests(feed(session, gap_fill(6000, 8500))) == [(8500, 10_001)]
    # The last chunk filled: the queued 10,002 is delivered and nothing more is asked for.
    outputs = feed(session, gap_fill(8500, 10_002))
    assert resend_requests(outputs) == []
    assert [o.message.get_int(11) for o in outputs if isinstance(o, Deliver)] == [10_002]
    assert session.next_target == 10_003 and session.status()["resend_range"] is None


def test_a_gap_within_the_chunk_and_chunking_off_ask_once_to_the_end() -> None:
    short = logged_on(resend_request_chunk_size=2500)
    assert resend_requests(feed(short, order(2502))) == [(2, 0)], "2,500 missing: one request, EndSeqNo 0"
    whole = logged_on()
    assert resend_requests(feed(whole, order(10_002))) == [(2, 0)], "chunk size 0 (the default): the whole gap"


def test_new_messages_during_a_chunked_resend_wait_in_the_queue_without_more_requests() -> None:
    session = logged_on(resend_request_chunk_size=100)
    assert resend_requests(feed(session, order(302))) == [(2, 101)]
    assert resend_requests(feed(session, order(303) + order(304))) == [], "the gap is already being asked for"
    outputs = feed(session, gap_fill(2, 302))
    assert [o.message.get_int(11) for o in outputs if isinstance(o, Deliver)] == [302, 303, 304]
    assert resend_requests(outputs) == []


def test_a_disconnect_forgets_a_chunked_resend() -> None:
    session = logged_on(resend_request_chunk_size=100)
    feed(session, order(302))
    session.connection_lost(NOW, "gone")
    session.connection_made(NOW)
    outputs = feed(session, message(b"A", 303, [(98, b"0"), (108, b"30")]))
    assert resend_requests(outputs) == [(2, 101)], "after the next Logon the gap is asked for afresh"


# ------------------------------------------------------- answering in parts


def stored_range() -> list[tuple[int, bytes]]:
    """Numbers 1..60 as a store holds them: orders, runs of session messages, and missing numbers."""
    header = [(49, b"GATEWAY"), (52, b"20260101-00:00:00.000"), (56, b"TRADER")]
    stored = []
    for seq in range(1, 61):
        if seq in (7, 8, 9, 30, 31, 50):
            continue  # never stored: a gap in the store
        admin = seq == 1 or 14 <= seq <= 20 or seq % 11 == 0
        msg_type, body = (b"0", []) if admin else (b"8", [(11, b"%d" % seq)])
        stored.append((seq, encode(b"FIX.4.4", msg_type, [(34, b"%d" % seq), *header], body)))
    return stored


def answer_in_parts(begin: int, end: int, size: int) -> list[Output]:
    """As the driver answers: the store read ``size`` messages at a time, each part ending at its last number."""
    session = logged_on()
    stored = [(s, d) for s, d in stored_range() if begin <= s <= end]
    outputs: list[Output] = []
    read_from = begin
    while True:
        part = [(s, d) for s, d in stored if s >= read_from][:size]
        through = end if len(part) < size or part[-1][0] >= end else part[-1][0]
        outputs += session.answer_resend(begin, end, part, NOW, through=through)
        if through >= end:
            return outputs
        read_from = through + 1


@pytest.mark.parametrize("begin, end", [(1, 60), (2, 45), (15, 22), (31, 31)])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_a_range_answered_in_parts_is_the_range_answered_at_once(begin: int, end: int, size: int) -> None:
    whole = logged_on().answer_resend(begin, end, [(s, d) for s, d in stored_range() if begin <= s <= end], NOW)
    parts = answer_in_parts(begin, end, size)
    assert [o.data for o in parts if isinstance(o, Send)] == [o.data for o in whole if isinstance(o, Send)]
    events = [o.text for o in parts if isinstance(o, SessionEvent)]
    assert events == [o.text for o in whole if isinstance(o, SessionEvent)] and len(events) == 1


def test_the_answer_gap_fills_runs_and_resends_the_rest_in_order() -> None:
    answer = sent(answer_in_parts(1, 60, 4))
    numbers = [(m.msg_type, m.seq_num, m.get_int(T.NEW_SEQ_NO)) for m in answer]
    assert numbers[:4] == [("4", 1, 2), ("8", 2, None), ("8", 3, None), ("8", 4, None)]
    assert ("4", 7, 10) in numbers and ("4", 14, 21) in numbers and ("4", 30, 32) in numbers
    assert all(m.flag(T.POSS_DUP_FLAG) for m in answer)
    covered = []
    for msg_type, seq, new_seq in numbers:
        assert seq is not None
        covered += list(range(seq, new_seq)) if msg_type == "4" and new_seq is not None else [seq]
    assert covered == list(range(1, 61)), "every number once, in order"


# ------------------------------------------------------- ResendRequest storms


def resend_request(seq: int, begin: int = 1, end: int = 0) -> bytes:
    return message(b"2", seq, [(T.BEGIN_SEQ_NO, b"%d" % begin), (T.END_SEQ_NO, b"%d" % end)])


def later(seconds: float) -> Instant:
    return Instant(NOW.mono_s + seconds, NOW.utc_ns + int(seconds * NS_PER_S))


def storm_events(outputs: list[Output]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, SessionEvent) and o.kind == "resend_storm"]


def test_the_same_resend_request_within_the_interval_is_answered_once_and_reported_once() -> None:
    session = logged_on()
    first = feed(session, resend_request(2), later(0.0))
    assert [o for o in first if isinstance(o, Resend)] == [Resend(1, 1)]
    repeats = [feed(session, resend_request(seq), later(0.1 * (seq - 2))) for seq in range(3, 13)]
    assert not any(isinstance(o, Resend) for out in repeats for o in out), "10 repeats within 1 s: none answered"
    reported = [storm_events(out) for out in repeats]
    assert reported[0] == ["ResendRequest 1..0 repeated 1 time(s) within 2 s of its answer: answered once per 2 s"]
    assert all(not r for r in reported[1:]), "one report per interval"
    assert any(isinstance(o, Log) and o.level == "warning" for o in repeats[0])
    assert session.next_target == 13, "each repeat still consumed its MsgSeqNum"
    # Past the interval from the answer, the range is answered again.
    again = feed(session, resend_request(13), later(2.0))
    assert [o for o in again if isinstance(o, Resend)] == [Resend(1, 1)] and not storm_events(again)
    assert storm_events(feed(session, resend_request(14), later(2.5))) == [
        "ResendRequest 1..0 repeated 1 time(s) within 2 s of its answer: answered once per 2 s"]


def test_other_ranges_a_new_connection_and_a_zero_interval_are_answered_every_time() -> None:
    session = logged_on()
    assert any(isinstance(o, Resend) for o in feed(session, resend_request(2, 1, 0)))
    assert any(isinstance(o, Resend) for o in feed(session, resend_request(3, 1, 1))), "another range"
    session.connection_lost(NOW, "gone")
    session.connection_made(NOW)
    feed(session, message(b"A", 4, [(98, b"0"), (108, b"30")]))
    assert any(isinstance(o, Resend) for o in feed(session, resend_request(5, 1, 0))), "a new connection"
    every = logged_on(resend_storm_interval_s=0.0)
    answered = [any(isinstance(o, Resend) for o in feed(every, resend_request(seq))) for seq in range(2, 6)]
    assert answered == [True] * 4


def test_storm_memory_is_bounded() -> None:
    session = logged_on()
    for seq in range(2, 202):
        feed(session, resend_request(seq, 1, seq), later(0.001 * seq))
    assert len(session._answered_requests) <= 32  # noqa: SLF001 - the bound is the point of the test


# ------------------------------------------------------- one message at a time


def test_process_stops_after_each_application_message() -> None:
    session = logged_on()
    session.receive(order(2) + message(b"1", 3, [(112, b"T")]) + order(4))
    first = session.process(NOW)
    assert [type(o).__name__ for o in first] == ["Deliver"] and session.more_input
    second = session.process(NOW)
    assert [(m.msg_type, m.get(112)) for m in sent(second)] == [("0", b"T")], "the TestRequest after the order"
    assert isinstance(second[-1], Deliver) and second[-1].message.get_int(11) == 4 and session.more_input
    assert session.process(NOW) == [] and not session.more_input


def test_queued_messages_are_delivered_one_at_a_time_too() -> None:
    session = logged_on()
    feed(session, order(3) + order(4))
    session.receive(order(2, possdup=True))
    per_call: list[list[int | None]] = []
    for _ in range(10):
        per_call.append([o.message.get_int(11) for o in session.process(NOW) if isinstance(o, Deliver)])
        if not session.more_input:
            break
    assert per_call == [[2], [3], [4], []] and session.next_target == 5
