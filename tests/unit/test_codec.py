"""Framing, parsing and encoding, checked against simplefix as an independent encoder."""

from __future__ import annotations

import pytest
import simplefix
from hypothesis import given
from hypothesis import strategies as st

from actors.fix import codec
from actors.fix import tags as T
from actors.fix.codec import Framer, GarbledMessage, encode, parse, serialize

LOGON = encode(b"FIX.4.2", b"A", [(34, b"1"), (49, b"TW"), (52, b"20260101-00:00:00"), (56, b"ISLD")],
               [(98, b"0"), (108, b"30")])


def frames(data: bytes, chunk: int = 7) -> list[tuple[bytes, str | None]]:
    framer = Framer()
    out = []
    for i in range(0, len(data), chunk):
        framer.feed(data[i : i + chunk])
        while (frame := framer.next_frame()) is not None:
            if frame.data or frame.error is None:
                out.append((frame.data, frame.error))
    return out


def test_messages_split_across_reads_are_reassembled() -> None:
    assert frames(LOGON * 3) == [(LOGON, None)] * 3


def test_garbage_between_messages_is_skipped() -> None:
    assert frames(b"junk" + LOGON + b"\x01\x01xx" + LOGON) == [(LOGON, None), (LOGON, None)]


def test_wrong_checksum_is_reported() -> None:
    bad = LOGON[:-4] + (b"001\x01" if LOGON.endswith(b"000\x01") else b"000\x01")
    [(data, error)] = frames(bad)
    assert data == bad and error is not None and "CheckSum" in error


def test_too_short_body_length_is_reported_and_the_next_message_survives() -> None:
    short = LOGON.replace(LOGON.split(b"\x01")[1], b"9=30", 1)
    result = frames(short + LOGON)
    assert result[0][1] is not None and "BodyLength" in result[0][1]
    assert result[-1] == (LOGON, None)


def test_too_long_body_length_swallows_the_next_message() -> None:
    long = LOGON.replace(LOGON.split(b"\x01")[1], b"9=111", 1)
    result = frames(long + LOGON)
    assert len(result) == 1 and result[0][1] is not None


def test_first_three_fields_must_be_8_9_35() -> None:
    swapped = b"8=FIX.4.2\x019=5\x0134=2\x0135=0\x0110=000\x01"
    try:
        parse(swapped)
    except GarbledMessage:
        return
    raise AssertionError("34 before 35 must be garbled")


def test_data_fields_may_contain_soh() -> None:
    raw = b"a\x01b=c"
    msg = encode(b"FIX.4.4", b"B", [(34, b"1"), (49, b"A"), (52, b"20260101-00:00:00"), (56, b"B")],
                 [(95, b"%d" % len(raw)), (96, raw), (148, b"x")])
    assert parse(msg).get(96) == raw and parse(msg).get(148) == b"x"


def test_the_tag_cache_keeps_every_rule_of_the_parse() -> None:
    """Tags read once are looked up afterwards; a field without '=', a non-numeric tag and a
    data field are still what they were, however often the tags were seen before."""
    for _ in range(3):
        assert parse(LOGON).get(108) == b"30"
    for bad in (LOGON.replace(b"\x01108=", b"\x01108"), LOGON.replace(b"\x01108=", b"\x01x08=")):
        try:
            parse(bad)
        except GarbledMessage:
            continue
        raise AssertionError(f"{bad!r} must be garbled")
    test_data_fields_may_contain_soh()
    assert not set(codec._TAG_CACHE.values()) & set(T.DATA_LENGTH_TAGS)


def test_the_tag_cache_stops_growing_at_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "_TAG_CACHE", {})
    header = [(34, b"1"), (49, b"A"), (52, b"20260101-00:00:00"), (56, b"B")]
    for tag in range(5000, 5000 + codec._TAG_CACHE_LIMIT + 50):
        assert parse(encode(b"FIX.4.4", b"B", header, [(tag, b"v")])).get(tag) == b"v"
    assert len(codec._TAG_CACHE) == codec._TAG_CACHE_LIMIT


values = st.binary(min_size=1, max_size=20).filter(lambda v: b"\x01" not in v)
_sf = simplefix.FixParser()
SIMPLEFIX_DATA_TAGS = {int(t) for t in _sf.raw_len_tags + _sf.raw_data_tags}
DATA_TAGS = set(T.DATA_LENGTH_TAGS) | set(T.DATA_LENGTH_TAGS.values()) | SIMPLEFIX_DATA_TAGS
# Header tags stay out of the body: simplefix moves a second MsgType (35) into the header.
body = st.lists(st.tuples(st.integers(11, 4999).filter(lambda t: t not in DATA_TAGS and t not in T.HEADER_TAGS),
                          values), max_size=15)


@given(body=body, seq=st.integers(1, 10**9))
def test_parses_what_simplefix_encodes(body: list[tuple[int, bytes]], seq: int) -> None:
    m = simplefix.FixMessage()
    m.append_pair(8, b"FIX.4.4", header=True)
    m.append_pair(35, b"D", header=True)
    m.append_pair(34, seq, header=True)
    for tag, value in body:
        m.append_pair(tag, value)
    wire = m.encode()
    [(data, error)] = frames(wire, chunk=13)
    assert error is None
    parsed = parse(data)
    assert parsed.fields[3:-1] == [(34, b"%d" % seq), *body]
    assert serialize(parsed) == wire


@given(body=body)
def test_simplefix_parses_what_fixmesh_encodes(body: list[tuple[int, bytes]]) -> None:
    wire = encode(b"FIX.4.4", b"D", [(34, b"1")], body)
    parser = simplefix.FixParser()
    parser.append_buffer(wire)
    m = parser.get_message()
    assert m is not None
    assert [(int(t), v) for t, v in m.pairs][3:-1] == [(34, b"1"), *body]
