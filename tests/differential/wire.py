"""Bytes for the differential test: render a scenario's message, frame replies, compare two transcripts.

Pure: no sockets and no clock (the time placeholders are filled from a
moment the caller passes). What the comparison normalises, and why:

* BodyLength (9) and CheckSum (10) are not compared as values (they follow
  from the other fields and SendingTime's length); each is replaced by
  ``ok`` or ``wrong: <value>`` after checking it against the bytes.
* SendingTime (52) and OrigSendingTime (122) are stamped by each engine with
  its own clock; only their shape is compared (digits shown as ``n``), so
  the timestamp precision still counts.
* Everything else is compared as it is, Text (58) included: fixmesh answers
  with QuickFIX's words because the acceptance scripts compare 58 byte for
  byte, so different words are a difference (the allowlist says which ones
  are meant).

A transcript is the list of what the client saw, in order: messages, the
acceptor closing the connection, a bounded wait that ended with nothing
(a Sync without its Heartbeat, an ExpectClose with the connection still
open), a step that found the connection closed. Two transcripts are
compared event by event; two messages of the same MsgType field by field.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from tests.differential import ACCEPTOR_COMP_ID, Version
from tests.differential.scenarios import Field, Send, expand

SOH = b"\x01"
TIME_TAGS = frozenset({"52", "122"})
_PLACEHOLDER = re.compile(r"<NOW([+-]\d+)?>|<SEQ>|<INF>|<APPLVERID>")


@dataclass(frozen=True)
class Context:
    """What the placeholders are filled from; the same for both acceptors in one test."""

    version: Version
    comp_id: str
    base: datetime


def format_time(moment: datetime, version: Version) -> str:
    """UTCTimestamp as the version writes it: seconds before FIX.4.2, milliseconds from then on."""
    text = moment.strftime("%Y%m%d-%H:%M:%S")
    return text if version.rank < 42 else f"{text}.{moment.microsecond // 1000:03d}"


def fill(value: str, context: Context, seq: int) -> str:
    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith("<NOW"):
            offset_s = int(match.group(1) or 0)
            return format_time(context.base + timedelta(seconds=offset_s), context.version)
        if token == "<SEQ>":
            return str(seq)
        if token == "<INF>":
            return "0" if context.version.rank >= 42 else "999999"
        return context.version.appl_ver_id or ""

    return _PLACEHOLDER.sub(one, value)


def render(send: Send, context: Context, seq: int) -> bytes:
    """The message a ``Send`` step puts on the wire, with MsgSeqNum ``seq``."""
    version = context.version
    standard: list[tuple[int, str | None]] = [
        (35, send.msg_type), (34, "<SEQ>"), (49, context.comp_id), (52, "<NOW>"), (56, ACCEPTOR_COMP_ID),
    ]
    begin_string = version.begin_string
    replaced = dict(send.replace)
    if 8 in replaced:
        begin_string = replaced.pop(8) or ""
    fields: list[Field] = []
    for tag, value in standard:
        if tag in replaced:
            value = replaced[tag]
        if value is not None:
            fields.append((tag, value))
    fields += expand(send.header, version)
    fields += [item for item in expand(send.body, version) if item[0] not in send.drop]
    fields += list(send.after_body)
    body = b"".join(f"{tag}={fill(value, context, seq)}".encode("latin-1") + SOH for tag, value in fields)
    length = send.body_length if send.body_length is not None else str(len(body))
    head = f"8={begin_string}".encode("latin-1") + SOH + f"9={length}".encode("latin-1") + SOH
    checksum = send.checksum if send.checksum is not None else f"{sum(head + body) % 256:03d}"
    return head + body + f"10={checksum}".encode("latin-1") + SOH


# ------------------------------------------------------------------ framing


def take_message(buffer: bytearray) -> bytes | None:
    """Remove and return the first complete message in ``buffer``, or None while it is incomplete.

    BodyLength says where CheckSum starts; when it is wrong (an engine bug
    the comparison should show, not choke on) the next ``SOH 10=`` ends the
    message instead. Bytes before ``8=`` are kept with the message.
    """
    length_at = buffer.find(b"\x019=")
    if length_at < 0:
        return None
    length_end = buffer.find(SOH, length_at + 3)
    if length_end < 0:
        return None
    digits = bytes(buffer[length_at + 3:length_end])
    body_start = length_end + 1
    end = -1
    if digits.isdigit():
        trailer = body_start + int(digits)
        if buffer[trailer:trailer + 3] == b"10=":
            end = buffer.find(SOH, trailer)
            if end < 0:
                return None
        elif len(buffer) < trailer + 3:
            return None
    if end < 0:
        trailer = buffer.find(b"\x0110=", body_start - 1)
        if trailer < 0:
            return None
        end = buffer.find(SOH, trailer + 4)
        if end < 0:
            return None
    message = bytes(buffer[:end + 1])
    del buffer[:end + 1]
    return message


def fields_of(data: bytes) -> list[tuple[str, str]]:
    """``tag=value`` pairs in order; a piece without ``=`` keeps its text as the tag and an empty value."""
    pairs = []
    for piece in data.split(SOH):
        if piece:
            tag, _, value = piece.decode("latin-1").partition("=")
            pairs.append((tag, value))
    return pairs


# --------------------------------------------------------------- transcripts


class Kind(Enum):
    MESSAGE = "message"
    CLOSED = "closed by the acceptor"
    STILL_OPEN = "still open (no disconnect within the wait)"
    NO_REPLY = "nothing more within the wait"
    UNSENT = "step not played: connection already closed"
    REFUSED = "connect refused"


@dataclass(frozen=True)
class Event:
    kind: Kind
    step: int
    data: bytes = b""

    def show(self) -> str:
        if self.kind is Kind.MESSAGE:
            return self.data.replace(SOH, b"|").decode("latin-1")
        return f"<{self.kind.value}>"


@dataclass(frozen=True)
class Normalised:
    kind: Kind
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def msg_type(self) -> str:
        return next((value for tag, value in self.fields if tag == "35"), "?")

    def label(self) -> str:
        return f"35={self.msg_type}" if self.kind is Kind.MESSAGE else f"<{self.kind.value}>"


def normalise(event: Event) -> Normalised:
    if event.kind is not Kind.MESSAGE:
        return Normalised(event.kind)
    data = event.data
    pairs = fields_of(data)
    out: list[tuple[str, str]] = []
    for tag, value in pairs:
        if tag == "9":
            out.append((tag, _check_length(data, value)))
        elif tag == "10":
            out.append((tag, _check_sum(data, value)))
        elif tag in TIME_TAGS:
            out.append((tag, re.sub(r"\d", "n", value)))
        else:
            out.append((tag, value))
    return Normalised(Kind.MESSAGE, tuple(out))


def _check_length(data: bytes, value: str) -> str:
    start = data.find(b"\x019=")
    body_start = data.find(SOH, start + 1) + 1
    trailer = data.rfind(b"\x0110=")
    actual = trailer + 1 - body_start
    return "ok" if value.isdigit() and int(value) == actual else f"wrong: {value} for {actual} bytes"


def _check_sum(data: bytes, value: str) -> str:
    trailer = data.rfind(b"\x0110=")
    actual = f"{sum(data[:trailer + 1]) % 256:03d}"
    return "ok" if value == actual else f"wrong: {value}, not {actual}"


@dataclass(frozen=True)
class Difference:
    """One difference: ``key`` is a tag, ``event`` (kind or MsgType), ``order`` (same fields, other order)."""

    index: int
    label: str
    key: str
    quickfix: str
    fixmesh: str

    def describe(self) -> str:
        where = f"#{self.index} {self.label}"
        if self.key in ("event", "order"):
            return f"{where} {self.key}: QuickFIX {self.quickfix} / fixmesh {self.fixmesh}"
        return f"{where} tag {self.key}: QuickFIX {self.quickfix} / fixmesh {self.fixmesh}"


@dataclass
class Comparison:
    quickfix: list[Normalised]
    fixmesh: list[Normalised]
    differences: list[Difference] = field(default_factory=list)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(d.key for d in self.differences)


def compare(quickfix: list[Event], fixmesh: list[Event]) -> Comparison:
    """Event by event; for two messages of one MsgType, tag by tag (repeated tags as lists, in order)."""
    qf = [normalise(e) for e in quickfix]
    fm = [normalise(e) for e in fixmesh]
    result = Comparison(qf, fm)
    for index in range(max(len(qf), len(fm))):
        a = qf[index] if index < len(qf) else None
        b = fm[index] if index < len(fm) else None
        if a is None or b is None or a.kind is not b.kind or a.msg_type != b.msg_type:
            present = a if a is not None else b
            label = present.label() if present is not None else "?"
            result.differences.append(Difference(index, label, "event", _summary(a), _summary(b)))
            continue
        result.differences.extend(_field_differences(index, a, b))
    return result


def _summary(item: Normalised | None) -> str:
    if item is None:
        return "(nothing)"
    if item.kind is not Kind.MESSAGE:
        return item.label()
    return "|".join(f"{tag}={value}" for tag, value in item.fields if tag not in ("9", "10"))


def _field_differences(index: int, a: Normalised, b: Normalised) -> list[Difference]:
    if a.fields == b.fields:
        return []
    label = a.label()
    if Counter(a.fields) == Counter(b.fields):
        order_a = " ".join(tag for tag, _ in a.fields)
        order_b = " ".join(tag for tag, _ in b.fields)
        return [Difference(index, label, "order", order_a, order_b)]
    values_a: dict[str, list[str]] = {}
    values_b: dict[str, list[str]] = {}
    for tag, value in a.fields:
        values_a.setdefault(tag, []).append(value)
    for tag, value in b.fields:
        values_b.setdefault(tag, []).append(value)
    out = []
    for tag in sorted(values_a.keys() | values_b.keys(), key=_tag_order):
        va, vb = values_a.get(tag), values_b.get(tag)
        if va != vb:
            out.append(Difference(index, label, tag, _values(va), _values(vb)))
    return out


def _tag_order(tag: str) -> tuple[int, str]:
    return (int(tag), "") if tag.isdigit() else (1 << 30, tag)


def _values(values: list[str] | None) -> str:
    if values is None:
        return "(absent)"
    return " ".join(repr(v) for v in values)
