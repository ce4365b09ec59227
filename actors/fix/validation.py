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
from operator import itemgetter
from typing import Final

from actors.fix import tags as T
from actors.fix.dictionary import DataDictionary, FieldDef, Layout, Node, group_fields
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
_SOH: Final = b"\x01"
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
    section_dd, body_dd = _dictionaries(msg.msg_type, transport, app)
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
