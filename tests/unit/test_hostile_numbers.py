"""Numbers no FIX peer sends: each gets the answer the FIX spec gives, never an exception.

Python's int() refuses a string of more than 4,300 digits and float() a
number past 1e308, so a crafted BodyLength, tag, MsgSeqNum, HeartBtInt or
NumInGroup used to raise out of the session core and end the process. Integer
fields are now bounded to ``MAX_INT_DIGITS`` digits; past that a value is
read as not a number. And a ResendRequest for 0..0 used to be answered with a
gap fill numbered 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.fix import tags as T
from actors.fix.codec import Framer, encode, parse
from actors.fix.config import Role, SessionConfig
from actors.fix.dictionary import parse_dictionary
from actors.fix.message import Message
from actors.fix.outputs import Disconnect, Output, Send
from actors.fix.session import Session
from actors.fix.states import SessionState
from actors.fix.timefmt import Instant, TimestampFormatter

HUGE = b"9" * 5000
NOW = Instant(100.0, 1_800_000_000 * 10**9)
STAMP = TimestampFormatter(3).format(NOW.utc_ns)


def message(msg_type: bytes, seq: bytes | int, body: list[tuple[int, bytes]]) -> bytes:
    raw_seq = seq if isinstance(seq, bytes) else b"%d" % seq
    header = [(34, raw_seq), (49, b"TRADER"), (52, STAMP), (56, b"GATEWAY")]
    return encode(b"FIX.4.4", msg_type, header, body)


def acceptor(logged_on: bool, dictionary: bool = False) -> Session:
    dd = None
    if dictionary:
        spec = Path(os.environ.get("FIXMESH_CONFORMANCE_DIR", Path(__file__).resolve().parents[3] / "shared" /
                                   "conformance" / "quickfix")) / "spec" / "FIX44.xml"
        dd = parse_dictionary(spec.read_text(encoding="utf-8"), str(spec))
    config = SessionConfig("FIX.4.4", "GATEWAY", "TRADER", Role.ACCEPTOR, use_data_dictionary=dd is not None)
    session = Session(config, transport_dictionary=dd, app_dictionary=dd)
    session.connection_made(NOW)
    if logged_on:
        session.receive(message(b"A", 1, [(98, b"0"), (108, b"30")]))
        session.process(NOW)
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


def test_the_framer_refuses_a_body_length_of_thousands_of_digits() -> None:
    framer = Framer()
    framer.feed(b"8=FIX.4.4\x019=" + HUGE + b"\x0135=A\x01")
    frame = framer.next_frame()
    assert frame is not None and frame.data == b"" and "digits" in (frame.error or "")


@pytest.mark.parametrize("data", [
    b"8=FIX.4.4\x019=" + HUGE + b"\x0135=A\x0110=000\x01",
    b"8=FIX.4.4\x019=20\x01" + HUGE + b"=x\x0110=000\x01",
    message(b"A", 1, [(98, b"0"), (108, b"1" + b"0" * 400)]),
], ids=["BodyLength", "tag", "HeartBtInt"])
def test_before_logon_a_huge_number_ends_the_connection(data: bytes) -> None:
    outputs = feed(acceptor(logged_on=False), data)
    assert any(isinstance(o, Disconnect) for o in outputs)
    assert not any(m.msg_type == "A" for m in sent(outputs)), "no Logon answer to a message with a hostile number"


def test_a_msgseqnum_of_thousands_of_digits_is_a_missing_msgseqnum_logout() -> None:
    outputs = feed(acceptor(logged_on=True), message(b"D", HUGE, [(11, b"1")]))
    assert [m.msg_type for m in sent(outputs)] == ["5"]
    assert any(isinstance(o, Disconnect) for o in outputs)


def test_a_sequence_reset_beyond_64_bits_is_rejected_and_moves_nothing() -> None:
    session = acceptor(logged_on=True)
    before = session.next_target
    outputs = feed(session, message(b"4", 2, [(T.NEW_SEQ_NO, str(2**63).encode())]))
    rejects = [m for m in sent(outputs) if m.msg_type == "3"]
    assert len(rejects) == 1 and rejects[0].get_int(T.REF_TAG_ID) == T.NEW_SEQ_NO
    assert session.next_target <= before + 1 and session.state is SessionState.CONNECTED


@pytest.mark.parametrize("begin, end, bad_tag", [(b"0", b"0", T.BEGIN_SEQ_NO), (b"1", b"-5", T.END_SEQ_NO)])
def test_a_resend_request_out_of_range_is_rejected_not_answered_with_msgseqnum_0(
        begin: bytes, end: bytes, bad_tag: int) -> None:
    outputs = feed(acceptor(logged_on=True), message(b"2", 2, [(T.BEGIN_SEQ_NO, begin), (T.END_SEQ_NO, end)]))
    messages = sent(outputs)
    assert all(m.seq_num != 0 for m in messages)
    assert [(m.msg_type, m.get_int(T.REF_TAG_ID), m.get_int(T.SESSION_REJECT_REASON)) for m in messages] == \
        [("3", bad_tag, 5)]


def test_a_num_in_group_of_thousands_of_digits_is_an_incorrect_count() -> None:
    session = acceptor(logged_on=True, dictionary=True)
    body = [(11, b"1"), (21, b"1"), (38, b"100"), (40, b"1"), (54, b"1"), (55, b"X"), (60, STAMP), (453, HUGE)]
    outputs = feed(session, message(b"D", 2, body))
    rejects = [m for m in sent(outputs) if m.msg_type == "3"]
    assert len(rejects) == 1 and rejects[0].get_int(T.REF_TAG_ID) == 453
    assert session.state is SessionState.CONNECTED
