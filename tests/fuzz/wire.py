"""FIX bytes as the fuzzer writes and reads them, independent of fixmesh's codec.

The fuzzer builds its messages from (tag text, value) pairs, so that a tag
may be ``b"abc"``, ``b"0055"`` or five thousand digits, and it reads the
acceptor's answers with its own framing: whatever the acceptor sends is
checked by code that shares nothing with the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass

SOH = b"\x01"
#: A field as the fuzzer handles it: the tag's text and the value, both raw bytes.
Field = tuple[bytes, bytes]


def checksum(data: bytes) -> int:
    return sum(data) % 256


def build(begin: bytes, fields: list[Field], *, body_length: bytes | None = None,
          checksum_text: bytes | None = None) -> bytes:
    """``8=begin|9=len|<fields>|10=sum|``; BodyLength and CheckSum computed unless given."""
    body = b"".join(tag + b"=" + value + SOH for tag, value in fields)
    head = b"8=" + begin + SOH + b"9=" + (body_length if body_length is not None else b"%d" % len(body)) + SOH
    if checksum_text is None:
        checksum_text = b"%03d" % checksum(head + body)
    return head + body + b"10=" + checksum_text + SOH


def refresh(data: bytes) -> bytes:
    """``data`` with BodyLength and CheckSum made right again, its fields otherwise as they are.

    Only for data that still starts ``8=...|9=...|`` and ends ``10=...|``; anything else is returned unchanged.
    """
    first = data.find(SOH)
    second = data.find(SOH, first + 1)
    trailer = data.rfind(SOH + b"10=")
    if first < 0 or second < 0 or trailer <= second or not data.startswith(b"8=") \
            or data[first + 1:first + 3] != b"9=":
        return data
    head_begin = data[:first + 1]
    body = data[second + 1:trailer + 1]
    head = head_begin + b"9=%d" % len(body) + SOH
    return head + body + b"10=%03d" % checksum(head + body) + SOH


@dataclass(frozen=True, slots=True)
class Received:
    """One message the acceptor sent, split into fields (repeats kept, in order)."""

    raw: bytes
    fields: tuple[tuple[int, bytes], ...]

    def get(self, tag: int) -> bytes | None:
        for t, v in self.fields:
            if t == tag:
                return v
        return None

    def get_int(self, tag: int) -> int | None:
        value = self.get(tag)
        return int(value) if value is not None and value.isdigit() and len(value) <= 18 else None

    @property
    def msg_type(self) -> str:
        value = self.get(35)
        return value.decode("latin-1") if value is not None else ""

    @property
    def seq(self) -> int | None:
        return self.get_int(34)

    @property
    def poss_dup(self) -> bool:
        return self.get(43) == b"Y"

    def text(self) -> str:
        return self.raw.replace(SOH, b"|").decode("latin-1")


class MalformedOutput(AssertionError):
    """The acceptor sent bytes that are not a well-formed FIX message."""


class Reader:
    """Cuts the acceptor's byte stream into messages and checks each one's framing strictly.

    The acceptor is the well-behaved side: every byte it sends must belong to
    a message whose BeginString, BodyLength and CheckSum are right, and whose
    fields are ``tag=value`` with a numeric tag. Anything else raises.
    """

    def __init__(self, begin: bytes) -> None:
        self.begin = begin
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[Received]:
        self.buf += data
        out: list[Received] = []
        while True:
            message = self._next()
            if message is None:
                return out
            out.append(message)

    def _next(self) -> Received | None:
        buf = self.buf
        if not buf:
            return None
        head = b"8=" + self.begin + SOH + b"9="
        if len(buf) < len(head):
            if not head.startswith(bytes(buf)):
                raise MalformedOutput(f"output does not start with {head!r}: {bytes(buf[:80])!r}")
            return None
        if not buf.startswith(head):
            raise MalformedOutput(f"output does not start with {head!r}: {bytes(buf[:80])!r}")
        end_len = buf.find(SOH, len(head))
        if end_len < 0:
            if len(buf) > len(head) + 12:
                raise MalformedOutput(f"BodyLength without an end: {bytes(buf[:80])!r}")
            return None
        length_text = bytes(buf[len(head):end_len])
        if not length_text.isdigit() or length_text.startswith(b"0"):
            raise MalformedOutput(f"BodyLength {length_text!r} is not a number")
        body_end = end_len + 1 + int(length_text)
        total = body_end + 7  # 10=NNN<SOH>
        if len(buf) < total:
            return None
        data = bytes(buf[:total])
        trailer = data[body_end:]
        if not (trailer.startswith(b"10=") and trailer.endswith(SOH) and trailer[3:6].isdigit()):
            raise MalformedOutput(f"the trailer is {trailer!r} where BodyLength {length_text.decode()} says: "
                                  f"{data[:200]!r}")
        if int(trailer[3:6]) != checksum(data[:body_end]):
            raise MalformedOutput(f"CheckSum {trailer[3:6].decode()} is wrong (computed "
                                  f"{checksum(data[:body_end]):03d}): {data[:200]!r}")
        del buf[:total]
        fields: list[tuple[int, bytes]] = []
        for part in data[:-1].split(SOH):
            tag, sep, value = part.partition(b"=")
            if not sep or not tag.isdigit() or len(tag) > 9:
                raise MalformedOutput(f"field {part[:40]!r} is not tag=value: {data[:200]!r}")
            fields.append((int(tag), value))
        if [t for t, _ in fields[:3]] != [8, 9, 35]:
            raise MalformedOutput(f"the first fields are not 8, 9, 35: {data[:200]!r}")
        return Received(data, tuple(fields))
