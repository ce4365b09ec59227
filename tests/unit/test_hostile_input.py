"""What the fuzzer against a live acceptor found (``tests/fuzz``, ``docs/fuzzing.md``), one test per defect.

Each test sends the exact input to an in-process acceptor and checks the FIX
answer:

* a MsgSeqNum whose bytes are not UTF-8 (``34=\\xc3(``) raised out of the
  session core while the Reject's log line was written, and the process
  exited; and a MsgSeqNum that is no number was echoed into the Reject's
  RefSeqNum, which made our own Reject invalid: such a MsgSeqNum is now
  answered as a missing one is, with a Logout;
* an integer field present but too long to be a number (BeginSeqNo or
  NewSeqNo of 19 digits) was rejected as "Required tag missing";
* a Logon refused for its SendingTime or CompIDs was dropped with nothing
  sent, as intended, but a Logout was still numbered and stored after the
  drop, so the peer saw a gap in our numbers;
* a Logon while our Logout waited for its answer raised IllegalTransition
  out of the session (the process exited), after resetting both numbers and
  the store when it carried ResetSeqNumFlag=Y;
* after a too-high Logon's gap was filled, the next gap was never asked for:
  the filled range stayed "outstanding" and suppressed the ResendRequest, and
  every later message waited in the queue for good;
* the queue of too-high messages had no bound (about 2 KiB per small message)
  and was scanned whole after every message (100,000 of them took a minute).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.fix import tags as T
from actors.fix.codec import encode, parse
from actors.fix.config import Role, SessionConfig
from actors.fix.dictionary import parse_dictionary
from actors.fix.message import Message
from actors.fix.outputs import Deliver, Disconnect, Output, ResetStore, Send
from actors.fix.session import MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES, Session
from actors.fix.states import SessionState
from actors.fix.timefmt import NS_PER_S, Instant, TimestampFormatter
from actors.fix.validation import RejectReason

NOW = Instant(100.0, 1_800_000_000 * NS_PER_S)
STAMP = TimestampFormatter(3).format(NOW.utc_ns)
SPEC = Path(os.environ.get("FIXMESH_CONFORMANCE_DIR", Path(__file__).resolve().parents[3] / "shared" / "conformance"
                           / "quickfix")) / "spec" / "FIX44.xml"


def message(msg_type: bytes, seq: bytes | int, body: list[tuple[int, bytes]], *, stamp: bytes = STAMP,
            sender: bytes = b"TRADER", extra_header: list[tuple[int, bytes]] | None = None) -> bytes:
    raw_seq = seq if isinstance(seq, bytes) else b"%d" % seq
    header = [(34, raw_seq), (49, sender), (52, stamp), (56, b"GATEWAY")] + (extra_header or [])
    return encode(b"FIX.4.4", msg_type, sorted(header), body)


def acceptor(*, dictionary: bool = False, logged_on: bool = True) -> Session:
    dd = parse_dictionary(SPEC.read_text(encoding="utf-8"), str(SPEC)) if dictionary else None
    config = SessionConfig("FIX.4.4", "GATEWAY", "TRADER", Role.ACCEPTOR, use_data_dictionary=dd is not None)
    session = Session(config, transport_dictionary=dd, app_dictionary=dd)
    session.connection_made(NOW)
    if logged_on:
        feed(session, message(b"A", 1, [(98, b"0"), (108, b"30")]))
        assert session.state is SessionState.CONNECTED
    return session


def feed(session: Session, data: bytes) -> list[Output]:
    """Like a runner: ``process`` again while it stops after an application message."""
    session.receive(data)
    outputs = session.process(NOW)
    while session.more_input:
        outputs += session.process(NOW)
    return outputs


def sent(outputs: list[Output]) -> list[Message]:
    return [parse(o.data) for o in outputs if isinstance(o, Send)]


def reject_of(outputs: list[Output]) -> Message:
    rejects = [m for m in sent(outputs) if m.msg_type == "3"]
    assert len(rejects) == 1, [m.to_text() for m in sent(outputs)]
    return rejects[0]


# ---------------------------------------------------------------- MsgSeqNum bytes


@pytest.mark.parametrize("dictionary", [True, False], ids=["validating", "no dictionary"])
@pytest.mark.parametrize("raw", [b"\xc3(", b"\xff", b"1\x80", b"abc", b"-5", b"12A", b"", b"1" * 19])
def test_an_unreadable_msgseqnum_is_answered_like_a_missing_one(raw: bytes, dictionary: bool) -> None:
    """A Logout and a disconnect, FIX's answer to a missing MsgSeqNum, with or without a dictionary.

    It was a Reject (the dictionary finds the format wrong) whose log line raised UnicodeDecodeError
    for bytes that are not UTF-8, ending the process, and whose RefSeqNum echoed ``abc``, making the
    Reject invalid; without a RefSeqNum (a required field) it would be invalid too.
    """
    if dictionary and not SPEC.is_file():
        pytest.skip("FIX44.xml (FIXMESH_CONFORMANCE_DIR) is needed")
    session = acceptor(dictionary=dictionary)
    outputs = feed(session, message(b"D", raw, [(11, b"1"), (21, b"1"), (38, b"1"), (40, b"1"), (54, b"1"),
                                               (55, b"X"), (60, STAMP)]))
    answer = sent(outputs)
    assert [m.msg_type for m in answer] == ["5"], [m.to_text() for m in answer]
    assert b"MsgSeqNum (34) is not a number" in (answer[0].get(T.TEXT) or b"")
    assert (answer[0].get(T.TEXT) or b"").isascii()
    assert any(isinstance(o, Disconnect) for o in outputs)


def test_an_unreadable_msgseqnum_before_logon_ends_the_connection_with_nothing_sent() -> None:
    session = acceptor(logged_on=False)
    outputs = feed(session, message(b"A", b"\xff", [(98, b"0"), (108, b"30")]))
    assert any(isinstance(o, Disconnect) for o in outputs) and sent(outputs) == []


@pytest.mark.skipif(not SPEC.is_file(), reason="FIX44.xml (FIXMESH_CONFORMANCE_DIR) is needed")
def test_a_reject_refers_only_to_a_msgseqnum_that_is_a_number() -> None:
    """A SequenceReset-Reset, whose MsgSeqNum FIX ignores, is the one message validated with ``34=abc``:
    its Reject leaves RefSeqNum out rather than make itself invalid with ``45=abc``."""
    session = acceptor(dictionary=True)
    reject = reject_of(feed(session, message(b"4", b"abc", [(T.NEW_SEQ_NO, b"5")])))
    assert reject.get(T.REF_SEQ_NUM) is None
    assert (reject.get_int(T.SESSION_REJECT_REASON), reject.get_int(T.REF_TAG_ID)) == (6, T.MSG_SEQ_NUM)
    assert session.state is SessionState.CONNECTED


def test_a_reject_still_refers_to_a_msgseqnum_that_is_a_number() -> None:
    reject = reject_of(feed(acceptor(), message(b"2", 2, [(T.BEGIN_SEQ_NO, b"0"), (T.END_SEQ_NO, b"0")])))
    assert reject.get(T.REF_SEQ_NUM) == b"2"


# ---------------------------------------------------------------- integers out of range


@pytest.mark.parametrize("msg_type, body, tag, reason", [
    (b"2", [(T.BEGIN_SEQ_NO, b"9" * 19), (T.END_SEQ_NO, b"0")], T.BEGIN_SEQ_NO, RejectReason.VALUE_IS_INCORRECT),
    (b"2", [(T.BEGIN_SEQ_NO, b"1"), (T.END_SEQ_NO, b"9" * 5000)], T.END_SEQ_NO, RejectReason.VALUE_IS_INCORRECT),
    (b"4", [(T.NEW_SEQ_NO, b"%d" % 2**63)], T.NEW_SEQ_NO, RejectReason.VALUE_IS_INCORRECT),
    (b"4", [(T.NEW_SEQ_NO, b"ten")], T.NEW_SEQ_NO, RejectReason.INCORRECT_DATA_FORMAT_FOR_VALUE),
    (b"4", [(T.NEW_SEQ_NO, b"")], T.NEW_SEQ_NO, RejectReason.TAG_SPECIFIED_WITHOUT_A_VALUE),
    (b"4", [], T.NEW_SEQ_NO, RejectReason.REQUIRED_TAG_MISSING),
    (b"2", [(T.BEGIN_SEQ_NO, b"1")], T.END_SEQ_NO, RejectReason.REQUIRED_TAG_MISSING),
], ids=["BeginSeqNo 19 digits", "EndSeqNo 5000 digits", "NewSeqNo 2^63", "NewSeqNo letters", "NewSeqNo empty",
        "NewSeqNo absent", "EndSeqNo absent"])
def test_only_an_absent_integer_field_is_required_tag_missing(
        msg_type: bytes, body: list[tuple[int, bytes]], tag: int, reason: RejectReason) -> None:
    session = acceptor()
    before = session.next_target
    reject = reject_of(feed(session, message(msg_type, 2, body)))
    assert (reject.get_int(T.SESSION_REJECT_REASON), reject.get_int(T.REF_TAG_ID)) == (int(reason), tag)
    assert session.next_target <= before + 1 and session.state is SessionState.CONNECTED


# ---------------------------------------------------------------- refused Logons


@pytest.mark.parametrize("logon", [
    message(b"A", 1, [(98, b"0"), (108, b"30")], stamp=TimestampFormatter(3).format(NOW.utc_ns - 7200 * NS_PER_S)),
    message(b"A", 1, [(98, b"0"), (108, b"30")], sender=b"INTRUDER"),
], ids=["SendingTime two hours off", "wrong SenderCompID"])
def test_a_refused_logon_is_closed_with_nothing_sent_and_nothing_numbered(logon: bytes) -> None:
    session = acceptor(logged_on=False)
    outputs = feed(session, logon)
    assert any(isinstance(o, Disconnect) for o in outputs)
    assert [o for o in outputs if isinstance(o, Send)] == [], "a Logout was numbered and stored after the drop"
    assert session.next_sender == 1
    # The next, valid Logon gets our first number: the peer sees no gap.
    session.connection_lost(NOW)
    session.connection_made(NOW)
    answer = sent(feed(session, message(b"A", 1, [(98, b"0"), (108, b"30")])))
    assert [(m.msg_type, m.seq_num) for m in answer] == [("A", 1)]


# ---------------------------------------------------------------- a Logon while our Logout waits


@pytest.mark.parametrize("reset", [False, True], ids=["Logon", "Logon ResetSeqNumFlag=Y"])
def test_a_logon_while_our_logout_waits_for_its_answer_ends_the_connection(reset: bool) -> None:
    """It raised IllegalTransition (WAITING_FOR_FORCED_LOGOFF -> CONNECTED) and ended the process; with
    ResetSeqNumFlag=Y both numbers and the store were reset first, for a Logon that was then refused."""
    session = acceptor()
    wrong_target = encode(b"FIX.4.4", b"0", [(34, b"2"), (49, b"TRADER"), (52, STAMP), (56, b"SOMEONE")], [])
    assert [m.msg_type for m in sent(feed(session, wrong_target))] == ["3", "5"]  # CompID problem, Logout
    assert session.state is SessionState.WAITING_FOR_FORCED_LOGOFF
    before = session.next_sender, session.next_target
    body = [(98, b"0"), (108, b"30")] + ([(141, b"Y")] if reset else [])
    outputs = feed(session, message(b"A", 1 if reset else 3, body))
    assert any(isinstance(o, Disconnect) for o in outputs)
    assert not any(isinstance(o, (Send, ResetStore)) for o in outputs), outputs
    assert (session.next_sender, session.next_target) == before


# ---------------------------------------------------------------- gaps after a gap-filled Logon


def test_a_new_gap_after_a_gap_filled_logon_is_asked_for() -> None:
    session = acceptor()  # Logon 1 processed, expecting 2
    session.connection_lost(NOW)
    session.connection_made(NOW)
    answer = sent(feed(session, message(b"A", 5, [(98, b"0"), (108, b"30")])))
    assert [(m.msg_type, m.get_int(T.BEGIN_SEQ_NO)) for m in answer] == [("A", None), ("2", 2)]
    gap_fill = message(b"4", 2, [(T.NEW_SEQ_NO, b"5"), (T.GAP_FILL_FLAG, b"Y")],
                       extra_header=[(43, b"Y"), (122, STAMP)])
    assert sent(feed(session, gap_fill)) == []
    assert session.next_target == 6  # the queued Logon consumed 5
    # Message 8 leaves 6 and 7 missing: they must be asked for, or 8 and all after it wait for ever.
    answer = sent(feed(session, message(b"0", 8, [])))
    assert [(m.msg_type, m.get_int(T.BEGIN_SEQ_NO)) for m in answer] == [("2", 6)]
    delivered = feed(session, message(b"4", 6, [(T.NEW_SEQ_NO, b"8"), (T.GAP_FILL_FLAG, b"Y")],
                                      extra_header=[(43, b"Y"), (122, STAMP)]))
    assert session.next_target == 9 and not session.status()["queued"], delivered


# ---------------------------------------------------------------- the queue of too-high messages


def test_too_high_messages_are_queued_within_a_bound_and_all_arrive_in_the_end() -> None:
    session = acceptor()  # expecting 2
    flood = MAX_QUEUED_MESSAGES + 50
    data = b"".join(message(b"D", 3 + i, [(11, b"%d" % (3 + i))]) for i in range(flood))
    answer = sent(feed(session, data))
    assert [(m.msg_type, m.get_int(T.BEGIN_SEQ_NO)) for m in answer] == [("2", 2)], "one ResendRequest"
    queued = session.status()["queued"]
    assert isinstance(queued, list) and len(queued) == MAX_QUEUED_MESSAGES
    # The peer fills the gap: the queued messages are delivered in order ...
    outputs = feed(session, message(b"4", 2, [(T.NEW_SEQ_NO, b"3"), (T.GAP_FILL_FLAG, b"Y")],
                                    extra_header=[(43, b"Y"), (122, STAMP)]))
    delivered = [o.message.get_int(11) for o in outputs if isinstance(o, Deliver)]
    assert delivered == list(range(3, 3 + MAX_QUEUED_MESSAGES))
    # ... and its next message shows the messages that were not kept as a gap, which is asked for.
    last_kept = 2 + MAX_QUEUED_MESSAGES
    answer = sent(feed(session, message(b"D", 3 + flood, [(11, b"x")])))
    assert [(m.msg_type, m.get_int(T.BEGIN_SEQ_NO)) for m in answer] == [("2", last_kept + 1)]


def test_the_queue_is_bounded_in_bytes_too() -> None:
    session = acceptor()
    big = b"B" * (1 << 20)
    count = MAX_QUEUED_BYTES // len(big) + 3
    feed(session, b"".join(message(b"D", 3 + i, [(11, b"%d" % i), (58, big)]) for i in range(count)))
    queued = session.status()["queued"]
    assert isinstance(queued, list) and len(queued) < count
    assert len(queued) * len(big) <= MAX_QUEUED_BYTES
