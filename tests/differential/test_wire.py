"""The differential test's own parts without any acceptor: rendering, framing, comparing, judging, the data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.differential import VERSION_BY_KEY, VERSIONS, Version, client_comp_id
from tests.differential.allowlist import ALLOWED, KNOWN_DEFECTS, Allowed, KnownDefect, judge
from tests.differential.engines import Outcome, all_pairs
from tests.differential.scenarios import (
    FRAGMENTS,
    SCENARIO_BY_NAME,
    SCENARIOS,
    Burst,
    Connect,
    Send,
    Sync,
    Until,
    expand,
)
from tests.differential.wire import (
    Context,
    Event,
    Kind,
    compare,
    fields_of,
    normalise,
    render,
    take_message,
)

BASE = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
V42 = VERSION_BY_KEY["4.2"]
V40 = VERSION_BY_KEY["4.0"]
SP2 = VERSION_BY_KEY["5.0SP2"]


def context(version: Version = V42) -> Context:
    return Context(version, "TW", BASE)


def wire(text: str) -> bytes:
    return text.replace("|", "\x01").encode()


def checksum(data: bytes) -> str:
    return f"{sum(data[:data.rindex(b'10=')]) % 256:03d}"


# ------------------------------------------------------------------ render


def test_render_standard_header_placeholders_length_and_checksum() -> None:
    data = render(Send("0", ((112, "<SEQ>-<NOW-5>"),)), context(), 7)
    assert data.startswith(b"8=FIX.4.2\x019=")
    fields = fields_of(data)
    assert [t for t, _ in fields] == ["8", "9", "35", "34", "49", "52", "56", "112", "10"]
    values = dict(fields)
    assert values["34"] == "7" and values["49"] == "TW" and values["56"] == "ISLD"
    assert values["52"] == "20260102-03:04:05.678"
    assert values["112"] == "7-20260102-03:04:00.678"
    assert normalise(Event(Kind.MESSAGE, 0, data)).fields[1] == ("9", "ok")
    assert values["10"] == checksum(data)


def test_render_seconds_before_fix42_and_infinity_marker() -> None:
    data = render(Send("2", ((7, "1"), (16, "<INF>"))), context(V40), 1)
    values = dict(fields_of(data))
    assert values["52"] == "20260102-03:04:05"
    assert values["16"] == "999999"
    assert dict(fields_of(render(Send("2", ((16, "<INF>"),)), context(), 1)))["16"] == "0"


def test_render_replace_drop_move_and_wrong_trailer_values() -> None:
    send = Send("0", ((112, "A"), (58, "x")), replace=((56, None), (35, None), (8, "FIX.3.9")),
                drop=frozenset({58}), after_body=((35, "0"),), body_length="10", checksum="000")
    fields = fields_of(render(send, context(), 2))
    assert [t for t, _ in fields] == ["8", "9", "34", "49", "52", "112", "35", "10"]
    assert fields[0] == ("8", "FIX.3.9") and fields[1] == ("9", "10") and fields[-1] == ("10", "000")


def test_fixt_fragments_carry_the_appl_ver_id() -> None:
    logon = expand(("logon",), SP2)
    assert (1137, "<APPLVERID>") in logon
    assert dict(fields_of(render(Send("A", ("logon",)), context(SP2), 1)))["1137"] == "9"
    assert (1137, "<APPLVERID>") not in expand(("logon",), V42)


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.key)
def test_every_fragment_renders_for_every_version(version: Version) -> None:
    for name in FRAGMENTS:
        assert expand((name,), version)


# ----------------------------------------------------------------- framing


def test_take_message_frames_by_body_length_and_keeps_the_rest() -> None:
    one = render(Send("0"), context(), 1)
    two = render(Send("1", ((112, "X"),)), context(), 2)
    buffer = bytearray(one + two[:10])
    assert take_message(buffer) == one
    assert take_message(buffer) is None
    buffer += two[10:]
    assert take_message(buffer) == two and not buffer


def test_take_message_falls_back_to_the_checksum_field_when_body_length_lies() -> None:
    bad = render(Send("0", body_length="3"), context(), 1)
    buffer = bytearray(bad + render(Send("0"), context(), 2))
    assert take_message(buffer) == bad
    assert normalise(Event(Kind.MESSAGE, 0, bad)).fields[1][1].startswith("wrong: 3")


# ----------------------------------------------------------------- compare


def message(text: str) -> Event:
    """``9=LEN`` and ``10=XXX`` become the right BodyLength and CheckSum."""
    data = wire(text)
    if b"\x019=LEN\x01" in data:
        body = data[data.index(b"\x019=LEN\x01") + 7:data.rindex(b"10=")]
        data = data.replace(b"9=LEN", f"9={len(body)}".encode())
    return Event(Kind.MESSAGE, 0, data.replace(b"10=XXX", f"10={checksum(data)}".encode()))


def test_times_checksum_and_length_are_not_compared_as_values() -> None:
    a = message("8=FIX.4.2|9=LEN|35=0|34=2|52=20260101-00:00:00.001|122=20260101-00:00:00.000|10=XXX|")
    b = message("8=FIX.4.2|9=LEN|35=0|34=2|52=20270202-11:11:11.999|122=20250101-00:00:00.000|10=XXX|")
    assert [normalise(e).fields[1] for e in (a, b)] == [("9", "ok"), ("9", "ok")]
    assert [normalise(e).fields[-1] for e in (a, b)] == [("10", "ok"), ("10", "ok")]
    assert not compare([a], [b]).differences
    wrong = message("8=FIX.4.2|9=5|35=0|34=2|52=20260101-00:00:00.001|122=20260101-00:00:00.000|10=000|")
    assert compare([a], [wrong]).keys == {"9", "10"}


def test_timestamp_precision_is_compared() -> None:
    a = message("8=FIX.4.2|35=0|52=20260101-00:00:00.001|10=XXX|")
    b = message("8=FIX.4.2|35=0|52=20260101-00:00:00|10=XXX|")
    assert compare([a], [b]).keys == {"52"}


def test_field_value_presence_order_and_event_differences() -> None:
    qf = [message("8=FIX.4.2|35=3|45=2|58=Invalid tag number|371=5|10=XXX|"),
          message("8=FIX.4.2|35=0|112=A|58=x|10=XXX|"), Event(Kind.CLOSED, 3)]
    fm = [message("8=FIX.4.2|35=3|45=2|58=Invalid tag|10=XXX|"),
          message("8=FIX.4.2|35=0|58=x|112=A|10=XXX|"), Event(Kind.STILL_OPEN, 3), Event(Kind.CLOSED, 4)]
    result = compare(qf, fm)
    described = [d.describe() for d in result.differences]
    assert result.keys == {"58", "371", "order", "event"}
    assert "#0 35=3 tag 371: QuickFIX '5' / fixmesh (absent)" in described
    assert any(d.key == "event" and d.index == 3 and d.quickfix == "(nothing)" for d in result.differences)


def test_same_transcripts_have_no_difference() -> None:
    events = [message("8=FIX.4.4|35=A|34=1|98=0|108=30|10=XXX|"), Event(Kind.CLOSED, 2)]
    assert not compare(events, list(events)).differences


# ------------------------------------------------------------------- judge


def outcome(name: str, version_key: str, qf: list[Event], fm: list[Event]) -> Outcome:
    return Outcome(SCENARIO_BY_NAME[name], VERSION_BY_KEY[version_key], qf, fm, compare(qf, fm))


def test_judge_accepts_only_the_allowlisted_keys_and_flags_stale_entries() -> None:
    entry = next(a for a in ALLOWED if a.scenario == "reject_group_order")
    assert isinstance(entry, Allowed) and entry.keys == {"58", "371", "373"}
    qf = [message("8=FIX.4.4|35=3|58=Required tag missing|371=58|373=1|10=XXX|")]
    fm = [message("8=FIX.4.4|35=3|58=Repeating group fields out of order|371=354|373=15|10=XXX|")]
    assert judge(outcome("reject_group_order", "4.4", qf, fm)).ok
    fm_more = [message("8=FIX.4.4|35=3|45=9|58=Repeating group fields out of order|371=354|373=15|10=XXX|")]
    assert judge(outcome("reject_group_order", "4.4", qf, fm_more)).summary == "DIFFERENT"
    assert judge(outcome("reject_group_order", "4.4", qf, qf)).summary == "STALE"


def test_judge_known_defects_and_unlisted_differences() -> None:
    hb = message("8=FIX.4.2|35=0|10=XXX|")
    echo = message("8=FIX.4.2|35=D|10=XXX|")
    defects = (KnownDefect("burst_order_test_request", None, frozenset({"event"}), "Heartbeat before the echo",
                           "a defect fixed since, as the judge saw it"),)
    verdict = judge(outcome("burst_order_test_request", "4.2", [echo, hb], [hb, echo]), defects=defects)
    assert not verdict.ok and verdict.defect is not None
    assert judge(outcome("burst_order_test_request", "4.2", [echo, hb], [echo, hb]), defects=defects).summary \
        == "FIXED"
    assert judge(outcome("burst_order_test_request", "4.2", [echo, hb], [hb, echo])).summary == "DIFFERENT"
    assert judge(outcome("logon_plain", "4.2", [hb], [echo])).summary == "DIFFERENT"
    assert judge(outcome("logon_plain", "4.2", [hb], [hb])).summary == "same"


# -------------------------------------------------------------------- data


def test_entries_name_real_scenarios_and_versions() -> None:
    entries: list[Allowed | KnownDefect] = [*ALLOWED, *KNOWN_DEFECTS]
    for entry in entries:
        assert entry.scenario in SCENARIO_BY_NAME, entry
        assert entry.versions is None or entry.versions <= set(VERSION_BY_KEY), entry
    def covered(entries: tuple[Allowed, ...] | tuple[KnownDefect, ...]) -> set[tuple[str, str]]:
        return {(e.scenario, v.key) for e in entries for v in VERSIONS if e.versions is None or v.key in e.versions}

    assert not covered(ALLOWED) & covered(KNOWN_DEFECTS), "a pair is either an intended difference or a defect"


def test_scenarios_start_with_a_connection_and_have_short_comp_ids() -> None:
    for scenario in SCENARIOS:
        assert isinstance(scenario.steps[0], Connect), scenario.name
        for version in VERSIONS:
            assert len(client_comp_id(version, scenario.name)) <= 40


def test_no_sync_races_an_echo() -> None:
    """A Sync right after an echoed message, with no Until between, would compare fixmesh's batching instead
    of the scenario's point (the burst_* scenarios compare that on purpose)."""
    for scenario in SCENARIOS:
        if scenario.name.startswith("burst_"):
            continue
        echo_pending = False
        for step in scenario.steps:
            if isinstance(step, Send) and step.msg_type in ("D", "C", "d"):
                echo_pending = True
            elif isinstance(step, Burst):
                echo_pending = any(s.msg_type in ("D", "C", "d") for s in step.sends)
            elif isinstance(step, Until):
                echo_pending = False
            elif isinstance(step, Sync):
                rejected = scenario.name.startswith("reject_") or scenario.name in (
                    "app_bad_appl_ver_id", "routing_business_reject", "app_unsupported")
                assert not echo_pending or rejected, f"{scenario.name}: Sync while an echo may be pending"


def test_every_scenario_plays_in_some_version_and_fast_ones_in_all() -> None:
    pairs = all_pairs()
    for scenario in SCENARIOS:
        versions = {v.key for v, s in pairs if s is scenario}
        assert versions, scenario.name
        if scenario.fast:
            assert scenario.versions is None or scenario.versions >= {"4.1", "4.2", "4.4", "5.0SP2"}, scenario.name
