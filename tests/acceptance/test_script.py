"""Unit tests of the script parser, placeholders, fix-up and comparator, on examples from FORMAT.md."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import conformance_dir, missing_conformance_data
from .script import (
    Script,
    ScriptSyntaxError,
    Step,
    StepKind,
    checksum,
    compare,
    fixify,
    format_time,
    parse_field_patterns,
    parse_line,
    parse_script,
    render,
    show,
    substitute_times,
)

MIDNIGHT = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
FIELDS_FMT = (
    "10=\\d{3}\n"
    "42=\\d{8}-\\d{2}:\\d{2}:\\d{2}\n"
    "52=\\d{8}-\\d{2}:\\d{2}:\\d{2}|\\d{8}-\\d{2}:\\d{2}:\\d{2}[.]\\d{3}\n"
    "60=\\d{8}-\\d{2}:\\d{2}:\\d{2}\n"
    "122=\\d{8}-\\d{2}:\\d{2}:\\d{2}\n"
)
PATTERNS = parse_field_patterns(FIELDS_FMT)
FOLDERS = ("server/fix42", "server/fix44", "server/validate")


def fix(text: str) -> bytes:
    """Write test messages with '|' for SOH, as FORMAT.md does."""
    return text.replace("|", "\x01").encode("latin-1")


def fixed_clock() -> datetime:
    return MIDNIGHT


def ticking_clock() -> Iterator[datetime]:
    moment = MIDNIGHT
    while True:
        yield moment
        moment += timedelta(seconds=1)


# -- parsing ---------------------------------------------------------------------------------------------------------

LOGON_1A = "8=FIX.4.2|35=A|34=1|49=TW42|52=<TIME>|56=ISLD|98=0|108=30|"
LOGON_1A_REPLY = "8=FIX.4.2|9=63|35=A|34=1|49=ISLD|52=00000000-00:00:00.000|56=TW42|98=0|108=30|10=0|"


def test_parses_the_1a_script_into_steps_with_line_numbers() -> None:
    data = fix(
        "# When we receive a valid logon, we must respond with one\n"
        "\n"
        "iCONNECT\n"
        f"I{LOGON_1A}\n"
        f"E{LOGON_1A_REPLY}\n"
        "#E8=FIX.4.2|35=0|\n"
        "eDISCONNECT"
    )
    script = parse_script(data, "1a")
    assert [(step.kind, step.connection_id, step.line_number) for step in script.steps] == [
        (StepKind.CONNECT, 1, 3),
        (StepKind.SEND, 1, 4),
        (StepKind.EXPECT, 1, 5),
        (StepKind.EXPECT_DISCONNECT, 1, 7),
    ]
    assert script.steps[1].payload == fix(LOGON_1A)
    assert script.opens_connection


def test_placeholders_stay_in_the_parsed_payload_until_play_time() -> None:
    step = parse_line(fix(f"I{LOGON_1A}"), 4)
    assert step is not None and b"<TIME>" in step.payload


@pytest.mark.parametrize(
    ("line", "kind", "connection_id", "payload"),
    [
        ("i1,CONNECT", StepKind.CONNECT, 1, b""),
        ("i2,CONNECT", StepKind.CONNECT, 2, b""),
        ("e2,DISCONNECT", StepKind.EXPECT_DISCONNECT, 2, b""),
        ("i1,DISCONNECT", StepKind.DISCONNECT, 1, b""),
        ("iDISCONNECT", StepKind.DISCONNECT, 1, b""),
        ("eCONNECT", StepKind.EXPECT_CONNECT, 1, b""),
        ("I2,8=FIX.4.2|35=A|", StepKind.SEND, 2, fix("8=FIX.4.2|35=A|")),
        ("E1,8=FIX.4.2|35=A|", StepKind.EXPECT, 1, fix("8=FIX.4.2|35=A|")),
        # Two digits are not a connection id: the line's payload starts right after the command.
        ("I12,8=FIX", StepKind.SEND, 1, b"12,8=FIX"),
        # 2t: a payload that does not start with 8= is still a message to send.
        ("I35=0|8=FIX.4.2|", StepKind.SEND, 1, fix("35=0|8=FIX.4.2|")),
    ],
)
def test_connection_prefix_rule(line: str, kind: StepKind, connection_id: int, payload: bytes) -> None:
    assert parse_line(fix(line), 1) == Step(kind, connection_id, 1, fix(line), payload)


def test_crlf_line_endings_are_stripped() -> None:
    script = parse_script(b"iCONNECT\r\nI8=FIX.4.4\x0135=0\x01\r\neDISCONNECT\r\n")
    assert script.steps[1].payload == b"8=FIX.4.4\x0135=0\x01"
    assert script.steps[2].kind is StepKind.EXPECT_DISCONNECT


@pytest.mark.parametrize("line", ["R8=FIX.4.2|35=A|", "iFOO", "eSTOP", "X", " iCONNECT", "iconnect"])
def test_unknown_lines_are_syntax_errors_with_their_line_number(line: str) -> None:
    with pytest.raises(ScriptSyntaxError) as raised:
        parse_script(fix(f"iCONNECT\n\n{line}\n"))
    assert raised.value.line_number == 3
    assert raised.value.line == fix(line)


def test_a_file_without_connect_is_flagged() -> None:
    assert not parse_script(fix(f"I{LOGON_1A}\n")).opens_connection


# -- placeholders ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (b"52=<TIME>|", b"52=20240101-00:00:00|"),
        (b"122=<TIME+10>|", b"122=20240101-00:00:10|"),
        (b"52=<TIME-121>|", b"52=20231231-23:57:59|"),
        (b"52=<TIME-1>|", b"52=20231231-23:59:59|"),
        (b"58=<TIMEX>|", b"58=<TIMEX>|"),
    ],
)
def test_time_placeholders_are_utc_seconds(template: bytes, expected: bytes) -> None:
    assert substitute_times(template, fixed_clock) == expected


def test_each_time_placeholder_reads_the_clock_afresh() -> None:
    ticks = ticking_clock()
    assert substitute_times(b"52=<TIME>|60=<TIME>|", lambda: next(ticks)) == (
        b"52=20240101-00:00:00|60=20240101-00:00:01|"
    )


def test_times_are_converted_to_utc() -> None:
    two_hours_east = datetime(2024, 1, 1, 4, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(two_hours_east) == "20240101-02:00:00"


# -- BodyLength and CheckSum fix-up ----------------------------------------------------------------------------------


def test_fixify_of_the_1a_logon_inserts_body_length_and_checksum() -> None:
    rendered = render(fix(LOGON_1A), fixed_clock)
    assert rendered == fix(
        "8=FIX.4.2|9=59|35=A|34=1|49=TW42|52=20240101-00:00:00|56=ISLD|98=0|108=30|10=091|"
    )


def test_explicit_body_length_is_kept_and_checksum_still_computed() -> None:
    # 2m_BodyLengthValueNotCorrect sends a length that is too short on purpose.
    line = "8=FIX.4.2|9=30|35=D|34=2|49=TW42|52=<TIME>|56=ISLD|11=ID|21=3|40=1|54=1|55=INTC|60=<TIME>|"
    assert render(fix(line), fixed_clock) == fix(
        "8=FIX.4.2|9=30|35=D|34=2|49=TW42|52=20240101-00:00:00|56=ISLD|11=ID|21=3|40=1|54=1|55=INTC|"
        "60=20240101-00:00:00|10=172|"
    )


def test_explicit_checksum_is_kept_and_length_counts_the_body_up_to_it() -> None:
    # 3b_InvalidChecksum: the wrong checksum 256 must reach the acceptor unchanged, with a correct length.
    line = "8=FIX.4.2|35=0|34=2|49=TW42|52=<TIME>|56=ISLD|10=256|"
    assert render(fix(line), fixed_clock) == fix(
        "8=FIX.4.2|9=47|35=0|34=2|49=TW42|52=20240101-00:00:00|56=ISLD|10=256|"
    )


def test_expected_lines_keep_their_literal_length_and_checksum() -> None:
    assert fixify(fix(LOGON_1A_REPLY)) == fix(LOGON_1A_REPLY)


def test_expected_line_without_length_implies_millisecond_sending_time() -> None:
    # 3b's expected echo has no 9=; the 21-character placeholder gives the same 101 as 2m states explicitly.
    line = (
        "8=FIX.4.2|35=D|34=3|49=ISLD|52=00000000-00:00:00.000|56=TW42|11=ID|21=3|40=1|54=1|55=INTC|"
        "60=00000000-00:00:00|"
    )
    assert fixify(fix(line)).startswith(fix("8=FIX.4.2|9=101|35=D|"))


def test_payload_not_starting_with_begin_string_is_sent_raw() -> None:
    line = fix("35=0|8=FIX.4.2|9=29|34=2|49=TW42|52=20240101-00:00:00|56=ISLD|10=121|")
    assert fixify(line) == line


body_fields = st.lists(
    st.tuples(
        st.integers(min_value=11, max_value=9999),
        st.text(alphabet="ABCXYZ0123456789.-:", min_size=1, max_size=12),
    ),
    min_size=1,
    max_size=20,
)


@given(body_fields)
def test_computed_length_and_checksum_describe_the_output(fields: list[tuple[int, str]]) -> None:
    payload = fix("8=FIX.4.4|" + "".join(f"{tag}={value}|" for tag, value in fields))
    output = fixify(payload)
    match = re.fullmatch(rb"(8=FIX\.4\.4\x019=(\d+)\x01)(.*\x01)(10=(\d{3})\x01)", output, re.DOTALL)
    assert match is not None
    assert int(match.group(2)) == len(match.group(3))
    assert int(match.group(5)) == checksum(match.group(1) + match.group(3))


# -- comparator ------------------------------------------------------------------------------------------------------


def test_placeholder_sending_time_accepts_milliseconds_and_seconds() -> None:
    expected = fix(LOGON_1A_REPLY)
    for sending_time in ("20240101-00:00:00.123", "20240101-00:00:00"):
        received = fix(LOGON_1A_REPLY.replace("00000000-00:00:00.000", sending_time).replace("10=0|", "10=123|"))
        assert compare(expected, received, PATTERNS) is None


def test_checksum_is_matched_by_pattern_not_value() -> None:
    expected = fix("8=FIX.4.2|9=5|35=0|10=0|")
    assert compare(expected, fix("8=FIX.4.2|9=5|35=0|10=207|"), PATTERNS) is None
    assert compare(expected, fix("8=FIX.4.2|9=5|35=0|10=20|"), PATTERNS) is not None


def test_patterns_search_without_anchors() -> None:
    expected = fix("8=FIX.4.2|52=x|")
    assert compare(expected, fix("8=FIX.4.2|52=junk20240101-00:00:00junk|"), PATTERNS) is None
    assert compare(expected, fix("8=FIX.4.2|52=2024-01-01|"), PATTERNS) is not None


def test_extra_field_is_rejected() -> None:
    received = fix(LOGON_1A_REPLY.replace("108=30|", "108=30|141=Y|"))
    reason = compare(fix(LOGON_1A_REPLY), received, PATTERNS)
    assert reason is not None and "Number of fields" in reason


def test_different_tag_order_is_rejected() -> None:
    received = fix(LOGON_1A_REPLY.replace("34=1|49=ISLD|", "49=ISLD|34=1|"))
    reason = compare(fix(LOGON_1A_REPLY), received, PATTERNS)
    assert reason == "Expected field (34) but found field (49)"


def test_body_length_is_compared_exactly() -> None:
    received = fix(LOGON_1A_REPLY.replace("9=63|", "9=67|"))
    assert compare(fix(LOGON_1A_REPLY), received, PATTERNS) == "Value in field (9) should be (63) but was (67)"


def test_values_split_on_the_first_equals_sign() -> None:
    assert compare(fix("8=FIX.4.2|58=a=b|"), fix("8=FIX.4.2|58=a=b|"), PATTERNS) is None
    assert compare(fix("8=FIX.4.2|58=a=b|"), fix("8=FIX.4.2|58=a=c|"), PATTERNS) is not None


def test_empty_values_compare_equal() -> None:
    assert compare(fix("8=FIX.4.4|112=|"), fix("8=FIX.4.4|112=|"), PATTERNS) is None


def test_fields_fmt_splits_on_the_first_equals_only() -> None:
    patterns = parse_field_patterns("52=a=b|c\n\n")
    assert list(patterns) == [b"52"] and patterns[b"52"].pattern == b"a=b|c"


def test_show_uses_a_bar_for_soh() -> None:
    assert show(fix("8=FIX.4.2|35=0|")) == "8=FIX.4.2|35=0|"


# -- the real scripts ------------------------------------------------------------------------------------------------


def conformance_definitions() -> Path:
    """The real scripts' folder; the test fails, never skips, when it is missing."""
    directory = conformance_dir()
    problem = missing_conformance_data(directory)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    return directory / "definitions"


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_script_parses(folder: str) -> None:
    paths = sorted((conformance_definitions() / folder).glob("*.def"))
    assert paths, f"no .def files in {conformance_definitions() / folder}"
    problems: list[str] = []
    for path in paths:
        try:
            script: Script = parse_script(path.read_bytes(), path.name)
        except ScriptSyntaxError as error:
            problems.append(f"{path.name}: {error}")
            continue
        if not script.opens_connection:
            problems.append(f"{path.name}: no iCONNECT")
    assert not problems, "\n".join(problems)


def test_real_fields_fmt_parses() -> None:
    text = (conformance_definitions() / "fields.fmt").read_text(encoding="ascii")
    assert set(parse_field_patterns(text)) == {b"10", b"42", b"52", b"60", b"122"}
