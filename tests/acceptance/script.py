"""QuickFIX acceptance scripts as data: parse, fill in placeholders, fix up, compare.

Pure on purpose: no socket, no file and no clock. The semantics follow
``FORMAT.md`` beside the scripts (QuickFIX's Ruby runner: ``Reflector.rb``,
``FixParser.rb``, ``Comparator.rb``), so a script fails here exactly where it
would fail under QuickFIX's own runner. Everything works on bytes because the
scripts carry raw SOH bytes and the lengths and checksums count bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

SOH = b"\x01"

Clock = Callable[[], datetime]
"""Returns the current time; called once per ``<TIME>`` placeholder, because the runner evaluates each afresh."""

FieldPatterns = Mapping[bytes, re.Pattern[bytes]]
"""Tag -> pattern for the fields whose values vary from run to run (``definitions/fields.fmt``)."""

# FORMAT.md section 1: exactly one digit, then a comma; otherwise the connection is 1.
_CONNECTION_PREFIX = re.compile(rb"^[IEie][0-9],")
# FORMAT.md section 2: the Ruby runner's '>' search is sloppy; this regex is what it means.
_TIME_PLACEHOLDER = re.compile(rb"<TIME([+-][0-9]+)?>")
_TIME_FORMAT = "%Y%m%d-%H:%M:%S"
# FORMAT.md section 3: the first field, any 9= field, and a trailing 10= field.
_HEAD = re.compile(rb"8=.*?\x01")
_HAS_BODY_LENGTH = re.compile(rb"\x019=.*?\x01")
_TRAILING_CHECKSUM = re.compile(rb"\x0110=.*\x01\Z")


class StepKind(Enum):
    """What one script line asks the runner to do."""

    CONNECT = "iCONNECT"
    DISCONNECT = "iDISCONNECT"
    EXPECT_CONNECT = "eCONNECT"
    EXPECT_DISCONNECT = "eDISCONNECT"
    SEND = "I"
    EXPECT = "E"


@dataclass(frozen=True)
class Step:
    """One executable line; ``payload`` is a template, filled in only when the step runs."""

    kind: StepKind
    connection_id: int
    line_number: int
    line: bytes
    payload: bytes = b""


@dataclass(frozen=True)
class Script:
    """A parsed ``.def`` file: its steps in file order."""

    name: str
    steps: tuple[Step, ...]

    @property
    def opens_connection(self) -> bool:
        """QuickFIX's runner counts a file with no connect line as a failure, not as an empty pass."""
        return any(step.kind in (StepKind.CONNECT, StepKind.EXPECT_CONNECT) for step in self.steps)


class ScriptSyntaxError(ValueError):
    """A line the runner cannot execute; carries the line number for the report."""

    def __init__(self, line_number: int, line: bytes, reason: str) -> None:
        super().__init__(f"line {line_number}: {reason}: {show(line)}")
        self.line_number = line_number
        self.line = line
        self.reason = reason


_CONNECTION_COMMANDS: dict[tuple[bytes, bytes], StepKind] = {
    (b"i", b"CONNECT"): StepKind.CONNECT,
    (b"i", b"DISCONNECT"): StepKind.DISCONNECT,
    (b"e", b"CONNECT"): StepKind.EXPECT_CONNECT,
    (b"e", b"DISCONNECT"): StepKind.EXPECT_DISCONNECT,
}
_MESSAGE_COMMANDS: dict[bytes, StepKind] = {b"I": StepKind.SEND, b"E": StepKind.EXPECT}


def parse_script(data: bytes, name: str = "<script>") -> Script:
    """Parse a whole file up front, so a syntax error fails the file before any byte is sent."""
    steps: list[Step] = []
    for index, raw_line in enumerate(data.split(b"\n")):
        step = parse_line(_chomp(raw_line), index + 1)
        if step is not None:
            steps.append(step)
    return Script(name=name, steps=tuple(steps))


def parse_line(line: bytes, line_number: int) -> Step | None:
    """One line to one step; blank lines and ``#`` comments (including ``#E8=...``) give None."""
    if not line or line.startswith(b"#"):
        return None
    command = line[:1]
    connection_id, payload = _split_connection(line)
    kind = _MESSAGE_COMMANDS.get(command)
    if kind is not None:
        return Step(kind, connection_id, line_number, line, payload)
    kind = _CONNECTION_COMMANDS.get((command, payload))
    if kind is not None:
        return Step(kind, connection_id, line_number, line)
    raise ScriptSyntaxError(line_number, line, "Syntax error")


def _chomp(line: bytes) -> bytes:
    """Lines are split on LF; some files use CRLF, whose CR must not reach the wire."""
    return line[:-1] if line.endswith(b"\r") else line


def _split_connection(line: bytes) -> tuple[int, bytes]:
    """``I2,8=...`` addresses connection 2; without the prefix everything goes to connection 1."""
    if _CONNECTION_PREFIX.match(line):
        return int(line[1:2]), line[3:]
    return 1, line[1:]


def render(payload: bytes, clock: Clock) -> bytes:
    """The bytes a step sends or expects: placeholders first, then BodyLength and CheckSum."""
    return fixify(substitute_times(payload, clock))


def substitute_times(payload: bytes, clock: Clock) -> bytes:
    """Replace ``<TIME>``, ``<TIME+n>`` and ``<TIME-n>`` with UTC now (plus n seconds), seconds precision."""

    def replacement(match: re.Match[bytes]) -> bytes:
        offset_s = int(match.group(1)) if match.group(1) else 0
        return format_time(clock() + timedelta(seconds=offset_s)).encode("ascii")

    return _TIME_PLACEHOLDER.sub(replacement, payload)


def format_time(moment: datetime) -> str:
    """The runner's ``%Y%m%d-%H:%M:%S`` in UTC; a naive time is taken to be UTC already."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    return utc.strftime(_TIME_FORMAT)


def fixify(payload: bytes) -> bytes:
    """Insert 9= and append 10= unless the line states them.

    Explicit values are kept verbatim because tests use them to send a wrong
    BodyLength (2m, 1d) or CheckSum (3b). A payload that does not start with
    ``8=`` is sent raw (2t).
    """
    head_match = _HEAD.match(payload)
    if head_match is None:
        return payload
    head = head_match.group()
    rest = payload[head_match.end() :]
    body, checksum_field = _split_checksum(rest)
    length_field = b"" if _HAS_BODY_LENGTH.search(payload) else b"9=%d\x01" % len(body)
    if checksum_field is None:
        checksum_field = b"10=%03d\x01" % checksum(head + length_field + body)
    return head + length_field + body + checksum_field


def _split_checksum(rest: bytes) -> tuple[bytes, bytes | None]:
    """Body up to and including its last SOH, and the trailing ``10=...|`` field if the line has one."""
    match = _TRAILING_CHECKSUM.search(rest)
    if match is None:
        return rest, None
    split_at = match.start() + 1
    return rest[:split_at], rest[split_at:]


def checksum(data: bytes) -> int:
    """FIX CheckSum (tag 10): the byte sum modulo 256."""
    return sum(data) % 256


def parse_field_patterns(text: str) -> dict[bytes, re.Pattern[bytes]]:
    """Read ``fields.fmt``: one ``tag=regex`` a line, split on the first ``=`` only."""
    patterns: dict[bytes, re.Pattern[bytes]] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        tag, separator, pattern = line.partition("=")
        if not separator or not tag:
            raise ValueError(f"fields.fmt line is not tag=regex: {raw_line!r}")
        patterns[tag.encode("ascii")] = re.compile(pattern.encode("ascii"))
    return patterns


def compare(expected: bytes, received: bytes, patterns: FieldPatterns) -> str | None:
    """Why ``received`` does not match ``expected``, or None when it does.

    Same rules as QuickFIX's Comparator: equal field counts, tags compared by
    position (so order matters, header included), values exact except for
    the patterned tags, where only the received value is searched (not
    anchored) and the expected value is ignored.
    """
    expected_fields = expected.split(SOH)
    received_fields = received.split(SOH)
    if len(expected_fields) != len(received_fields):
        return f"Number of fields does not match: expected {len(expected_fields)}, received {len(received_fields)}"
    for expected_field, received_field in zip(expected_fields, received_fields, strict=True):
        reason = _compare_field(expected_field, received_field, patterns)
        if reason is not None:
            return reason
    return None


def _compare_field(expected_field: bytes, received_field: bytes, patterns: FieldPatterns) -> str | None:
    """One positional field: same tag, then pattern or exact value."""
    expected_tag, _, expected_value = expected_field.partition(b"=")
    received_tag, _, received_value = received_field.partition(b"=")
    if expected_tag != received_tag:
        return f"Expected field ({show(expected_tag)}) but found field ({show(received_tag)})"
    pattern = patterns.get(expected_tag)
    if pattern is not None:
        if pattern.search(received_value) is None:
            return (
                f"Field ({show(expected_tag)}) does not match pattern {show(pattern.pattern)}: "
                f"got ({show(received_value)})"
            )
        return None
    if expected_value != received_value:
        return (
            f"Value in field ({show(expected_tag)}) should be ({show(expected_value)}) "
            f"but was ({show(received_value)})"
        )
    return None


def show(data: bytes) -> str:
    """Bytes as a readable line: SOH shown as ``|``, every other byte kept (latin-1 never fails)."""
    return data.decode("latin-1").replace("\x01", "|")
