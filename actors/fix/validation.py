"""Data-dictionary validation of inbound messages: the session Reject decision.

``validate`` returns the first problem as a ``Rejection`` (SessionRejectReason
373, RefTagID 371 and the standard text for 58), or None. The order of checks
follows QuickFIX (``DataDictionary::validate``), because the FIX session test
cases encode which problem is reported when a message has several:

1. structure (ValidateFieldsOutOfOrder): 8, 9, 35 first; no header tag after
   a body or trailer tag, no body tag after a trailer tag, nothing after
   CheckSum (test case 14g -> 14, 371 = the misplaced tag);
2. MsgType defined in the dictionary (2q -> 11, no 371);
3. repeating-group structure: each entry starts with its delimiter and holds
   each member once (15);
4. required fields: header, trailer, then body, each in ascending tag order
   as QuickFIX keeps them, then inside each group entry (14b -> 1);
5. every field, header first, then trailer, then body, each in ascending tag
   order as QuickFIX iterates its sorted field maps: repeated tag (14h ->
   13), empty value (14d -> 4), SOH in a non-data value (17), data format
   (14f -> 6), enumerated value (14e -> 5), tag defined in the dictionary
   (14a -> 0), tag allowed in this MsgType (14c -> 2), NumInGroup equal to
   the entries present (14i -> 16; 21: zero with none is fine), then the
   values of each group entry.

Speed: most messages are valid, so ``validate`` first runs a plan compiled
once per (dictionaries, MsgType, options) that only answers "is this message
clean?" in one pass over its fields. It accepts exactly the messages the steps
above accept; anything it does not accept (a problem, or a shape it does not
handle) goes through the steps above, which find the problem QuickFIX would
report first. So the plan decides speed, never which Reject is sent.

Left to the session on purpose: BeginString (Logout "Incorrect BeginString"),
missing SenderCompID/TargetCompID before validation, a missing MsgSeqNum
(FIX answers it with a Logout, not a Reject, so step 4 skips tag 34), CompID,
SendingTime accuracy, PossDup/OrigSendingTime, sequence numbers and
SequenceReset rules, BodyLength/CheckSum (the codec), ApplVerID and
DefaultApplVerID, and BusinessMessageReject for unsupported application
messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from operator import itemgetter
from typing import Final, TypeAlias

from actors.fix import tags as T
from actors.fix.dictionary import DataDictionary, FieldDef, GroupDef, Layout, Node, group_fields
from actors.fix.message import Message


class RejectReason(IntEnum):
    """SessionRejectReason (373) values, FIX 4.2 - 5.0 SP2."""

    INVALID_TAG_NUMBER = 0
    REQUIRED_TAG_MISSING = 1
    TAG_NOT_DEFINED_FOR_MESSAGE_TYPE = 2
    UNDEFINED_TAG = 3
    TAG_SPECIFIED_WITHOUT_A_VALUE = 4
    VALUE_IS_INCORRECT = 5
    INCORRECT_DATA_FORMAT_FOR_VALUE = 6
    DECRYPTION_PROBLEM = 7
    SIGNATURE_PROBLEM = 8
    COMPID_PROBLEM = 9
    SENDING_TIME_ACCURACY_PROBLEM = 10
    INVALID_MSG_TYPE = 11
    XML_VALIDATION_ERROR = 12
    TAG_APPEARS_MORE_THAN_ONCE = 13
    TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER = 14
    REPEATING_GROUP_FIELDS_OUT_OF_ORDER = 15
    INCORRECT_NUM_IN_GROUP_COUNT = 16
    NON_DATA_VALUE_INCLUDES_FIELD_DELIMITER = 17
    INVALID_UNSUPPORTED_APPL_VERSION = 18
    OTHER = 99


__all__ = [
    "REJECT_TEXT",
    "USER_MIN_TAG",
    "RejectReason",
    "Rejection",
    "ValidationOptions",
    "is_valid_value",
    "validate",
]

R = RejectReason

#: Text (58) of a session Reject, as counterparties and the FIX session test
#: cases expect it, word for word.
REJECT_TEXT: Final[dict[RejectReason, str]] = {
    R.INVALID_TAG_NUMBER: "Invalid tag number",
    R.REQUIRED_TAG_MISSING: "Required tag missing",
    R.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE: "Tag not defined for this message type",
    R.UNDEFINED_TAG: "Undefined Tag",
    R.TAG_SPECIFIED_WITHOUT_A_VALUE: "Tag specified without a value",
    R.VALUE_IS_INCORRECT: "Value is incorrect (out of range) for this tag",
    R.INCORRECT_DATA_FORMAT_FOR_VALUE: "Incorrect data format for value",
    R.DECRYPTION_PROBLEM: "Decryption problem",
    R.SIGNATURE_PROBLEM: "Signature problem",
    R.COMPID_PROBLEM: "CompID problem",
    R.SENDING_TIME_ACCURACY_PROBLEM: "SendingTime accuracy problem",
    R.INVALID_MSG_TYPE: "Invalid MsgType",
    R.XML_VALIDATION_ERROR: "XML Validation error",
    R.TAG_APPEARS_MORE_THAN_ONCE: "Tag appears more than once",
    R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER: "Tag specified out of required order",
    R.REPEATING_GROUP_FIELDS_OUT_OF_ORDER: "Repeating group fields out of order",
    R.INCORRECT_NUM_IN_GROUP_COUNT: "Incorrect NumInGroup count for repeating group",
    R.NON_DATA_VALUE_INCLUDES_FIELD_DELIMITER: "Non Data value includes field delimiter (SOH character)",
    R.INVALID_UNSUPPORTED_APPL_VERSION: "Invalid/unsupported application version",
    R.OTHER: "Other",
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message is rejected: 373, 371 (None when no tag is known) and 58."""

    reason: RejectReason
    tag: int | None
    text: str
    #: For logs only; never sent.
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    """QuickFIX's validation switches (names in the field comments), same defaults."""

    #: ValidateFieldsOutOfOrder: reject header/body/trailer fields out of
    #: their section (FIX session test case 14g).
    check_fields_out_of_order: bool = True
    #: ValidateFieldsHaveValues: reject ``tag=`` with an empty value (14d;
    #: validate/CheckFieldsHaveValues.def runs a session with it off).
    check_fields_have_values: bool = True
    #: ValidateUserDefinedFields: check tags >= 5000 against the dictionary
    #: like any other (14a sends 5000 and expects "Invalid tag number").
    check_user_defined_fields: bool = True
    #: AllowUnknownMsgFields: accept tags < 5000 that the dictionary does not
    #: define, or does not allow in this MsgType.
    allow_unknown_message_fields: bool = False


#: FIX user-defined tags start here (QuickFIX FIELD::UserMin).
USER_MIN_TAG: Final = 5000
#: The first three fields of every FIX message, in this order.
_FIRST_THREE: Final = (T.BEGIN_STRING, T.BODY_LENGTH, T.MSG_TYPE)
#: NoHops members: the only header tags that may repeat (one per hop).
_NO_HOPS_MEMBERS: Final = frozenset({628, 629, 630})
#: Data fields by tag, for when no dictionary says which fields are data.
_DATA_TAGS: Final = frozenset(T.DATA_LENGTH_TAGS.values())
#: SOH as a byte value: ``_SOH in value`` is then a plain byte search, several
#: times faster than looking for the one-byte string ``b"\x01"``.
_SOH: Final = 0x01
_by_tag = itemgetter(0)


class _Anything:
    """A container holding every tag: no repeat can be judged without group layouts."""

    def __contains__(self, item: object) -> bool:
        return True


_ANY_TAG: Final = _Anything()
_NO_TAG: Final[frozenset[int]] = frozenset()


def _reject(reason: RejectReason, tag: int | None, detail: str) -> Rejection:
    return Rejection(reason, tag, REJECT_TEXT[reason], detail)


# ---------------------------------------------------------------- entry point


def validate(
    msg: Message,
    transport: DataDictionary | None,
    app: DataDictionary | None,
    options: ValidationOptions,
) -> Rejection | None:
    """The first reason to reject ``msg`` with a session Reject, or None.

    FIX 4.x: pass the one dictionary as both ``transport`` and ``app`` (or
    ``app`` None). FIXT.1.1: admin messages (those the transport dictionary
    defines) are checked against ``transport``, application messages against
    ``app``; header and trailer always against ``transport``. With both None
    only the checks that need no dictionary are made. Never raises.
    """
    msg_type = msg.msg_type
    section_dd, body_dd = _dictionaries(msg_type, transport, app)
    if section_dd is not None and body_dd is not None:
        plan = _plan_for(section_dd, body_dd, msg_type, options)
        if plan is not None and _passes(plan, msg.fields):
            return None
    return _first_problem(msg, section_dd, body_dd, options)


def _first_problem(
    msg: Message,
    section_dd: DataDictionary | None,
    body_dd: DataDictionary | None,
    options: ValidationOptions,
) -> Rejection | None:
    """Steps 1 to 5 of the module docstring, in that order: the Reject QuickFIX would send, or None."""
    fields = msg.fields
    header_tags = section_dd.header_tags if section_dd is not None else T.HEADER_TAGS
    trailer_tags = section_dd.trailer_tags if section_dd is not None else T.TRAILER_TAGS
    if options.check_fields_out_of_order:
        problem = _check_structure(fields, header_tags, trailer_tags)
        if problem is not None:
            return problem
    if body_dd is not None:
        problem = _check_msg_type(msg, body_dd)
        if problem is not None:
            return problem
    header, body, trailer = _split(fields, header_tags, trailer_tags)
    if section_dd is None:
        return _check_without_dictionary(header, body, trailer, options)
    return _check_with_dictionary(msg.msg_type, header, body, trailer, section_dd, body_dd, options)


def _dictionaries(
    msg_type: str, transport: DataDictionary | None, app: DataDictionary | None
) -> tuple[DataDictionary | None, DataDictionary | None]:
    """(header/trailer dictionary, body dictionary) for this MsgType.

    A FIXT transport dictionary defines only the admin messages; the rest are
    the application dictionary's, or unchecked when there is none.
    """
    if app is None and transport is not None and not transport.is_fixt:
        app = transport
    if transport is None:
        return app, app
    if msg_type in transport.msg_types:
        return transport, transport
    return transport, app


def _check_with_dictionary(
    msg_type: str,
    header: list[tuple[int, bytes]],
    body: list[tuple[int, bytes]],
    trailer: list[tuple[int, bytes]],
    section_dd: DataDictionary,
    body_dd: DataDictionary | None,
    options: ValidationOptions,
) -> Rejection | None:
    """Steps 3 to 5 of the module docstring."""
    message = body_dd.messages.get(msg_type) if body_dd is not None else None
    body_layout = message.layout if message is not None else None
    header_nodes, header_problem = group_fields(section_dd.header, header)
    trailer_nodes, trailer_problem = group_fields(section_dd.trailer, trailer)
    body_nodes: list[Node]
    body_problem: int | None = None
    if body_layout is not None:
        body_nodes, body_problem = group_fields(body_layout, body)
    else:
        body_nodes = [(tag, value, None) for tag, value in body]
    for found in (header_problem, trailer_problem, body_problem):
        if found is not None:
            return _reject(
                R.REPEATING_GROUP_FIELDS_OUT_OF_ORDER, found,
                f"tag {found} is out of place in a repeating group: an entry starts with its delimiter "
                "and holds each member once",
            )
    problem = _check_required(section_dd, header_nodes, trailer_nodes, body_layout, body_nodes)
    if problem is not None:
        return problem
    problem = _check_fields(header_nodes, section_dd, section_dd.header, False, options, _NO_TAG)
    if problem is None:
        problem = _check_fields(trailer_nodes, section_dd, section_dd.trailer, False, options, _NO_TAG)
    if problem is None:
        repeatable = _NO_TAG if body_layout is not None else _ANY_TAG
        problem = _check_fields(body_nodes, body_dd, body_layout, True, options, repeatable)
    return problem


def _check_without_dictionary(
    header: list[tuple[int, bytes]],
    body: list[tuple[int, bytes]],
    trailer: list[tuple[int, bytes]],
    options: ValidationOptions,
) -> Rejection | None:
    """Checks that hold for every FIX version: repeats, empty values, SOH, tag numbers.

    Body tags may repeat inside groups, which only a dictionary can tell apart.
    """
    for section, repeatable in ((header, _NO_HOPS_MEMBERS), (trailer, _NO_TAG), (body, _ANY_TAG)):
        nodes: list[Node] = [(tag, value, None) for tag, value in section]
        problem = _check_fields(nodes, None, None, False, options, repeatable)
        if problem is not None:
            return problem
    return None


# ---------------------------------------------------------------- steps 1-4


def _check_structure(
    fields: Sequence[tuple[int, bytes]], header_tags: Container[int], trailer_tags: Container[int]
) -> Rejection | None:
    """Header, then body, then trailer, CheckSum last (FIX session test case 14g)."""
    for index, expected in enumerate(_FIRST_THREE):
        if index >= len(fields) or fields[index][0] == expected:
            continue
        if any(tag == expected for tag, _ in fields):
            return _reject(R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, expected,
                           f"tag {expected} must be field {index + 1} of the message")
        break
    section = 0
    after_checksum = False
    for tag, _ in fields:
        if after_checksum:
            return _reject(R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, tag, f"tag {tag} follows CheckSum (10)")
        if tag in header_tags:
            if section:
                return _reject(R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, tag,
                               f"header tag {tag} follows a body or trailer field")
        elif tag in trailer_tags:
            section = 2
            after_checksum = tag == T.CHECKSUM
        elif section == 2:
            return _reject(R.TAG_SPECIFIED_OUT_OF_REQUIRED_ORDER, tag, f"body tag {tag} follows a trailer field")
        else:
            section = 1
    return None


def _check_msg_type(msg: Message, dd: DataDictionary) -> Rejection | None:
    """MsgType must be one the dictionary defines (FIX session test case 2q)."""
    if not msg.has(T.MSG_TYPE):
        return _reject(R.REQUIRED_TAG_MISSING, T.MSG_TYPE, "MsgType (35) is missing")
    msg_type = msg.msg_type
    if msg_type not in dd.msg_types:
        return _reject(R.INVALID_MSG_TYPE, None, f"MsgType {msg_type!r} is not defined in {dd.source}")
    return None


def _split(
    fields: Sequence[tuple[int, bytes]], header_tags: Container[int], trailer_tags: Container[int]
) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    """Header, body and trailer fields, each in wire order; a tag's section decides, not its place."""
    header: list[tuple[int, bytes]] = []
    body: list[tuple[int, bytes]] = []
    trailer: list[tuple[int, bytes]] = []
    for item in fields:
        tag = item[0]
        if tag in header_tags:
            header.append(item)
        elif tag in trailer_tags:
            trailer.append(item)
        else:
            body.append(item)
    return header, body, trailer


def _check_required(
    section_dd: DataDictionary,
    header_nodes: list[Node],
    trailer_nodes: list[Node],
    body_layout: Layout | None,
    body_nodes: list[Node],
) -> Rejection | None:
    """Required fields: header, trailer, body (ascending tag), then group entries (14b)."""
    present = {node[0] for node in header_nodes}
    for tag in section_dd.header.required:
        if tag not in present and tag != T.MSG_SEQ_NUM:
            return _missing(tag, "header")
    present = {node[0] for node in trailer_nodes}
    for tag in section_dd.trailer.required:
        if tag not in present:
            return _missing(tag, "trailer")
    if body_layout is None:
        return None
    return _check_required_level(body_layout, body_nodes, "body")


def _check_required_level(layout: Layout, nodes: list[Node], where: str) -> Rejection | None:
    present = {node[0] for node in nodes}
    for tag in layout.required:
        if tag not in present:
            return _missing(tag, where)
    for tag, _, entries in nodes:
        if entries is None:
            continue
        group = layout.groups[tag]
        for number, entry in enumerate(entries, 1):
            problem = _check_required_level(group.layout, entry, f"entry {number} of group {tag}")
            if problem is not None:
                return problem
    return None


def _missing(tag: int, where: str) -> Rejection:
    return _reject(R.REQUIRED_TAG_MISSING, tag, f"required tag {tag} is missing from the {where}")


# ---------------------------------------------------------------- step 5


def _check_fields(
    nodes: list[Node],
    dd: DataDictionary | None,
    layout: Layout | None,
    is_body: bool,
    options: ValidationOptions,
    repeatable: Container[int],
) -> Rejection | None:
    """Per-field checks in ascending tag order, as QuickFIX iterates its sorted field maps."""
    known = dd.fields if dd is not None else None
    allowed = layout.tags if is_body and layout is not None else None
    previous: int | None = None
    for tag, value, entries in sorted(nodes, key=_by_tag):
        if tag == previous and tag not in repeatable:
            return _reject(R.TAG_APPEARS_MORE_THAN_ONCE, tag, f"tag {tag} appears more than once")
        previous = tag
        definition = known.get(tag) if known is not None else None
        problem = _check_value(tag, value, definition, options)
        if problem is not None:
            return problem
        if tag <= 0:
            return _reject(R.INVALID_TAG_NUMBER, tag, f"tag {tag} is not a positive number")
        if dd is not None and _should_check_tag(tag, options):
            if definition is None:
                return _reject(R.INVALID_TAG_NUMBER, tag, f"tag {tag} is not defined in {dd.source}")
            if allowed is not None and tag not in allowed:
                return _reject(R.TAG_NOT_DEFINED_FOR_MESSAGE_TYPE, tag,
                               f"tag {tag} ({definition.name}) is not defined for this message type")
        if entries is not None and dd is not None and layout is not None:
            problem = _check_group(tag, value, entries, dd.fields, layout, options)
            if problem is not None:
                return problem
    return None


def _should_check_tag(tag: int, options: ValidationOptions) -> bool:
    """QuickFIX ``shouldCheckTag``: the AllowUnknownMsgFields / ValidateUserDefinedFields switches."""
    if tag >= USER_MIN_TAG:
        return options.check_user_defined_fields
    return not options.allow_unknown_message_fields


def _check_value(tag: int, value: bytes, definition: FieldDef | None, options: ValidationOptions) -> Rejection | None:
    """Empty value (14d), SOH in a non-data value, format (14f), enumeration (14e)."""
    if not value:
        if options.check_fields_have_values:
            return _reject(R.TAG_SPECIFIED_WITHOUT_A_VALUE, tag, f"tag {tag} has an empty value")
        return None
    if definition is None:
        if _SOH in value and tag not in _DATA_TAGS:
            return _soh_in_value(tag)
        return None
    if _SOH in value and not definition.is_data:
        return _soh_in_value(tag)
    is_valid = _SYNTAX_CHECKS.get(definition.syntax)
    if is_valid is not None and not is_valid(value):
        return _reject(R.INCORRECT_DATA_FORMAT_FOR_VALUE, tag,
                       f"tag {tag} ({definition.name}) value {value!r} is not a valid {definition.type}")
    enums = definition.enums
    if enums and tag != T.MSG_TYPE and not _is_enumerated(value, enums, definition.is_multi_value):
        return _reject(R.VALUE_IS_INCORRECT, tag,
                       f"tag {tag} ({definition.name}) value {value!r} is not one of its enumerated values")
    return None


def _soh_in_value(tag: int) -> Rejection:
    return _reject(R.NON_DATA_VALUE_INCLUDES_FIELD_DELIMITER, tag, f"tag {tag} is not a data field but holds SOH")


def _is_enumerated(value: bytes, enums: frozenset[bytes], multi: bool) -> bool:
    """Every space-separated value for the MultipleValueString family, else the whole value."""
    if not multi:
        return value in enums
    return all(item in enums for item in value.split(b" "))


def _check_group(
    tag: int,
    value: bytes,
    entries: list[list[Node]],
    known: Mapping[int, FieldDef],
    layout: Layout,
    options: ValidationOptions,
) -> Rejection | None:
    """NumInGroup must equal the entries present (14i, 21), then each entry's fields."""
    count = _as_int(value)
    if count != len(entries):
        return _reject(R.INCORRECT_NUM_IN_GROUP_COUNT, tag,
                       f"NumInGroup {tag} is {value!r} but {len(entries)} entries follow")
    group_layout = layout.groups[tag].layout
    for entry in entries:
        for member, member_value, member_entries in entry:
            problem = _check_value(member, member_value, known.get(member), options)
            if problem is None and member_entries is not None:
                problem = _check_group(member, member_value, member_entries, known, group_layout, options)
            if problem is not None:
                return problem
    return None


def _as_int(value: bytes) -> int | None:
    if len(value) > T.MAX_INT_DIGITS + 1:
        return None  # hostile, not a count: an int() of it could take seconds or raise
    if value.isdigit():
        return int(value)
    if value[:1] == b"-" and value[1:].isdigit():
        return -int(value[1:])
    return None


# ---------------------------------------------------------------- value syntax
#
# One predicate per FIX data type, over the raw bytes. bytes.isdigit() and the
# bytes regexes below accept ASCII digits only, as FIX requires.


def _is_unsigned(value: bytes) -> bool:
    """Length, NumInGroup, SeqNum, TagNum, DayOfMonth: digits only."""
    return value.isdigit()


def _is_int(value: bytes) -> bool:
    """int: digits with an optional leading '-'; no '+' (FIX Vol. 1 data types)."""
    return value.isdigit() or (value[:1] == b"-" and value[1:].isdigit())


def _is_float(value: bytes) -> bool:
    """float family: optional '-', digits, at most one '.', no '+' or exponent (14f: 38=+200.00)."""
    if value[:1] == b"-":
        value = value[1:]
    whole, dot, fraction = value.partition(b".")
    if not dot:
        return whole.isdigit()
    if not whole and not fraction:
        return False
    return (not whole or whole.isdigit()) and (not fraction or fraction.isdigit())


def _is_char(value: bytes) -> bool:
    return len(value) == 1


def _is_boolean(value: bytes) -> bool:
    return value == b"Y" or value == b"N"


def _is_multiple_char(value: bytes) -> bool:
    return all(len(item) == 1 for item in value.split(b" "))


_DAYS_IN_MONTH: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_date(year: int, month: int, day: int) -> bool:
    if not 1 <= month <= 12 or day < 1:
        return False
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return day <= 29
    return day <= _DAYS_IN_MONTH[month - 1]


def _is_time(hour: int, minute: int, second: int) -> bool:
    """Seconds may be 60 for a leap second (FIX UTCTimestamp)."""
    return hour <= 23 and minute <= 59 and second <= 60


_FRACTION: Final = rb"(?:\.(?:\d{3}|\d{6}|\d{9}))?"
_TIMESTAMP_RE: Final = re.compile(rb"(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2}):(\d{2})" + _FRACTION)
_TIME_RE: Final = re.compile(rb"(\d{2}):(\d{2}):(\d{2})" + _FRACTION)
_DATE_RE: Final = re.compile(rb"(\d{4})(\d{2})(\d{2})")
_MONTH_YEAR_RE: Final = re.compile(rb"(\d{4})(\d{2})(?:(\d{2})|w[1-5])?")


def _is_utc_timestamp(value: bytes) -> bool:
    """YYYYMMDD-HH:MM:SS[.sss[sss[sss]]] (RejectResentMessage: 126=20040415 is rejected)."""
    match = _TIMESTAMP_RE.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    return _is_date(year, month, day) and _is_time(hour, minute, second)


def _is_utc_time_only(value: bytes) -> bool:
    """HH:MM:SS[.sss[sss[sss]]]."""
    match = _TIME_RE.fullmatch(value)
    if match is None:
        return False
    hour, minute, second = (int(part) for part in match.groups())
    return _is_time(hour, minute, second)


def _is_utc_date(value: bytes) -> bool:
    """UTCDateOnly, UTCDate, LocalMktDate: YYYYMMDD."""
    match = _DATE_RE.fullmatch(value)
    if match is None:
        return False
    year, month, day = (int(part) for part in match.groups())
    return _is_date(year, month, day)


def _is_month_year(value: bytes) -> bool:
    """MonthYear: YYYYMM, YYYYMMDD or YYYYMMwN (week 1-5)."""
    match = _MONTH_YEAR_RE.fullmatch(value)
    if match is None:
        return False
    year, month, day = match.groups()
    if day is not None:
        return _is_date(int(year), int(month), int(day))
    return 1 <= int(month) <= 12


#: Syntax checks by dictionary type (``FieldDef.syntax``). Types not listed
#: (STRING, CURRENCY, EXCHANGE, COUNTRY, LANGUAGE, DATA, XMLDATA, the TZ and
#: LocalMkt time types, the FIX 4.0 DATE, MultipleValueString and
#: MultipleStringValue) accept any non-empty value; enumerations still apply.
_SYNTAX_CHECKS: Final[dict[str, Callable[[bytes], bool]]] = {
    "INT": _is_int,
    "LENGTH": _is_unsigned,
    "NUMINGROUP": _is_unsigned,
    "SEQNUM": _is_unsigned,
    "TAGNUM": _is_unsigned,
    "DAYOFMONTH": _is_unsigned,
    "FLOAT": _is_float,
    "QTY": _is_float,
    "PRICE": _is_float,
    "PRICEOFFSET": _is_float,
    "AMT": _is_float,
    "PERCENTAGE": _is_float,
    "CHAR": _is_char,
    "BOOLEAN": _is_boolean,
    "MULTIPLECHARVALUE": _is_multiple_char,
    "UTCTIMESTAMP": _is_utc_timestamp,
    "UTCTIMEONLY": _is_utc_time_only,
    "UTCDATEONLY": _is_utc_date,
    "UTCDATE": _is_utc_date,
    "LOCALMKTDATE": _is_utc_date,
    "MONTHYEAR": _is_month_year,
}


def is_valid_value(type_name: str, value: bytes) -> bool:
    """Whether ``value`` follows the syntax of the dictionary type ``type_name``."""
    check = _SYNTAX_CHECKS.get(type_name.upper())
    return check is None or check(value)


# ---------------------------------------------------------------- fast value checks
#
# Equivalents of the reference checks above for the per-message plan: single
# C-level calls where possible, plain byte operations, or the reference with a
# memory of the values it accepted. Each one accepts exactly the values its
# reference accepts (tests/unit/test_validation.py compares them on many
# values); none accepts an empty value or one holding SOH.

_INT_RE: Final = re.compile(rb"-?[0-9]+")


def _is_float_fast(value: bytes) -> bool:
    """``_is_float``: past an optional '-', digits with at most one '.' somewhere among them."""
    if value[:1] == b"-":
        value = value[1:]
    return value.replace(b".", b"", 1).isdigit()


#: ``YYYYMMDD-HH:MM:SS``: the part of a UTCTimestamp before its optional fraction.
_WHOLE_SECONDS_LENGTH: Final = 17
#: Lengths with a fraction of 3, 6 or 9 digits after the '.'.
_FRACTION_LENGTHS: Final = (21, 24, 27)
_DOT: Final = ord(".")
#: Whole-second parts of UTCTimestamps found valid; emptied when it reaches the limit below.
_valid_seconds: Final[set[bytes]] = set()
_VALID_SECONDS_KEPT: Final = 4096


def _is_utc_timestamp_cached(value: bytes) -> bool:
    """``_is_utc_timestamp``, remembering the valid ``YYYYMMDD-HH:MM:SS`` parts it has seen.

    SendingTime and TransactTime of a stream of messages share their second,
    so most values need only their fraction checked; the full parse (about
    1.5 us) runs about once a second.
    """
    if value[:_WHOLE_SECONDS_LENGTH] in _valid_seconds:
        length = len(value)
        return length == _WHOLE_SECONDS_LENGTH or (
            length in _FRACTION_LENGTHS and value[_WHOLE_SECONDS_LENGTH] == _DOT
            and value[_WHOLE_SECONDS_LENGTH + 1:].isdigit()
        )
    if not _is_utc_timestamp(value):
        return False
    if len(_valid_seconds) >= _VALID_SECONDS_KEPT:
        _valid_seconds.clear()
    _valid_seconds.add(value[:_WHOLE_SECONDS_LENGTH])
    return True


def _remembering(check: Callable[[bytes], bool], kept: int = 256) -> Callable[[bytes], bool]:
    """``check``, remembering the values it accepted: for the date types, whose values repeat all day."""
    accepted: set[bytes] = set()

    def remembered(value: bytes) -> bool:
        if value in accepted:
            return True
        if not check(value):
            return False
        if len(accepted) >= kept:
            accepted.clear()
        accepted.add(value)
        return True

    return remembered


_is_utc_date_remembered: Final = _remembering(_is_utc_date)

#: Truthy when a value is acceptable. Every such check fails an empty value.
_Check: TypeAlias = Callable[[bytes], object]

#: Fast equivalents by dictionary type, for types whose values never hold SOH
#: and that are common enough to matter; the other types use the reference.
_FAST_SYNTAX_CHECKS: Final[dict[str, _Check]] = {
    "INT": _INT_RE.fullmatch,
    "LENGTH": bytes.isdigit,
    "NUMINGROUP": bytes.isdigit,
    "SEQNUM": bytes.isdigit,
    "TAGNUM": bytes.isdigit,
    "DAYOFMONTH": bytes.isdigit,
    "FLOAT": _is_float_fast,
    "QTY": _is_float_fast,
    "PRICE": _is_float_fast,
    "PRICEOFFSET": _is_float_fast,
    "AMT": _is_float_fast,
    "PERCENTAGE": _is_float_fast,
    "UTCTIMESTAMP": _is_utc_timestamp_cached,
    "UTCDATEONLY": _is_utc_date_remembered,
    "UTCDATE": _is_utc_date_remembered,
    "LOCALMKTDATE": _is_utc_date_remembered,
    "MONTHYEAR": _remembering(_is_month_year),
}


# ---------------------------------------------------------------- the compiled plan
#
# A plan answers one question fast: would steps 1-5 find nothing wrong? It
# says yes only when they would find nothing; it says no to every problem and
# to the shapes it does not handle (no dictionary, FIXT without an
# application dictionary, groups with ValidateFieldsOutOfOrder off, fields it
# has no entry for), and then the steps run and give the exact answer.

#: Section codes. With ValidateFieldsOutOfOrder a field's code may not be
#: lower than the code of the field before it (step 1); without, all are 0.
_HEADER: Final = 0
_BODY: Final = 1
_TRAILER: Final = 2
#: The code of a NumInGroup field: lower than any section, so the one-pass
#: loop stops there and hands the message to the group-aware loop.
_GROUP: Final = -1

#: (section code, value check); a check of None means any text without SOH,
#: tested inline because it is the most common type.
_Spec: TypeAlias = "tuple[int, _Check | None]"
#: Options whose checks are made on non-empty values only; the result does
#: not depend on options for those.
_STRICT: Final = ValidationOptions()


@dataclass(frozen=True, slots=True, eq=False)
class _GroupPlan:
    """One repeating group as the plan reads it: ``_read_entries`` plus the checks of each entry."""

    delimiter: int
    #: Member tag -> its value check.
    checks: dict[int, _Check | None]
    nested: dict[int, _GroupPlan]
    #: Members each entry must hold (step 4).
    required: frozenset[int]


@dataclass(frozen=True, slots=True, eq=False)
class _Plan:
    """What a clean message of one MsgType looks like, for given dictionaries and options."""

    #: Every tag that may appear at the top level of a clean message.
    specs: dict[int, _Spec]
    #: Top-level tags a clean message holds: required header, trailer and body tags, and MsgType.
    required: frozenset[int]
    #: NumInGroup tag -> (section code, group) for the groups the group-aware loop reads.
    groups: dict[int, tuple[int, _GroupPlan]]


def _acceptable(check: _Check | None, value: bytes) -> bool:
    """A plan's value check; None stands for any non-empty text without SOH, the most common type."""
    if check is None:
        return bool(value) and _SOH not in value
    return bool(check(value))


def _passes(plan: _Plan, fields: Sequence[tuple[int, bytes]]) -> bool:
    """True only if steps 1-5 find nothing wrong with a message of the plan's MsgType.

    One pass over the fields: each is a tag the plan knows, in section order,
    with an acceptable value; then no tag twice and every required tag there.
    The first NumInGroup field hands the rest of the message to ``_rest_passes``.
    """
    if (len(fields) < 4 or fields[0][0] != T.BEGIN_STRING or fields[1][0] != T.BODY_LENGTH
            or fields[2][0] != T.MSG_TYPE or fields[-1][0] != T.CHECKSUM):
        return False
    specs = plan.specs
    section = _HEADER
    for tag, value in fields:
        spec = specs.get(tag)
        if spec is None:
            return False
        where, check = spec
        if where < section:
            if where != _GROUP:
                return False
            # This loop stops at the first NumInGroup field it meets, so the
            # first field equal to it is this one (cheaper than counting).
            return _rest_passes(plan, fields, fields.index((tag, value)), section)
        section = where
        if not _acceptable(check, value):
            return False
    tags = set(map(_by_tag, fields))
    return len(tags) == len(fields) and plan.required <= tags


def _rest_passes(plan: _Plan, fields: Sequence[tuple[int, bytes]], i: int, section: int) -> bool:
    """``_passes`` from ``fields[i]``, a NumInGroup field, on; the fields before it passed and hold no group.

    Group entries are read as ``group_fields`` does. Only used with
    ValidateFieldsOutOfOrder (``plan.groups`` is empty without), so that each
    section is one run of fields and reading them in wire order is reading
    ``_split``'s sections.
    """
    specs = plan.specs
    groups = plan.groups
    top = list(map(_by_tag, fields[:i]))
    n = len(fields)
    while i < n:
        tag, value = fields[i]
        i += 1
        spec = specs.get(tag)
        if spec is None:
            return False
        where, check = spec
        if not _acceptable(check, value):
            return False
        top.append(tag)
        if where == _GROUP:
            found = groups.get(tag)
            if found is None:
                return False
            where, group = found
            i = _entries_pass(group, value, fields, i)
            if i < 0:
                return False
        if where < section:
            return False
        section = where
    tags = set(top)
    return len(tags) == len(top) and plan.required <= tags


def _entries_pass(group: _GroupPlan, count: bytes, fields: Sequence[tuple[int, bytes]], i: int) -> int:
    """Read ``group``'s entries from ``fields[i:]`` as ``_read_entries`` does; -1 if anything is wrong.

    Wrong: an entry not starting with the delimiter or holding a member
    twice, a member value, a required member missing from an entry, or a
    NumInGroup ``count`` (this one or a nested one) that is not the number of
    entries. Otherwise the index of the first field after the group.
    """
    checks = group.checks
    nested = group.nested
    required = group.required
    delimiter = group.delimiter
    entries = 0
    seen: set[int] = set()
    n = len(fields)
    while i < n:
        tag, value = fields[i]
        if tag == delimiter:
            if entries and not required <= seen:
                return -1
            seen = set()
            entries += 1
        elif tag not in checks:
            break
        elif not entries or tag in seen:
            return -1
        i += 1
        seen.add(tag)
        if not _acceptable(checks[tag], value):
            return -1
        sub = nested.get(tag)
        if sub is not None:
            i = _entries_pass(sub, value, fields, i)
            if i < 0:
                return -1
    if entries and not required <= seen:
        return -1
    return i if _as_int(count) == entries else -1


# -- compiling


def _plan_for(
    section_dd: DataDictionary, body_dd: DataDictionary, msg_type: str, options: ValidationOptions
) -> _Plan | None:
    """The plan for this MsgType, compiled on first use and kept in the header dictionary's ``derived``.

    None when there is none: an undefined MsgType (step 2 rejects it; not
    kept, since the peer chooses MsgType values) or a dictionary whose
    required tags no message can hold in their sections.
    """
    key = (body_dd, msg_type, options)
    derived = section_dd.derived
    try:
        plan: _Plan | None = derived[key]
    except KeyError:
        message = body_dd.messages.get(msg_type)
        if message is None:
            return None
        plan = _compile_plan(section_dd, body_dd, message.layout, options)
        derived[key] = plan
    return plan


def _compile_plan(
    section_dd: DataDictionary, body_dd: DataDictionary, layout: Layout, options: ValidationOptions
) -> _Plan | None:
    """The plan of the MsgType whose body is ``layout``; None if no message of it can be clean."""
    header_tags = section_dd.header_tags
    trailer_tags = section_dd.trailer_tags

    def section_of(tag: int) -> int:
        """The section ``_split`` puts ``tag`` in."""
        return _HEADER if tag in header_tags else _TRAILER if tag in trailer_tags else _BODY

    trailer_required = frozenset(section_dd.trailer.required)
    body_required = frozenset(layout.required)
    if any(section_of(tag) != _TRAILER for tag in trailer_required) or any(
        section_of(tag) != _BODY for tag in body_required
    ):
        return None
    header_required = frozenset(section_dd.header.required) - {T.MSG_SEQ_NUM}
    specs: dict[int, _Spec] = {}
    groups: dict[int, tuple[int, _GroupPlan]] = {}
    for section, dd, level in ((_HEADER, section_dd, section_dd.header), (_TRAILER, section_dd, section_dd.trailer),
                               (_BODY, body_dd, layout)):
        for tag in dd.fields:
            if tag <= 0 or section_of(tag) != section:
                continue
            if section == _BODY and tag not in layout.tags and _should_check_tag(tag, options):
                continue
            where = section if options.check_fields_out_of_order else _HEADER
            group = level.groups.get(tag)
            if group is None:
                specs[tag] = (where, _check_for(dd, tag))
                continue
            specs[tag] = (_GROUP, _check_for(dd, tag))
            if options.check_fields_out_of_order and all(section_of(t) == section for t in group.layout.all_tags):
                groups[tag] = (where, _compile_group(dd, group))
    return _Plan(specs, header_required | trailer_required | body_required | {T.MSG_TYPE}, groups)


def _compile_group(dd: DataDictionary, group: GroupDef) -> _GroupPlan:
    layout = group.layout
    return _GroupPlan(
        delimiter=group.delimiter,
        checks={tag: _check_for(dd, tag) for tag in layout.order},
        nested={tag: _compile_group(dd, sub) for tag, sub in layout.groups.items()},
        required=frozenset(layout.required),
    )


#: Key of the value checks in ``DataDictionary.derived``.
_CHECKS_KEY: Final = "validation: value checks by tag"


def _check_for(dd: DataDictionary, tag: int) -> _Check | None:
    """The value check of ``tag`` in ``dd``, made once per dictionary and tag."""
    checks: dict[int, _Check | None] = dd.derived.setdefault(_CHECKS_KEY, {})
    if tag not in checks:
        checks[tag] = _compile_check(tag, dd.fields.get(tag))
    return checks[tag]


def _compile_check(tag: int, definition: FieldDef | None) -> _Check | None:
    """A check accepting exactly the non-empty values ``_check_value`` accepts.

    Enumerated fields become a set lookup (the enumerated values that pass
    the type's syntax); common types their fast check; the rest the
    reference itself. None: any text without SOH (the STRING family).
    """
    exact = partial(_is_accepted, tag, definition)
    if definition is None:
        return exact
    enums = definition.enums if tag != T.MSG_TYPE else _NO_ENUMS
    if enums:
        if definition.is_multi_value:
            return exact
        return frozenset(filter(exact, enums)).__contains__
    fast = _FAST_SYNTAX_CHECKS.get(definition.syntax)
    if fast is not None:
        return fast
    if definition.syntax in _SYNTAX_CHECKS:
        return exact
    return len if definition.is_data else None


_NO_ENUMS: Final[frozenset[bytes]] = frozenset()


def _is_accepted(tag: int, definition: FieldDef | None, value: bytes) -> bool:
    """The reference for a plan's value check: a non-empty value ``_check_value`` has nothing against."""
    return bool(value) and _check_value(tag, value, definition, _STRICT) is None
