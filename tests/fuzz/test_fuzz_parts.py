"""The fuzzer's own parts: reproducible inputs, a strict reader of the acceptor's output, the answer labels.

A fuzzer whose checks cannot fail proves nothing, so each check is shown failing on bad input.
"""

from __future__ import annotations

import pytest

from tests.fuzz.inputs import Context, generate, phase_of
from tests.fuzz.runner import _label, _seq_values
from tests.fuzz.targets import profile_for
from tests.fuzz.wire import MalformedOutput, Reader, build, refresh
from tests.interop import spec_file

needs_dictionaries = pytest.mark.skipif(spec_file("FIX44.xml") is None or spec_file("FIX50SP2.xml") is None,
                                        reason="the QuickFIX data dictionaries (FIXMESH_CONFORMANCE_DIR)")
NOW_NS = 1_800_000_000 * 10**9
GOOD = build(b"FIX.4.4", [(b"35", b"0"), (b"34", b"7"), (b"49", b"FIXMESH"), (b"52", b"20270115-08:00:00.000"),
                          (b"56", b"FUZZER")])


@needs_dictionaries
@pytest.mark.parametrize("version", ["FIX.4.4", "FIXT.1.1"])
def test_an_input_is_the_same_for_the_same_seed_index_and_context(version: str) -> None:
    profile = profile_for(version)
    context = Context(1234, NOW_NS, 99)
    families = set()
    for index in range(0, 3000, 7):
        first = generate(11, index, profile, context)
        again = generate(11, index, profile, context)
        assert (first.data, first.expect, first.phase) == (again.data, again.expect, again.phase), first.describe()
        assert first.phase == phase_of(11, index)
        families.add(first.family)
    assert {"framing", "body_length", "checksum", "header", "groups", "huge_value"} <= families
    assert generate(11, 5, profile, context).data != generate(12, 5, profile, context).data


def test_the_reader_accepts_well_formed_messages_split_anywhere() -> None:
    reader = Reader(b"FIX.4.4")
    data = GOOD + GOOD
    got = [m for i in range(len(data)) for m in reader.feed(data[i:i + 1])]
    assert [(m.msg_type, m.seq) for m in got] == [("0", 7), ("0", 7)]


@pytest.mark.parametrize("bad", [
    GOOD[:-4] + b"000\x01",                            # CheckSum wrong
    GOOD.replace(b"9=", b"9=0", 1),                    # BodyLength with a leading zero
    GOOD.replace(b"FIX.4.4", b"FIX.4.2", 1),           # another BeginString
    b"garbage" + GOOD,                                 # bytes before the message
    refresh(GOOD.replace(b"49=FIXMESH", b"49FIXMESH")),  # a field without '='
], ids=["checksum", "body length", "begin string", "garbage", "no equals"])
def test_the_reader_refuses_anything_else(bad: bytes) -> None:
    with pytest.raises(MalformedOutput):
        Reader(b"FIX.4.4").feed(bad)


def test_refresh_makes_body_length_and_checksum_right_again() -> None:
    edited = GOOD.replace(b"34=7", b"34=77")
    assert refresh(edited) != edited
    assert [m.seq for m in Reader(b"FIX.4.4").feed(refresh(edited))] == [77]


def test_labels_name_every_kind_once_in_a_fixed_order() -> None:
    assert _label([], closed=False) == "silence"
    assert _label([], closed=True) == "disconnect"
    assert _label(["logout", "reject:9"], closed=True) == "reject:9+logout"
    assert _label(["heartbeat_timer", "late_barrier", "barrier_resend"], closed=False) == "silence"
    assert _label(["resend_request", "logon"], closed=False) == "logon+resend_request"


def test_the_runner_follows_every_number_the_acceptor_may_read() -> None:
    data = b"8=FIX.4.4\x019=5\x0135=4\x010034=12\x0136=900\x0134=" + b"9" * 19 + b"\x0134=x\x0110=000\x01"
    assert _seq_values(data) == [(34, 12), (36, 900)]
