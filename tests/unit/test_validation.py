"""Session-level validation against the QuickFIX dictionaries.

The expected (SessionRejectReason 373, RefTagID 371) pairs are the ones the
QuickFIX acceptance scripts expect from an acceptor (server/fix42, fix44 and
validate/*.def); the case names below are those scripts'. The dictionaries
and scripts come from ``$FIXMESH_CONFORMANCE_DIR`` or
``<repo>/../shared/conformance/quickfix``; a missing copy fails the tests.
"""

from __future__ import annotations

import dataclasses
import os
import re
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.fix import validation as V
from actors.fix.codec import Framer, GarbledMessage, encode, parse
from actors.fix.dictionary import DataDictionary, Layout, parse_dictionary
from actors.fix.message import Message
from actors.fix.validation import (
    REJECT_TEXT,
    Rejection,
    RejectReason,
    ValidationOptions,
    is_valid_value,
    validate,
)

R = RejectReason
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR_ENV = "FIXMESH_CONFORMANCE_DIR"
NOW = "20240102-03:04:05"
DEFAULTS = ValidationOptions()


def conformance_dir() -> Path:
    """The QuickFIX conformance data; fails the test when it is not there."""
    configured = os.environ.get(CONFORMANCE_DIR_ENV, "").strip()
    base = Path(configured) if configured else REPO_ROOT.parent / "shared" / "conformance" / "quickfix"
    if not (base / "spec").is_dir() or not (base / "definitions").is_dir():
        pytest.fail(f"QuickFIX conformance data not found in {base}; set {CONFORMANCE_DIR_ENV} to the folder "
                    "holding spec/ and definitions/")
    return base


@cache
def dictionary(name: str) -> DataDictionary:
    path = conformance_dir() / "spec" / f"{name}.xml"
    if not path.is_file():
        pytest.fail(f"{path} is missing from the QuickFIX conformance data")
    return parse_dictionary(path.read_text(encoding="utf-8"), path.name)


def pair(name: str | None) -> tuple[DataDictionary | None, DataDictionary | None]:
    """(transport, app) for a session: "FIX42", "FIXT11+FIX50SP2", "FIXT11" or None."""
    if name is None:
        return None, None
    transport, _, app = name.partition("+")
    return dictionary(transport), dictionary(app) if app else None


def wire(text: str) -> Message:
    """``"8=FIX.4.2|35=D|..."`` (no 9, no 10) encoded by the codec, in this field order, and parsed back."""
    text = text.replace("{T}", NOW)
    fields = [(int(tag), value.encode("latin-1")) for tag, _, value in (f.partition("=") for f in text.split("|"))]
    assert fields[0][0] == 8 and fields[1][0] == 35, text
    return parse(encode(fields[0][1], fields[1][1], fields[2:], []))


Outcome = tuple[RejectReason, int | None] | None


def outcome(rejection: Rejection | None) -> Outcome:
    return None if rejection is None else (rejection.reason, rejection.tag)


def check(session: str | None, text: str, options: ValidationOptions = DEFAULTS) -> Outcome:
    transport, app = pair(session)
    rejection = validate(wire(text), transport, app, options)
    if rejection is not None:
        assert rejection.text == REJECT_TEXT[rejection.reason]
    return outcome(rejection)


# ---------------------------------------------------------------- reasons and texts


def test_reject_reason_codes() -> None:
    assert [int(reason) for reason in RejectReason] == [*range(19), 99]
    assert R.INVALID_TAG_NUMBER == 0 and R.INVALID_UNSUPPORTED_APPL_VERSION == 18 and R.OTHER == 99


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (R.INVALID_TAG_NUMBER, "Invalid tag number"),
        (R.REQUIRED_TAG_MISSING, "Required tag missing"),
        (R.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE, "Tag not defined for this message type"),
        (R.UNDEFINED_TAG, "Undefined Tag"),
        (R.TAG_SPECIFIED_WITHOUT_A_VALUE, "Tag specified without a value"),
        (R.VALUE_IS_INCORRECT, "Value is incorrect (out of range) for this tag"),
        (R.INCORRECT_DATA_FORMAT_FOR_VALUE, "Incorrect data format for value"),
        (R.DECRYPTION_PROBLEM, "Decryption problem"),
        (R.SIGNATURE_PROBLEM, "Signature problem"),
        (R.COMPID_PROBLEM, "CompID problem"),
        (R.SENDING_TIME_ACCURACY_PROBLEM, "SendingTime accuracy problem"),
        (R.INVALID_MSG_TYPE, "Invalid MsgType"),
        (R.TAG_APPEARS_MORE_THAN_ONCE, "Tag appears more than once"),
        (R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, "Tag specified out of required order"),
        (R.REPEATING_GROUP_FIELDS_OUT_OF_ORDER, "Repeating group fields out of order"),
        (R.INCORRECT_NUM_IN_GROUP_COUNT, "Incorrect NumInGroup count for repeating group"),
        (R.NON_DATA_VALUE_INCLUDES_FIELD_DELIMITER, "Non Data value includes field delimiter (SOH character)"),
    ],
)
def test_standard_reject_texts(reason: RejectReason, text: str) -> None:
    assert REJECT_TEXT[reason] == text


def test_every_reason_has_a_text() -> None:
    assert set(REJECT_TEXT) == set(RejectReason)


def test_options_default_to_quickfix_defaults() -> None:
    assert ValidationOptions(
        check_fields_out_of_order=True,
        check_fields_have_values=True,
        check_user_defined_fields=True,
        allow_unknown_message_fields=False,
    ) == DEFAULTS


# ---------------------------------------------------------------- the acceptance-test cases

H42 = "8=FIX.4.2|35={mt}|34=2|49=TW42|52={T}|56=ISLD"
H44 = "8=FIX.4.4|35={mt}|34=2|49=TW44|52={T}|56=ISLD"
ORDER_BODY = "11=ID|21=1|40=1|54=1|38=002000.00|55=INTC|60={T}"


def head(version: str, msg_type: str) -> str:
    return (H42 if version == "FIX42" else H44).replace("{mt}", msg_type)


def both(name: str, body: str, expected: Outcome, msg_type: str = "D") -> list[object]:
    return [
        pytest.param(version, head(version, msg_type) + ("|" + body if body else ""), expected, id=f"{version}-{name}")
        for version in ("FIX42", "FIX44")
    ]


SCRIPT_CASES = [
    *both("14a-999", "999=HI", (R.INVALID_TAG_NUMBER, 999), "0"),
    *both("14a-0", "0=HI", (R.INVALID_TAG_NUMBER, 0), "0"),
    *both("14a-minus1", "-1=HI", (R.INVALID_TAG_NUMBER, -1), "0"),
    *both("14a-5000", "5000=HI", (R.INVALID_TAG_NUMBER, 5000), "0"),
    *both("14c-symbol-in-heartbeat", "55=MSFT", (R.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE, 55), "0"),
    *both("14e-handlinst", "11=ID|21=4|40=1|54=1|38=002000.00|55=INTC|60={T}", (R.VALUE_IS_INCORRECT, 21)),
    *both("14e-securitytype", ORDER_BODY + "|167=BOO", (R.VALUE_IS_INCORRECT, 167)),
    *both("14f-plus-sign", "11=ID|21=1|40=1|54=1|38=+200.00|55=INTC|60={T}", (R.INCORRECT_DATA_FORMAT_FOR_VALUE, 38)),
    *both("14h-repeated", "11=ID|21=1|40=1|40=2|54=1|38=200.00|55=INTC|60={T}", (R.TAG_APPEARS_MORE_THAN_ONCE, 40)),
    *both("14i-count", "11=ID|21=1|40=1|54=1|38=200.00|55=INTC|386=3|336=PRE-OPEN|336=AFTER-HOURS|60={T}",
          (R.INCORRECT_NUM_IN_GROUP_COUNT, 386)),
    *both("2q-msgtype", "", (R.INVALID_MSG_TYPE, None), "*"),
    *both("RejectResentMessage", "11=ID|21=3|38=100|40=1|54=1|55=IVP|60={T}|126=20040415",
          (R.INCORRECT_DATA_FORMAT_FOR_VALUE, 126)),
    *both("ReverseRoute", "115=JCD|11=ID|21=3|38=100|40=w|54=1|55=INTC|60={T}", (R.VALUE_IS_INCORRECT, 40)),
    *both("ReverseRoute-all", "115=JCD|116=CS|144=CHI|11=ID|21=3|38=100|40=w|54=1|55=INTC|60={T}",
          (R.VALUE_IS_INCORRECT, 40)),
    *[
        case
        for tag in (115, 128, 116, 129, 144, 145)
        for case in both(f"ReverseRouteWithEmptyRoutingTags-{tag}",
                         f"{tag}=|11=ID|21=3|38=100|40=1|54=1|55=INTC|60={{T}}",
                         (R.TAG_SPECIFIED_WITHOUT_A_VALUE, tag))
    ],
    *both("ReverseRouteWithEmptyRoutingTags-145-before-40w",
          "128=JCD|129=CS|145=|11=ID|21=3|38=100|40=w|54=1|55=INTC|60={T}", (R.TAG_SPECIFIED_WITHOUT_A_VALUE, 145)),
    # Accepted: the 14e follow-ups, 15 (header and body fields in any order), a Logon.
    pytest.param("FIX42", head("FIX42", "D") + "|" + ORDER_BODY + "|167=FUT", None, id="FIX42-14e-valid"),
    pytest.param("FIX44", head("FIX44", "D") + "|" + ORDER_BODY + "|167=CS", None, id="FIX44-14e-valid"),
    *both("15-any-order", "40=1|55=MSFT|60={T}|54=1|21=3|11=id", None),
    *both("logon", "98=0|108=30", None, "A"),
    *both("heartbeat-with-testreqid", "112=HELLO", None, "0"),
]


@pytest.mark.parametrize(("session", "text", "expected"), SCRIPT_CASES)
def test_acceptance_cases(session: str, text: str, expected: Outcome) -> None:
    assert check(session, text) == expected


@pytest.mark.parametrize(
    ("session", "text", "expected"),
    [
        # 14b: the header misses TargetCompID; the body misses the lowest required tag.
        ("FIX42", "8=FIX.4.2|35=0|34=2|49=TW42|52={T}", (R.REQUIRED_TAG_MISSING, 56)),
        ("FIX44", "8=FIX.4.4|35=0|34=2|49=TW44|52={T}", (R.REQUIRED_TAG_MISSING, 56)),
        ("FIX42", "8=FIX.4.2|35=D|49=TW42|34=3|56=ISLD|52={T}|40=1|60={T}|54=1|21=3|11=id",
         (R.REQUIRED_TAG_MISSING, 55)),
        ("FIX44", "8=FIX.4.4|35=D|49=TW44|34=3|56=ISLD|52={T}|40=1|60={T}|54=1|21=3",
         (R.REQUIRED_TAG_MISSING, 11)),
        # 14d: TargetCompID without a value.
        ("FIX42", "8=FIX.4.2|35=0|34=2|49=TW42|52={T}|56=", (R.TAG_SPECIFIED_WITHOUT_A_VALUE, 56)),
        ("FIX44", "8=FIX.4.4|35=0|34=2|49=TW44|52={T}|56=", (R.TAG_SPECIFIED_WITHOUT_A_VALUE, 56)),
        # 14g: a header field after the body, twice.
        ("FIX42", "8=FIX.4.2|35=D|11=id|21=3|40=1|54=1|55=MSFT|60={T}|34=2|49=TW42|52={T}|56=ISLD",
         (R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, 34)),
        ("FIX44", "8=FIX.4.4|35=D|55=MSFT|34=3|49=TW44|52={T}|56=ISLD|11=id|21=3|40=1|54=1|60={T}",
         (R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, 34)),
        # 21: NumInGroup of zero with no entries is accepted.
        ("FIX42", "8=FIX.4.2|35=d|34=2|49=TW42|56=ISLD|52={T}|320=JCD1091-20021011|322=1034356488676|323=6|55=TBS|"
                  "22=8|167=OPT|336=ONE_MAIN|58=No Products found for this Class Symbol|393=0|146=0", None),
        ("FIX44", "8=FIX.4.4|35=d|34=2|49=TW44|56=ISLD|52={T}|320=JCD1091-20021011|322=1034356488676|323=6|55=TBS|"
                  "22=8|167=CS|336=ONE_MAIN|58=No Products found for this Class Symbol|454=0", None),
        # RejectResentMessage: a resent order (PossDup) with a date where a timestamp belongs.
        ("FIX42", "8=FIX.4.2|35=D|34=2|43=Y|49=TW42|52={T}|56=ISLD|122={T}|11=ID|21=3|38=100|40=1|54=1|55=IVP|"
                  "60={T}|126=20040415", (R.INCORRECT_DATA_FORMAT_FOR_VALUE, 126)),
    ],
)
def test_acceptance_cases_with_their_own_headers(
    session: str, text: str, expected: Outcome
) -> None:
    assert check(session, text) == expected


def test_check_fields_have_values_switch() -> None:
    """validate/CheckFieldsHaveValues.def: ``112=`` is rejected, unless ValidateFieldsHaveValues=N."""
    text = "8=FIX.4.4|35=1|34=2|49=TW|52={T}|56=ISLD|112="
    assert check("FIX44", text) == (R.TAG_SPECIFIED_WITHOUT_A_VALUE, 112)
    assert check("FIX44", text, ValidationOptions(check_fields_have_values=False)) is None


# ---------------------------------------------------------------- the scripts themselves

_VALIDATION_TEXTS = {text: reason for reason, text in REJECT_TEXT.items()}
#: Rejects the session makes, not validation: sequence, PossDup and CompID rules.
_SESSION_REJECTS = {"SendingTime accuracy problem", "CompID problem"}
_SESSION_REJECT_SCRIPTS = {"2g_PossDupNoOrigSendingTime.def", "11c_NewSeqNoLess.def"}


def _substitute_time(line: str) -> str:
    return re.sub(r"<TIME([+-]\d+)?>", NOW, line)


def _fixify(payload: bytes) -> bytes:
    """The runner's BodyLength/CheckSum fix-up (FORMAT.md section 3)."""
    head_match = re.match(rb"8=[^\x01]*\x01", payload)
    if head_match is None:
        return payload
    head_part = head_match.group(0)
    rest = payload[len(head_part):]
    checksum = None
    tail = re.search(rb"\x0110=.*\x01$", rest)
    if tail is not None:
        checksum, rest = rest[tail.start() + 1:], rest[: tail.start() + 1]
    if b"\x019=" not in payload:
        head_part += b"9=%d\x01" % len(rest)
    if checksum is None:
        checksum = b"10=%03d\x01" % (sum(head_part + rest) % 256)
    return head_part + rest + checksum


def _expected_from(reply: str) -> Outcome | str:
    """What validation must say, judged from the acceptor's next reply; "skip" when not validation's call."""
    fields = dict(field.split("=", 1) for field in reply.split("\x01") if "=" in field)
    if fields.get("35") != "3":
        return None
    text = fields.get("58", "")
    if text in _SESSION_REJECTS or text not in _VALIDATION_TEXTS:
        return "skip"
    tag = fields.get("371")
    return _VALIDATION_TEXTS[text], int(tag) if tag is not None else None


def _next_reply(rest: list[str]) -> str:
    """The acceptor's first message after an ``I`` line, or "" if the runner acts first."""
    for line in rest:
        if line[:1] in ("I", "i", "e"):
            return ""
        if line[:1] == "E":
            return line[3:] if re.match(r"^E\d,", line) else line[1:]
    return ""


def _script_messages(folder: str) -> list[tuple[str, bytes, object]]:
    """(where, framed bytes, expected outcome) for each message the runner sends in ``folder``."""
    cases: list[tuple[str, bytes, object]] = []
    for path in sorted((conformance_dir() / "definitions" / "server" / folder).glob("*.def")):
        lines = path.read_bytes().decode("latin-1").replace("\r\n", "\n").split("\n")
        for number, line in enumerate(lines, 1):
            if not line.startswith("I"):
                continue
            payload = line[3:] if re.match(r"^I\d,", line) else line[1:]
            reply = _next_reply(lines[number:])
            expected = _expected_from(reply) if path.name not in _SESSION_REJECT_SCRIPTS else "skip"
            data = _fixify(_substitute_time(payload).encode("latin-1"))
            cases.append((f"{folder}/{path.name}:{number}", data, expected))
    return cases


@pytest.mark.parametrize(("folder", "session"), [("fix42", "FIX42"), ("fix44", "FIX44"), ("validate", "FIX44")])
def test_every_script_message_gets_the_reject_the_script_expects(folder: str, session: str) -> None:
    """Each message the runner sends: the acceptor's Reject (text 58 -> 373, 371), or no validation Reject."""
    transport, app = pair(session)
    checked = 0
    rejects = 0
    for where, data, expected in _script_messages(folder):
        framer = Framer()
        framer.feed(data)
        frame = framer.next_frame()
        if frame is None or frame.error is not None or expected == "skip":
            continue
        try:
            message = parse(frame.data)
        except GarbledMessage:
            continue
        options = ValidationOptions(check_fields_have_values=message.get(49) != b"NO_CHECK_FIELDS_HAVE_VALUES")
        assert outcome(validate(message, transport, app, options)) == expected, where
        checked += 1
        rejects += expected is not None
    least_checked, least_rejects = (4, 1) if folder == "validate" else (200, 25)
    assert checked >= least_checked and rejects >= least_rejects, f"only {checked} messages, {rejects} rejects"


# ---------------------------------------------------------------- order of checks


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Structure first, then MsgType.
        ("8=FIX.4.2|35=*|11=X|34=2|49=TW|52={T}|56=ISLD", (R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, 34)),
        # MsgType before required fields.
        ("8=FIX.4.2|35=*|34=2|49=TW|52={T}", (R.INVALID_MSG_TYPE, None)),
        # Required fields before values.
        ("8=FIX.4.2|35=D|34=2|49=TW|52={T}|56=ISLD|11=ID|21=4|40=1|54=1|60={T}", (R.REQUIRED_TAG_MISSING, 55)),
        # Header before body.
        ("8=FIX.4.2|35=D|34=2|49=TW|52={T}|56=|11=ID|21=4|40=1|54=1|55=X|60={T}",
         (R.TAG_SPECIFIED_WITHOUT_A_VALUE, 56)),
        # Within the body, ascending tag order, whatever the wire order.
        ("8=FIX.4.2|35=D|34=2|49=TW|52={T}|56=ISLD|38=+1|11=ID|21=4|40=1|54=1|55=X|60={T}", (R.VALUE_IS_INCORRECT, 21)),
        ("8=FIX.4.2|35=D|34=2|49=TW|52={T}|56=ISLD|167=BOO|11=ID|21=1|38=+1|40=1|54=1|55=X|60={T}",
         (R.INCORRECT_DATA_FORMAT_FOR_VALUE, 38)),
        # Within one field: format before enumeration, both before "not in this message".
        ("8=FIX.4.2|35=0|34=2|49=TW|52={T}|56=ISLD|54=12", (R.INCORRECT_DATA_FORMAT_FOR_VALUE, 54)),
        ("8=FIX.4.2|35=0|34=2|49=TW|52={T}|56=ISLD|54=Z", (R.VALUE_IS_INCORRECT, 54)),
        # A missing MsgSeqNum is the session's (Logout), not a Reject.
        ("8=FIX.4.2|35=0|49=TW|52={T}|56=ISLD", None),
        # Missing SendingTime is a plain required-field Reject.
        ("8=FIX.4.2|35=0|34=2|49=TW|56=ISLD", (R.REQUIRED_TAG_MISSING, 52)),
        # Repeated header tag.
        ("8=FIX.4.2|35=0|34=2|49=TW|49=TW|52={T}|56=ISLD", (R.TAG_APPEARS_MORE_THAN_ONCE, 49)),
        # A header tag of another FIX version is still a header tag, but not a FIX.4.2 one.
        ("8=FIX.4.2|35=0|34=2|49=TW|52={T}|56=ISLD|1128=9", (R.INVALID_TAG_NUMBER, 1128)),
    ],
)
def test_order_of_checks(text: str, expected: Outcome) -> None:
    assert check("FIX42", text) == expected


# ---------------------------------------------------------------- groups and value types


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("453=2|448=P1|447=D|452=1|802=1|523=S|803=1|448=P2|447=C", None),
        # An entry must start with the delimiter and hold each member once.
        ("386=1|625=X|336=A", (R.REPEATING_GROUP_FIELDS_OUT_OF_ORDER, 625)),
        ("386=2|336=A|625=X|625=Y", (R.REPEATING_GROUP_FIELDS_OUT_OF_ORDER, 625)),
        # Nested group count, values inside entries.
        ("453=1|448=P|447=D|452=1|802=2|523=S|803=1", (R.INCORRECT_NUM_IN_GROUP_COUNT, 802)),
        ("453=1|448=P|447=Z", (R.VALUE_IS_INCORRECT, 447)),
        ("453=1|448=P|447=ZZ", (R.INCORRECT_DATA_FORMAT_FOR_VALUE, 447)),
        ("453=1|448=P|447=", (R.TAG_SPECIFIED_WITHOUT_A_VALUE, 447)),
        ("453=1|448=P|452=x", (R.INCORRECT_DATA_FORMAT_FOR_VALUE, 452)),
        ("386=X|336=A", (R.INCORRECT_DATA_FORMAT_FOR_VALUE, 386)),
        ("386=0|336=A", (R.INCORRECT_NUM_IN_GROUP_COUNT, 386)),
        # A group member outside its group is not a field of the message.
        ("336=A", (R.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE, 336)),
    ],
)
def test_repeating_groups(body: str, expected: Outcome) -> None:
    assert check("FIX44", head("FIX44", "D") + "|11=ID|40=1|54=1|55=X|60={T}|" + body) == expected


def test_required_fields_inside_a_group_entry() -> None:
    """FIX.4.4 NewOrderList: each NoOrders entry needs ClOrdID, Side and ListSeqNo."""
    base = head("FIX44", "E") + "|66=L1|68=1|394=3|73=1|11=O1|67=1"
    assert check("FIX44", base) == (R.REQUIRED_TAG_MISSING, 54)
    assert check("FIX44", base + "|54=1") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", None), ("1 2 5", None), ("1 ZZ", (R.VALUE_IS_INCORRECT, 18)), ("", (R.TAG_SPECIFIED_WITHOUT_A_VALUE, 18))],
)
def test_multiple_value_string_checks_each_value(value: str, expected: Outcome) -> None:
    assert check("FIX42", head("FIX42", "D") + "|" + ORDER_BODY + f"|18={value}") == expected


@pytest.mark.parametrize(
    ("type_name", "good", "bad"),
    [
        ("INT", ["0", "42", "-7", "007"], ["", "+1", "1.0", "1e3", "-", "a", " 1"]),
        ("LENGTH", ["0", "12"], ["-1", "+1", "1.5"]),
        ("NUMINGROUP", ["0", "3"], ["-1", "x"]),
        ("SEQNUM", ["1"], ["-1"]),
        ("TAGNUM", ["35"], ["-35"]),
        ("DAYOFMONTH", ["1", "31"], ["-1", "1.0"]),
        ("QTY", ["100", "002000.00", "1.", ".5", "-1.5"], ["+200.00", "1e5", "1.2.3", ".", "-", "1,000", "NaN"]),
        ("PRICE", ["10.25"], ["+1"]),
        ("PRICEOFFSET", ["-0.5"], ["0.5-"]),
        ("AMT", ["1000"], ["1 000"]),
        ("PERCENTAGE", ["0.15"], ["15%"]),
        ("FLOAT", ["3.14"], ["3,14"]),
        ("CHAR", ["1", "A"], ["", "AB"]),
        ("BOOLEAN", ["Y", "N"], ["y", "YES", "1"]),
        ("UTCTIMESTAMP", ["20240102-03:04:05", "20240102-03:04:05.123", "20240102-03:04:05.123456",
                          "20240102-03:04:05.123456789", "20240229-23:59:60"],
         ["20040415", "20240102-03:04", "20240102-24:00:00", "20240102-03:60:00", "20240102-03:04:61",
          "20230229-00:00:00", "20241301-00:00:00", "20240100-00:00:00", "20240102-03:04:05.1234",
          "20240102 03:04:05", "20240102-03:04:05."]),
        ("UTCTIMEONLY", ["03:04:05", "23:59:59.999"], ["3:04:05", "24:00:00", "03:04"]),
        ("UTCDATEONLY", ["20240229"], ["20230229", "2024-01-02", "2024010"]),
        ("UTCDATE", ["20240131"], ["20240132"]),
        ("LOCALMKTDATE", ["20241231"], ["20241200"]),
        ("MONTHYEAR", ["202401", "20240131", "202401w1", "202401w5"], ["202413", "2024", "202401w6", "20240230"]),
        ("MULTIPLECHARVALUE", ["A", "A B C"], ["AB", "A  B"]),
        ("STRING", ["anything at all", "+1"], []),
        ("MULTIPLEVALUESTRING", ["A B"], []),
    ],
)
def test_value_syntax(type_name: str, good: list[str], bad: list[str]) -> None:
    for value in good:
        assert is_valid_value(type_name, value.encode()), (type_name, value)
    for value in bad:
        assert not is_valid_value(type_name, value.encode()), (type_name, value)


def test_soh_only_inside_data_fields() -> None:
    fix42 = dictionary("FIX42")
    header = [(8, b"FIX.4.2"), (9, b"1"), (35, b"A"), (34, b"2"), (49, b"TW"), (52, NOW.encode()), (56, b"ISLD")]
    logon = [*header, (98, b"0"), (108, b"30"), (95, b"3"), (96, b"a\x01b"), (10, b"000")]
    assert validate(Message(logon), fix42, fix42, DEFAULTS) is None
    text = [*header[:2], (35, b"0"), *header[3:], (58, b"a\x01b"), (10, b"000")]
    assert outcome(validate(Message(text), fix42, fix42, DEFAULTS)) == (R.NON_DATA_VALUE_INCLUDES_FIELD_DELIMITER, 58)
    assert outcome(validate(Message(text), None, None, DEFAULTS)) == (R.NON_DATA_VALUE_INCLUDES_FIELD_DELIMITER, 58)


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "text", "expected"),
    [
        (ValidationOptions(check_fields_out_of_order=False),
         "8=FIX.4.2|35=D|11=id|21=3|40=1|54=1|55=MSFT|60={T}|34=2|49=TW42|52={T}|56=ISLD", None),
        (ValidationOptions(check_user_defined_fields=False), H42.replace("{mt}", "0") + "|5000=HI", None),
        (ValidationOptions(check_user_defined_fields=False), H42.replace("{mt}", "0") + "|999=HI",
         (R.INVALID_TAG_NUMBER, 999)),
        (ValidationOptions(allow_unknown_message_fields=True), H42.replace("{mt}", "0") + "|999=HI", None),
        (ValidationOptions(allow_unknown_message_fields=True), H42.replace("{mt}", "0") + "|55=MSFT", None),
        (ValidationOptions(allow_unknown_message_fields=True), H42.replace("{mt}", "0") + "|5000=HI",
         (R.INVALID_TAG_NUMBER, 5000)),
        (ValidationOptions(allow_unknown_message_fields=True), H42.replace("{mt}", "0") + "|0=HI",
         (R.INVALID_TAG_NUMBER, 0)),
        (ValidationOptions(check_fields_have_values=False), H42.replace("{mt}", "D") + "|" + ORDER_BODY + "|44=",
         None),
    ],
)
def test_options(options: ValidationOptions, text: str, expected: Outcome) -> None:
    assert check("FIX42", text, options) == expected


# ---------------------------------------------------------------- FIXT.1.1 and no dictionary

FIXT_HEAD = "8=FIXT.1.1|35={mt}|34=2|49=TW50|52={T}|56=ISLD"


def fixt(msg_type: str, body: str = "") -> str:
    return FIXT_HEAD.replace("{mt}", msg_type) + ("|" + body if body else "")


@pytest.mark.parametrize(
    ("session", "text", "expected"),
    [
        ("FIXT11+FIX50SP2", fixt("A", "98=0|108=30|1137=9"), None),
        ("FIXT11+FIX50SP2", fixt("A", "98=0|108=30"), (R.REQUIRED_TAG_MISSING, 1137)),
        ("FIXT11+FIX50SP2", fixt("0", "112=X"), None),
        ("FIXT11+FIX50SP2", fixt("0", "1137=9"), (R.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE, 1137)),
        ("FIXT11+FIX50SP2", fixt("D", "1128=9|11=ID|21=1|38=100|40=1|54=1|55=INTC|60={T}"), None),
        ("FIXT11+FIX50SP2", fixt("D", "11=ID|21=4|38=100|40=1|54=1|55=INTC|60={T}"), (R.VALUE_IS_INCORRECT, 21)),
        ("FIXT11+FIX50SP2", fixt("D", "21=1|38=100|40=1|54=1|55=INTC|60={T}"), (R.REQUIRED_TAG_MISSING, 11)),
        ("FIXT11+FIX50SP2", fixt("D", "11=ID|38=100|40=1|54=1|55=INTC|60={T}|98=0"),
         (R.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE, 98)),
        ("FIXT11+FIX50SP2", fixt("*"), (R.INVALID_MSG_TYPE, None)),
        ("FIXT11+FIX50SP2", fixt("D", "11=ID|38=100|40=1|54=1|55=INTC|60={T}").replace("56=ISLD", "56="),
         (R.TAG_SPECIFIED_WITHOUT_A_VALUE, 56)),
        ("FIXT11+FIX50SP2", fixt("D", "1128=ZZ|11=ID|38=100|40=1|54=1|55=INTC|60={T}"), (R.VALUE_IS_INCORRECT, 1128)),
        # Transport dictionary only: application bodies go unchecked, the header still is.
        ("FIXT11", fixt("D", "11=ID|21=4"), None),
        ("FIXT11", fixt("D", "11=ID").replace("56=ISLD", "56="), (R.TAG_SPECIFIED_WITHOUT_A_VALUE, 56)),
        ("FIXT11", fixt("A", "98=0|108=30"), (R.REQUIRED_TAG_MISSING, 1137)),
    ],
)
def test_fixt_admin_against_transport_app_against_application(
    session: str, text: str, expected: Outcome
) -> None:
    assert check(session, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8=FIX.4.2|35=0|34=2|49=TW42|52={T}|56=", (R.TAG_SPECIFIED_WITHOUT_A_VALUE, 56)),
        ("8=FIX.4.2|35=D|11=id|21=3|34=2|49=TW42|52={T}|56=ISLD", (R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, 34)),
        ("8=FIX.4.2|35=0|34=2|49=TW42|49=TW42|52={T}|56=ISLD", (R.TAG_APPEARS_MORE_THAN_ONCE, 49)),
        ("8=FIX.4.2|35=0|34=2|49=TW42|52={T}|56=ISLD|0=HI", (R.INVALID_TAG_NUMBER, 0)),
        ("8=FIX.4.2|35=D|34=2|49=TW42|52={T}|56=ISLD|11=ID|40=1|40=2", None),
        ("8=FIX.4.4|35=0|34=2|49=TW|52={T}|56=ISLD|627=2|628=A|628=B", None),
        ("8=FIX.4.2|35=*|34=2|49=TW42|52={T}|56=ISLD|999=HI", None),
        ("8=FIX.4.2|35=D|34=2|49=TW42|52={T}|56=ISLD", None),
    ],
)
def test_without_dictionary_only_structural_checks(text: str, expected: Outcome) -> None:
    assert check(None, text) == expected


def test_first_three_fields_must_be_8_9_35() -> None:
    fields = [(8, b"FIX.4.2"), (35, b"0"), (9, b"5"), (34, b"2"), (49, b"TW"), (52, NOW.encode()), (56, b"I"),
              (10, b"000")]
    for session in ("FIX42", None):
        transport, app = pair(session)
        assert outcome(validate(Message(fields), transport, app, DEFAULTS)) == (
            R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, 9)


def test_nothing_after_checksum() -> None:
    fields = [(8, b"FIX.4.2"), (9, b"5"), (35, b"0"), (34, b"2"), (49, b"TW"), (52, NOW.encode()), (56, b"I"),
              (10, b"000"), (58, b"late")]
    assert outcome(validate(Message(fields), dictionary("FIX42"), None, DEFAULTS)) == (
        R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, 58)


# ---------------------------------------------------------------- never raises

_SESSIONS = (None, "FIX40", "FIX42", "FIX44", "FIXT11+FIX50SP2", "FIXT11")
_TAGS = st.one_of(
    st.sampled_from([8, 9, 35, 34, 49, 52, 56, 10, 11, 21, 38, 40, 54, 55, 60, 386, 336, 625, 453, 448, 447, 452,
                     802, 523, 803, 73, 67, 627, 628, 95, 96, 18, 167, 1128, 1137, 93, 89, 146, 311]),
    st.integers(min_value=-5, max_value=10_000),
    st.integers(),
)
_VALUES = st.one_of(
    st.sampled_from([b"", b"0", b"1", b"2", b"Y", b"D", b"A", b"*", b"FIX.4.2", b"+1", b"1 2", b"a\x01b",
                     NOW.encode(), b"20040415", b"-1", b"99999999999999999999"]),
    st.binary(max_size=12),
)
_OPTIONS = st.builds(ValidationOptions, st.booleans(), st.booleans(), st.booleans(), st.booleans())


@st.composite
def _messages(draw: st.DrawFn) -> Message:
    """Mostly well-framed messages with random bodies, sometimes anything at all."""
    body = draw(st.lists(st.tuples(_TAGS, _VALUES), max_size=30))
    if draw(st.booleans()):
        begin = draw(st.sampled_from([b"FIX.4.2", b"FIX.4.4", b"FIXT.1.1"]))
        msg_type = draw(st.sampled_from([b"0", b"A", b"D", b"d", b"E", b"*", b"", b"1"]))
        return Message([(8, begin), (9, b"10"), (35, msg_type), *body, (10, b"000")])
    return Message(body)


@settings(max_examples=600, deadline=None)
@given(message=_messages(), session=st.sampled_from(_SESSIONS), options=_OPTIONS)
def test_validate_never_raises(message: Message, session: str | None, options: ValidationOptions) -> None:
    transport, app = pair(session)
    rejection = validate(message, transport, app, options)
    if rejection is not None:
        assert rejection.text == REJECT_TEXT[rejection.reason]
        assert isinstance(rejection.reason, RejectReason)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), session=st.sampled_from(("FIX42", "FIX44")))
def test_validate_never_raises_on_mutated_valid_orders(data: st.DataObject, session: str) -> None:
    """Valid NewOrderSingles with fields dropped, repeated, emptied or moved still get an answer."""
    text = head(session, "D") + "|" + ORDER_BODY + "|453=1|448=P|447=D|452=1|386=1|336=A"
    fields = list(wire(text).fields)
    for _ in range(data.draw(st.integers(0, 4))):
        index = data.draw(st.integers(0, len(fields) - 1))
        action = data.draw(st.sampled_from(["drop", "repeat", "empty", "move"]))
        if action == "drop" and len(fields) > 1:
            del fields[index]
        elif action == "repeat":
            fields.insert(index, fields[index])
        elif action == "empty":
            fields[index] = (fields[index][0], b"")
        else:
            fields.insert(data.draw(st.integers(0, len(fields))), fields.pop(index))
    transport, app = pair(session)
    rejection = validate(Message(fields), transport, app, DEFAULTS)
    assert rejection is None or rejection.text == REJECT_TEXT[rejection.reason]


# ---------------------------------------------------------------- the compiled plan (fast acceptance)
#
# ``validate`` first asks a plan compiled per (dictionaries, MsgType, options)
# whether a message is clean, and runs the step-by-step checks only when the
# plan does not accept it. The plan must never accept what the steps reject,
# and should accept the ordinary clean messages, or it buys nothing. The
# tests reach into the module's private helpers (``V._plan_for``...) for that.

ER_BODY = "6=0|11=ID|14=0|17=E1|37=O1|38=100|39=0|54=1|55=FMX|60={T}|150=0|151=100"


def plan_accepts(session: str, text: str, options: ValidationOptions = DEFAULTS) -> bool:
    transport, app = pair(session)
    msg = wire(text)
    section_dd, body_dd = V._dictionaries(msg.msg_type, transport, app)
    assert section_dd is not None and body_dd is not None
    plan = V._plan_for(section_dd, body_dd, msg.msg_type, options)
    return plan is not None and V._passes(plan, msg.fields)


def steps_say(msg: Message, transport: DataDictionary | None, app: DataDictionary | None,
              options: ValidationOptions) -> Rejection | None:
    """The step-by-step answer, without the plan."""
    section_dd, body_dd = V._dictionaries(msg.msg_type, transport, app)
    return V._first_problem(msg, section_dd, body_dd, options)


@pytest.mark.parametrize(
    ("session", "text"),
    [
        ("FIX44", head("FIX44", "D") + "|" + ORDER_BODY + "|44=10.5"),
        ("FIX44", head("FIX44", "8") + "|" + ER_BODY),
        ("FIX44", head("FIX44", "0")),
        ("FIX44", head("FIX44", "0") + "|112=HELLO"),
        ("FIX44", head("FIX44", "A") + "|98=0|108=30"),
        ("FIX42", head("FIX42", "D") + "|" + ORDER_BODY),
        # Repeating groups, nested ones, and a group of zero entries.
        ("FIX44", head("FIX44", "D") + "|" + ORDER_BODY + "|453=2|448=P1|447=D|452=1|802=1|523=S|803=1|448=P2|447=C"),
        ("FIX44", head("FIX44", "D") + "|" + ORDER_BODY + "|386=0"),
        ("FIX44", head("FIX44", "E") + "|66=L1|68=1|394=3|73=1|11=O1|67=1|54=1"),
        # A header group (NoHops) and a header field of FIX.4.4 only.
        ("FIX44", head("FIX44", "0") + "|627=2|628=A|629={T}|628=B"),
        ("FIXT11+FIX50SP2", fixt("D", "1128=9|11=ID|21=1|38=100|40=1|54=1|55=INTC|60={T}")),
        ("FIXT11+FIX50SP2", fixt("A", "98=0|108=30|1137=9")),
    ],
)
def test_the_plan_accepts_ordinary_clean_messages(session: str, text: str) -> None:
    assert check(session, text) is None
    assert plan_accepts(session, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Each is clean but for one problem, found by the steps after the plan says no.
        (head("FIX44", "8") + "|" + ER_BODY.replace("39=0", "39=X"), (R.VALUE_IS_INCORRECT, 39)),
        (head("FIX44", "8") + "|" + ER_BODY.replace("14=0", "14=+0"), (R.INCORRECT_DATA_FORMAT_FOR_VALUE, 14)),
        (head("FIX44", "8") + "|" + ER_BODY.replace("|17=E1", ""), (R.REQUIRED_TAG_MISSING, 17)),
        (head("FIX44", "8") + "|" + ER_BODY + "|17=E2", (R.TAG_APPEARS_MORE_THAN_ONCE, 17)),
        (head("FIX44", "8") + "|" + ER_BODY.replace("60={T}", "60=20240102-03:04:05.12"),
         (R.INCORRECT_DATA_FORMAT_FOR_VALUE, 60)),
        (head("FIX44", "D") + "|" + ORDER_BODY + "|453=2|448=P1|447=D|448=P2|452=1|452=2",
         (R.REPEATING_GROUP_FIELDS_OUT_OF_ORDER, 452)),
        (head("FIX44", "D") + "|" + ORDER_BODY + "|453=1|448=P1|447=D|802=1|523=S|803=1|803=2",
         (R.REPEATING_GROUP_FIELDS_OUT_OF_ORDER, 803)),
        (head("FIX44", "D") + "|" + ORDER_BODY + "|453=1|448=P1|447=D|802=1|523=S|803=1|523=T",
         (R.INCORRECT_NUM_IN_GROUP_COUNT, 802)),
        (head("FIX44", "D") + "|" + ORDER_BODY + "|453=2|448=P1|447=D", (R.INCORRECT_NUM_IN_GROUP_COUNT, 453)),
        (head("FIX44", "E") + "|66=L1|68=2|394=3|73=2|11=O1|67=1|54=1|11=O2|67=2", (R.REQUIRED_TAG_MISSING, 54)),
        (head("FIX44", "0") + "|627=1|628=A|628=B", (R.INCORRECT_NUM_IN_GROUP_COUNT, 627)),
    ],
)
def test_the_plan_leaves_problems_to_the_steps(text: str, expected: Outcome) -> None:
    assert not plan_accepts("FIX44", text)
    assert check("FIX44", text) == expected


def test_a_plan_is_compiled_once_per_dictionaries_msg_type_and_options() -> None:
    fix44 = dictionary("FIX44")
    plan = V._plan_for(fix44, fix44, "D", ValidationOptions())
    assert plan is not None
    assert V._plan_for(fix44, fix44, "D", ValidationOptions()) is plan
    assert V._plan_for(fix44, fix44, "8", ValidationOptions()) is not plan
    assert V._plan_for(fix44, fix44, "D", ValidationOptions(allow_unknown_message_fields=True)) is not plan
    assert V._plan_for(dictionary("FIX42"), dictionary("FIX42"), "D", ValidationOptions()) is not plan


def test_a_changed_copy_of_a_dictionary_compiles_its_own_plans() -> None:
    """``dataclasses.replace`` gives a new dictionary: it must not reuse plans made for the old one."""
    fix44 = dictionary("FIX44")
    assert V._plan_for(fix44, fix44, "0", DEFAULTS) is not None
    without_heartbeat_body = dataclasses.replace(fix44, messages={**fix44.messages, "0": fix44.messages["1"]})
    assert without_heartbeat_body.derived == {}
    text = head("FIX44", "0") + "|112=HELLO"
    assert check("FIX44", text) is None
    assert outcome(validate(wire(text), without_heartbeat_body, None, DEFAULTS)) is None
    assert outcome(validate(wire(head("FIX44", "0")), without_heartbeat_body, None, DEFAULTS)) == (
        R.REQUIRED_TAG_MISSING, 112)


def test_no_plan_is_kept_for_an_undefined_msg_type() -> None:
    """MsgType is the peer's to choose: keeping a plan (or a None) per value would grow without bound."""
    fix44 = dictionary("FIX44")
    before = len(fix44.derived)
    for msg_type in ("*", "ZZ", "", "D " * 3):
        assert V._plan_for(fix44, fix44, msg_type, DEFAULTS) is None
    assert len(fix44.derived) == before


@pytest.mark.parametrize(
    ("options", "text", "by_plan", "expected"),
    [
        # The plan follows the options: header fields after the body, a tag of another MsgType.
        (ValidationOptions(check_fields_out_of_order=False),
         "8=FIX.4.4|35=D|11=id|21=3|40=1|54=1|55=MSFT|60={T}|34=2|49=TW44|52={T}|56=ISLD", True, None),
        (DEFAULTS, "8=FIX.4.4|35=D|11=id|21=3|40=1|54=1|55=MSFT|60={T}|34=2|49=TW44|52={T}|56=ISLD", False,
         (R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, 34)),
        (ValidationOptions(allow_unknown_message_fields=True), head("FIX44", "0") + "|55=MSFT", True, None),
        (DEFAULTS, head("FIX44", "0") + "|55=MSFT", False, (R.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE, 55)),
        (ValidationOptions(allow_unknown_message_fields=True), head("FIX44", "0") + "|55=MSFT|55=IBM", False,
         (R.TAG_APPEARS_MORE_THAN_ONCE, 55)),
        # Tags the dictionary does not define: accepted by the steps when the options say so, never by the plan.
        (ValidationOptions(check_user_defined_fields=False), head("FIX44", "0") + "|5001=X", False, None),
        (ValidationOptions(allow_unknown_message_fields=True), head("FIX44", "0") + "|4999=X", False, None),
        (ValidationOptions(check_fields_have_values=False), head("FIX44", "0") + "|112=", False, None),
    ],
)
def test_options_change_what_the_plan_accepts(
    options: ValidationOptions, text: str, by_plan: bool, expected: Outcome
) -> None:
    assert plan_accepts("FIX44", text, options) is by_plan
    assert check("FIX44", text, options) == expected


def test_with_fields_out_of_order_allowed_groups_go_to_the_steps() -> None:
    """Without ValidateFieldsOutOfOrder a header field may split a group, which only ``_split`` reads right."""
    options = ValidationOptions(check_fields_out_of_order=False)
    text = "8=FIX.4.4|35=D|11=ID|21=1|40=1|54=1|55=X|60={T}|453=2|448=A|447=D|34=2|448=B|447=D|49=TW|52={T}|56=ISLD"
    assert not plan_accepts("FIX44", text, options)
    assert check("FIX44", text, options) is None
    repeated = text.replace("|448=B|447=D", "|447=D")
    assert check("FIX44", repeated, options) == (R.REPEATING_GROUP_FIELDS_OUT_OF_ORDER, 447)


_TIMESTAMP_TAILS = st.one_of(
    st.sampled_from([b"", b".", b".1", b".12", b".123", b".1234", b".123456", b".1234567", b".123456789",
                     b".1234567890", b".12a", b"\x01", b".123\x01", b"0", b" "]),
    st.binary(max_size=11),
)


@settings(max_examples=300, deadline=None)
@given(second=st.sampled_from([b"00", b"05", b"59", b"60"]), tail=_TIMESTAMP_TAILS,
       other=st.sampled_from([b"00", b"60", b"61", b"6", b"x9"]))
def test_cached_timestamps_check_what_the_parse_checks(second: bytes, tail: bytes, other: bytes) -> None:
    """Once a date-time to the second is known good, values sharing it are judged as the full parse would."""
    known = b"20240229-23:59:" + second
    assert V._is_utc_timestamp_cached(known + b".000")
    for value in (known + tail, b"20240229-23:59:" + other + tail, known[:-1] + tail):
        assert V._is_utc_timestamp_cached(value) == V._is_utc_timestamp(value), value


_NUMBERS = st.one_of(
    st.sampled_from([b"", b"0", b"-0", b"-", b"--1", b".", b"-.", b"1.", b".5", b"-.5", b"1.2.3", b"+1", b"1e5",
                     b"12a", b"\x01", b"1\x01", b" 1", b"1 ", b"\xd9\xa1", b"007", b"-007.50"]),
    st.binary(max_size=8),
    st.from_regex(rb"\A-?[0-9]{0,3}\.?[0-9]{0,3}\Z"),
    st.sampled_from([b"20240229", b"20230229", b"20241301", b"20240100", b"2024010", b"202401", b"202401w5",
                     b"202401w6", b"20240102-03:04:05", b"20240102-03:04:05.123", b"20240102-03:04:05.1234"]),
    st.from_regex(rb"\A[0-9]{6,8}(w[0-9])?\Z"),
)


@settings(max_examples=400, deadline=None)
@given(value=_NUMBERS)
def test_fast_syntax_checks_accept_what_the_reference_accepts(value: bytes) -> None:
    """The same answer as the reference, again when asked twice (some remember what they accepted)."""
    for type_name, fast in V._FAST_SYNTAX_CHECKS.items():
        for _ in range(2):
            assert bool(fast(value)) == is_valid_value(type_name, value), (type_name, value)
            assert b"\x01" not in value or not fast(value)


@st.composite
def _clean_fix44_messages(draw: st.DrawFn) -> Message:
    """FIX.4.4 messages built from the dictionary: required fields, some optional ones, groups, valid values."""
    fix44 = dictionary("FIX44")
    msg_type = draw(st.sampled_from(["D", "8", "0", "1", "A", "E", "d", "V", "W", "AE", "j", "3", "4", "5", "2"]))
    body = _layout_fields(draw, fix44, fix44.messages[msg_type].layout, 0)
    fields = [(8, b"FIX.4.4"), (35, msg_type.encode()), (34, b"2"), (49, b"TW"), (52, NOW.encode()), (56, b"ISLD"),
              *body]
    return parse(encode(b"FIX.4.4", msg_type.encode(), fields[2:], []))


def _layout_fields(draw: st.DrawFn, dd: DataDictionary, layout: Layout, depth: int) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    for member in layout.members:
        if not (member.required or draw(st.integers(0, 3)) == 0):
            continue
        if member.group is None:
            out.append((member.tag, draw(_values_for(dd, member.tag))))
            continue
        count = dd.fields[member.tag]
        entries = draw(st.sampled_from(sorted(int(enum) for enum in count.enums)) if count.enums
                       else st.integers(0, 2 if depth < 2 else 0))
        out.append((member.tag, b"%d" % entries))
        for _ in range(entries):
            entry = _layout_fields(draw, dd, member.group.layout, depth + 1)
            delimiter = member.group.delimiter
            out.append((delimiter, draw(_values_for(dd, delimiter))))
            out.extend(field for field in entry if field[0] != delimiter)
    return out


def _values_for(dd: DataDictionary, tag: int) -> st.SearchStrategy[bytes]:
    definition = dd.fields[tag]
    if definition.enums and definition.is_multi_value:
        return st.lists(st.sampled_from(sorted(definition.enums)), min_size=1, max_size=3).map(b" ".join)
    if definition.enums:
        return st.sampled_from(sorted(definition.enums))
    by_type: dict[str, list[bytes]] = {
        "INT": [b"0", b"-3", b"42"], "LENGTH": [b"3"], "NUMINGROUP": [b"1"], "SEQNUM": [b"7"], "DAYOFMONTH": [b"9"],
        "QTY": [b"100", b"1.5", b".5"], "PRICE": [b"10.25", b"-1"], "FLOAT": [b"3.0"], "AMT": [b"1000"],
        "PRICEOFFSET": [b"-0.5"], "PERCENTAGE": [b"0.15"], "CHAR": [b"A"], "BOOLEAN": [b"Y", b"N"],
        "UTCTIMESTAMP": [NOW.encode(), NOW.encode() + b".123", b"20240229-23:59:60.123456789"],
        "UTCTIMEONLY": [b"12:34:56"], "UTCDATEONLY": [b"20240102"], "LOCALMKTDATE": [b"20240229"],
        "MONTHYEAR": [b"202401", b"202401w2"], "DATA": [b"abc"], "MULTIPLEVALUESTRING": [b"A B"],
    }
    return st.sampled_from(by_type.get(definition.syntax, [b"TEXT", b"x y"]))


@settings(max_examples=300, deadline=None)
@given(message=_clean_fix44_messages(), data=st.data(), options=_OPTIONS)
def test_the_plan_never_changes_the_answer(message: Message, data: st.DataObject, options: ValidationOptions) -> None:
    """Clean messages, and the same with a few fields dropped, repeated, emptied, moved or changed."""
    fix44 = dictionary("FIX44")
    fields = list(message.fields)
    for _ in range(data.draw(st.integers(0, 3))):
        index = data.draw(st.integers(0, len(fields) - 1))
        action = data.draw(st.sampled_from(["drop", "repeat", "empty", "move", "value", "insert"]))
        tag, value = fields[index]
        if action == "drop":
            del fields[index]
        elif action == "repeat":
            fields.insert(data.draw(st.integers(0, len(fields))), (tag, value))
        elif action == "empty":
            fields[index] = (tag, b"")
        elif action == "move":
            fields.insert(data.draw(st.integers(0, len(fields))), fields.pop(index))
        elif action == "value":
            fields[index] = (tag, data.draw(_VALUES))
        else:
            fields.insert(data.draw(st.integers(0, len(fields))), (data.draw(_TAGS), data.draw(_VALUES)))
    msg = Message(fields)
    assert validate(msg, fix44, fix44, options) == steps_say(Message(fields), fix44, fix44, options)


@settings(max_examples=300, deadline=None)
@given(message=_messages(), session=st.sampled_from(_SESSIONS), options=_OPTIONS)
def test_the_plan_never_changes_the_answer_on_any_message(
    message: Message, session: str | None, options: ValidationOptions
) -> None:
    transport, app = pair(session)
    assert validate(message, transport, app, options) == steps_say(Message(message.fields), transport, app, options)
