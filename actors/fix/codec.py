"""Wire codec: framing a byte stream into FIX messages, parsing, encoding.

Framing follows the rule every mainstream engine uses, so that garbled input
is handled the way counterparties expect (FIX session test cases 2d, 2m, 3b,
3c): skip to ``8=``, read BodyLength, look for the ``<SOH>10=`` trailer from
the declared end of the body onwards, then check BodyLength and CheckSum. A
frame that fails either check is reported as garbled and dropped by the
session: no reply, no sequence number consumed. A too-long BodyLength may
swallow the next message; that too is what the FIX spec's "ignore garbled
messages" means in practice.

The codec is its own module (not simplefix) because the session needs the
exact byte values, their order and repeats for validation, and the framing
rule above; ``docs/codec.md`` records the measurement against simplefix.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.fix import tags as T
from actors.fix.message import Message

_SOH = 1
_CHECKSUM_MARK = b"\x0110="
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20


class GarbledMessage(ValueError):
    """The frame is not a well-formed FIX message; the session ignores it."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One candidate message cut from the stream.

    ``error`` is None for a frame whose BodyLength and CheckSum are right.
    """

    data: bytes
    error: str | None


def checksum(data: bytes | bytearray | memoryview) -> int:
    return sum(data) & 0xFF


class Framer:
    """Cuts a TCP byte stream into frames; keeps any incomplete tail."""

    __slots__ = ("_buf", "_max")

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_message_bytes

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def clear(self) -> None:
        self._buf.clear()

    def next_frame(self) -> Frame | None:
        """The next complete frame, a garbage report, or None if more bytes are needed."""
        buf = self._buf
        while True:
            start = buf.find(b"8=")
            if start < 0:
                # Keep a trailing '8' that may be the start of the next message.
                if buf:
                    keep = 1 if buf[-1:] == b"8" else 0
                    dropped = len(buf) - keep
                    del buf[: len(buf) - keep]
                    if dropped:
                        return Frame(b"", "garbage before BeginString")
                return None
            if start > 0:
                del buf[:start]
                return Frame(b"", "garbage before BeginString")
            soh1 = buf.find(b"\x01", 2)
            if soh1 < 0:
                return self._incomplete()
            if buf[soh1 + 1 : soh1 + 3] != b"9=":
                if len(buf) < soh1 + 3:
                    return self._incomplete()
                # BodyLength is not the second field: resynchronise after this '8='.
                del buf[:2]
                return Frame(b"", "BodyLength (9) is not the second field")
            soh2 = buf.find(b"\x01", soh1 + 3)
            if soh2 < 0:
                return self._incomplete()
            length_bytes = bytes(buf[soh1 + 3 : soh2])
            if not length_bytes.isdigit():
                del buf[:2]
                return Frame(b"", f"BodyLength (9) is not a number: {length_bytes[:20]!r}")
            if len(length_bytes) > T.MAX_INT_DIGITS:
                del buf[:2]
                return Frame(b"", f"BodyLength (9) has {len(length_bytes)} digits, more than any message")
            body_len = int(length_bytes)
            body_start = soh2 + 1
            # Search for the trailer from just before the declared body end.
            search_from = max(body_start, body_start + body_len - 1)
            mark = buf.find(_CHECKSUM_MARK, search_from)
            if mark < 0:
                if len(buf) > self._max:
                    del buf[:2]
                    return Frame(b"", "message larger than the configured maximum")
                return None
            end = buf.find(b"\x01", mark + 4)
            if end < 0:
                return self._incomplete()
            end += 1
            data = bytes(buf[:end])
            del buf[:end]
            actual_len = mark + 1 - body_start
            if actual_len != body_len:
                return Frame(data, f"BodyLength (9) is {body_len}, the body has {actual_len} bytes")
            declared = data[mark + 4 : end - 1]
            if len(declared) != 3 or not declared.isdigit():
                return Frame(data, f"CheckSum (10) is malformed: {declared!r}")
            if int(declared) != checksum(memoryview(data)[: mark + 1]):
                return Frame(
                    data,
                    f"CheckSum (10) is {declared.decode()}, computed "
                    f"{checksum(memoryview(data)[: mark + 1]):03d}",
                )
            return Frame(data, None)

    def _incomplete(self) -> Frame | None:
        if len(self._buf) > self._max:
            del self._buf[:2]
            return Frame(b"", "message larger than the configured maximum")
        return None


_DATA_LENGTH_TAG_SET = frozenset(T.DATA_LENGTH_TAGS)
#: Tag text -> tag number, for the tags seen so far. Every message repeats the same few dozen
#: tags, so a dict lookup replaces the digit check and ``int()`` of each field. Data-length
#: tags are never cached (they switch to the field-by-field parse), and the cache stops
#: growing at ``_TAG_CACHE_LIMIT`` entries, so odd tags from a peer cannot grow it without bound.
_TAG_CACHE: dict[bytes, int] = {}
_TAG_CACHE_LIMIT = 4096


def parse(data: bytes) -> Message:
    """Parse one framed message. Raises GarbledMessage when the text is not FIX.

    The first three fields must be 8, 9, 35 and the last 10 (FIX session test
    case 2t); a field without '=' or with a non-numeric tag is garbled.
    Data fields (see ``tags.DATA_LENGTH_TAGS``) are read by their length.

    Most messages carry no data field, so they are split on SOH in one pass;
    a message with a data-length field is parsed field by field instead.
    """
    if data[-1:] != b"\x01":
        raise GarbledMessage("message does not end with SOH")
    fields: list[tuple[int, bytes]] = []
    append = fields.append
    known = _TAG_CACHE
    for part in data[:-1].split(b"\x01"):
        tag_text, sep, value = part.partition(b"=")
        if not sep:
            raise GarbledMessage(f"field without '=': {part[:20]!r}")
        tag = known.get(tag_text)
        if tag is None:
            tag = _tag_number(tag_text)
            if tag in _DATA_LENGTH_TAG_SET:
                return _parse_field_by_field(data)
        append((tag, value))
    return _checked(fields)


def _tag_number(tag_text: bytes) -> int:
    """The number of a tag not in the cache (and into the cache if there is room), or GarbledMessage."""
    if not tag_text.isdigit() and not (tag_text[:1] == b"-" and tag_text[1:].isdigit()):
        raise GarbledMessage(f"tag {tag_text[:20]!r} is not a number")
    if len(tag_text) > T.MAX_INT_DIGITS:
        raise GarbledMessage(f"tag number of {len(tag_text)} digits")
    tag = int(tag_text)
    if tag not in _DATA_LENGTH_TAG_SET and len(_TAG_CACHE) < _TAG_CACHE_LIMIT:
        _TAG_CACHE[tag_text] = tag
    return tag


def _parse_field_by_field(data: bytes) -> Message:
    fields: list[tuple[int, bytes]] = []
    pos = 0
    n = len(data)
    data_len_for: int | None = None
    data_tag: int | None = None
    while pos < n:
        eq = data.find(b"=", pos)
        if eq < 0:
            raise GarbledMessage(f"field without '=' at byte {pos}")
        tag_text = data[pos:eq]
        digits = tag_text[1:] if tag_text[:1] == b"-" else tag_text
        if not digits.isdigit():
            raise GarbledMessage(f"tag {tag_text[:20]!r} is not a number")
        if len(digits) > T.MAX_INT_DIGITS:
            raise GarbledMessage(f"tag number of {len(digits)} digits")
        tag = int(tag_text)
        if data_tag is not None and tag == data_tag and data_len_for is not None:
            end = eq + 1 + data_len_for
            if end >= n or data[end] != _SOH:
                raise GarbledMessage(f"data field {tag} does not match its length")
            value = data[eq + 1 : end]
            data_tag = None
            data_len_for = None
        else:
            end = data.find(b"\x01", eq + 1)
            if end < 0:
                raise GarbledMessage("message does not end with SOH")
            value = data[eq + 1 : end]
            data_field = T.DATA_LENGTH_TAGS.get(tag)
            if data_field is not None and value.isdigit() and len(value) <= T.MAX_INT_DIGITS:
                data_tag = data_field
                data_len_for = int(value)
        fields.append((tag, value))
        pos = end + 1
    return _checked(fields)


def _checked(fields: list[tuple[int, bytes]]) -> Message:
    if len(fields) < 4:
        raise GarbledMessage("fewer than four fields")
    if fields[0][0] != T.BEGIN_STRING or fields[1][0] != T.BODY_LENGTH or fields[2][0] != T.MSG_TYPE:
        raise GarbledMessage("the first three fields are not 8, 9, 35")
    if fields[-1][0] != T.CHECKSUM:
        raise GarbledMessage("the last field is not CheckSum (10)")
    return Message(fields)


def encode(
    begin_string: bytes,
    msg_type: bytes,
    header: list[tuple[int, bytes]],
    body: list[tuple[int, bytes]],
) -> bytes:
    """Serialise with BodyLength and CheckSum computed.

    ``header`` holds the header fields after 35, in the order to send; the
    caller decides the order (the session sends them in ascending tag order).
    """
    parts = [b"35=", msg_type, b"\x01"]
    for tag, value in header:
        parts += (str(tag).encode(), b"=", value, b"\x01")
    for tag, value in body:
        parts += (str(tag).encode(), b"=", value, b"\x01")
    rest = b"".join(parts)
    head = b"8=" + begin_string + b"\x019=" + str(len(rest)).encode() + b"\x01"
    msg = head + rest
    return msg + b"10=%03d\x01" % (sum(msg) & 0xFF)


def serialize(message: Message) -> bytes:
    """The wire bytes of a parsed message (fields as received, in order)."""
    return b"".join(b"%d=%s\x01" % (tag, value) for tag, value in message.fields)
