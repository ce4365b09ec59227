"""Play one parsed acceptance script against an acceptor over real TCP sockets.

The side-effect shell around ``script``: sockets, the wall clock for
``<TIME>`` and the timeouts live here, every decision about bytes lives there.
It behaves like QuickFIX's Ruby runner (``FORMAT.md`` sections 1 and 4) with
one addition the Ruby runner lacks: every wait is bounded, so a silent
acceptor fails a step instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from .script import (
    SOH,
    Clock,
    FieldPatterns,
    Script,
    ScriptSyntaxError,
    Step,
    StepKind,
    compare,
    parse_field_patterns,
    parse_script,
    render,
    show,
)


@dataclass(frozen=True)
class PlayerSettings:
    """Bounds on every wait; the defaults are the ones FORMAT.md argues for."""

    # FORMAT.md section 4: the longest legitimate wait is about 7.2 s (6_SendTestRequest).
    message_timeout_s: float = 15.0
    # The Ruby runner's IO.select timeout for eDISCONNECT.
    disconnect_timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    # FORMAT.md section 1: the runner probes the port before each file, once a second.
    probe_attempts: int = 30
    probe_interval_s: float = 1.0
    # Far above any scripted message; stops a runaway peer from filling memory.
    max_message_bytes: int = 1 << 20


@dataclass(frozen=True)
class Failure:
    """Why a file failed: the report QuickFIX's runner gives (line, reason, expected, received)."""

    line_number: int
    reason: str
    line: str = ""
    expected: str = ""
    received: str = ""

    def describe(self) -> str:
        """Multi-line text for a terminal or a pytest failure; line 0 means the file as a whole."""
        where = f"line {self.line_number}" if self.line_number else "file"
        parts = [f"{where}: {self.reason}"]
        if self.line:
            parts.append(f"  line:     {self.line}")
        if self.expected or self.received:
            parts.append(f"  expected: {self.expected or '(nothing)'}")
            parts.append(f"  received: {self.received or '(nothing)'}")
        return "\n".join(parts)


@dataclass(frozen=True)
class Outcome:
    """The result of one file."""

    name: str
    failure: Failure | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None

    def describe(self) -> str:
        """``PASS name``, or ``FAIL name (line n)`` followed by the failure report."""
        if self.failure is None:
            return f"PASS {self.name}"
        details = "\n".join("    " + line for line in self.failure.describe().splitlines())
        where = f"line {self.failure.line_number}" if self.failure.line_number else "before the first line"
        return f"FAIL {self.name} ({where})\n{details}"


class ReadError(Exception):
    """The acceptor did not deliver what a step waits for; ``received`` is whatever did arrive."""

    def __init__(self, reason: str, received: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.received = received


class _Closed(Exception):
    """The peer closed (or reset) the connection."""


class _TimedOut(Exception):
    """The deadline of the current wait passed."""


class Connection:
    """One scripted TCP connection with a receive buffer, so messages can be framed exactly."""

    def __init__(self, sock: socket.socket, settings: PlayerSettings) -> None:
        self._sock = sock
        self._settings = settings
        self._buffer = bytearray()

    @classmethod
    def open(cls, host: str, port: int, settings: PlayerSettings) -> Connection:
        """Connect; Nagle is off so each ``I`` line leaves at once, as the scripts' timing assumes."""
        sock = socket.create_connection((host, port), timeout=settings.connect_timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, settings)

    def send(self, data: bytes) -> None:
        """One write of the whole line, so the acceptor sees it the way the Ruby runner sends it."""
        self._sock.settimeout(self._settings.connect_timeout_s)
        self._sock.sendall(data)

    def read_message(self) -> bytes:
        """Read one FIX message with the Ruby runner's framing (``FixParser.rb``).

        Up to and including ``SOH 9=``, the length up to the next SOH, exactly
        that many bytes, then through the next SOH. Bytes before ``8=`` are
        kept, so garbage from the acceptor shows up in the comparison.
        """
        deadline = time.monotonic() + self._settings.message_timeout_s
        message = bytearray()
        try:
            message += self._read_until(b"\x019=", deadline)
            length_field = self._read_until(SOH, deadline)
            message += length_field
            message += self._read_exact(self._body_length(length_field, bytes(message)), deadline)
            message += self._read_until(SOH, deadline)
        except _Closed as closed:
            arrived = bytes(message + self._buffer)
            reason = "Disconnected in the middle of a message" if arrived else "Was disconnected, expected data"
            raise ReadError(f"{reason} ({closed})" if str(closed) else reason, arrived) from None
        except _TimedOut:
            reason = f"No complete message within {self._settings.message_timeout_s:g} s"
            raise ReadError(reason, bytes(message + self._buffer)) from None
        return bytes(message)

    def await_close(self) -> bytes | None:
        """None once the acceptor has closed; otherwise the data that arrived first.

        Raises ReadError when neither happens in time, as the Ruby runner
        does after its 10 s select.
        """
        if self._buffer:
            return bytes(self._buffer)
        deadline = time.monotonic() + self._settings.disconnect_timeout_s
        try:
            self._fill(deadline)
        except _Closed:
            return None
        except _TimedOut:
            reason = f"Connection hangs after {self._settings.disconnect_timeout_s:g} s, expected disconnection"
            raise ReadError(reason) from None
        return bytes(self._buffer)

    def close(self) -> None:
        """Close quietly: cleanup must not hide the failure that led to it."""
        with contextlib.suppress(OSError):
            self._sock.close()

    def _body_length(self, length_field: bytes, so_far: bytes) -> int:
        """The BodyLength the acceptor announced; unusable values fail the step, as they would in Ruby."""
        digits = length_field[:-1]
        if not digits.isdigit():
            raise ReadError(f"BodyLength is not a number: {show(digits)!r}", so_far + bytes(self._buffer))
        length = int(digits)
        if length > self._settings.max_message_bytes:
            raise ReadError(f"BodyLength {length} is larger than any scripted message", so_far)
        return length

    def _read_until(self, delimiter: bytes, deadline: float) -> bytes:
        """Take bytes up to and including ``delimiter``; each pass either returns or grows the buffer."""
        while True:
            index = self._buffer.find(delimiter)
            if index >= 0:
                return self._take(index + len(delimiter))
            if len(self._buffer) > self._settings.max_message_bytes:
                raise ReadError(f"No {show(delimiter)!r} in {len(self._buffer)} bytes", bytes(self._buffer))
            self._fill(deadline)

    def _read_exact(self, count: int, deadline: float) -> bytes:
        """Take exactly ``count`` bytes, however the peer split them into segments."""
        while len(self._buffer) < count:
            self._fill(deadline)
        return self._take(count)

    def _take(self, count: int) -> bytes:
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        return taken

    def _fill(self, deadline: float) -> None:
        """One receive, bounded by ``deadline``; EOF, reset and other socket errors all end the conversation."""
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            raise _TimedOut()
        self._sock.settimeout(remaining_s)
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            raise _TimedOut() from None
        except OSError as error:
            raise _Closed(error.strerror or type(error).__name__) from None
        if not chunk:
            raise _Closed()
        self._buffer += chunk


class _StepFailed(Exception):
    """Aborts the file: the first failure ends it, as in QuickFIX's runner."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


@dataclass
class _Run:
    """Everything the step handlers share while one file plays."""

    host: str
    port: int
    patterns: FieldPatterns
    settings: PlayerSettings
    clock: Clock
    connections: dict[int, Connection] = field(default_factory=dict)

    def connection(self, step: Step, reason: str) -> Connection:
        """The step's connection, or a failure naming what the step needed it for."""
        connection = self.connections.get(step.connection_id)
        if connection is None:
            _fail(step, f"{reason}: connection {step.connection_id} is not open")
        return connection

    def close_all(self) -> None:
        for connection in self.connections.values():
            connection.close()
        self.connections.clear()


def utc_now() -> datetime:
    """The runner's clock: UTC wall time, because SendingTime is UTC (FIX tag 52)."""
    return datetime.now(UTC)


def play(
    script: Script,
    host: str,
    port: int,
    patterns: FieldPatterns,
    settings: PlayerSettings = PlayerSettings(),
    clock: Clock = utc_now,
) -> Outcome:
    """Play every step in order; the first failure ends the file and every socket is closed."""
    if not script.opens_connection:
        return Outcome(script.name, Failure(0, "Test definition did not contain iCONNECT or eCONNECT"))
    if not probe(host, port, settings):
        reason = f"Nothing accepts connections on {host}:{port} after {settings.probe_attempts} attempts"
        return Outcome(script.name, Failure(0, reason))
    run = _Run(host, port, patterns, settings, clock)
    try:
        for step in script.steps:
            _HANDLERS[step.kind](step, run)
    except _StepFailed as failed:
        return Outcome(script.name, failed.failure)
    finally:
        run.close_all()
    return Outcome(script.name)


def play_file(
    path: Path,
    host: str,
    port: int,
    patterns: FieldPatterns,
    settings: PlayerSettings = PlayerSettings(),
    clock: Clock = utc_now,
    name: str | None = None,
) -> Outcome:
    """Read, parse and play one ``.def`` file; unreadable or malformed files fail like any other."""
    label = name if name is not None else path.name
    try:
        data = path.read_bytes()
    except OSError as error:
        return Outcome(label, Failure(0, f"Cannot read {path}: {error}"))
    try:
        script = parse_script(data, label)
    except ScriptSyntaxError as error:
        return Outcome(label, Failure(error.line_number, error.reason, line=show(error.line)))
    return play(script, host, port, patterns, settings, clock)


def load_field_patterns(path: Path) -> dict[bytes, re.Pattern[bytes]]:
    """Read ``definitions/fields.fmt``, the patterns for the tags whose values vary."""
    return parse_field_patterns(path.read_text(encoding="ascii"))


def probe(host: str, port: int, settings: PlayerSettings, sleep: Callable[[float], None] = time.sleep) -> bool:
    """A bare connect and close, retried: the acceptor may still be starting (FORMAT.md section 1)."""
    for attempt in range(settings.probe_attempts):
        if attempt:
            sleep(settings.probe_interval_s)
        try:
            with socket.create_connection((host, port), timeout=settings.connect_timeout_s):
                return True
        except OSError:
            continue
    return False


def _fail(step: Step, reason: str, expected: bytes = b"", received: bytes = b"") -> NoReturn:
    raise _StepFailed(Failure(step.line_number, reason, show(step.line), show(expected), show(received)))


def _connect(step: Step, run: _Run) -> None:
    """``iCONNECT`` again on an open id replaces that connection, as in QuickFIX's runner."""
    previous = run.connections.pop(step.connection_id, None)
    if previous is not None:
        previous.close()
    try:
        run.connections[step.connection_id] = Connection.open(run.host, run.port, run.settings)
    except OSError as error:
        _fail(step, f"Cannot connect to {run.host}:{run.port}: {error}")


def _disconnect(step: Step, run: _Run) -> None:
    connection = run.connection(step, "Cannot disconnect")
    del run.connections[step.connection_id]
    connection.close()


def _expect_connect(step: Step, run: _Run) -> None:
    """Only client scripts wait for an inbound connection; this player is always the initiator."""
    _fail(step, "eCONNECT needs the runner to act as the acceptor, which this player does not do")


def _expect_disconnect(step: Step, run: _Run) -> None:
    connection = run.connection(step, "Expected disconnection")
    try:
        early = connection.await_close()
    except ReadError as error:
        _fail(step, error.reason, received=error.received)
    if early is not None:
        _fail(step, "Expected disconnection, got data", received=early)
    del run.connections[step.connection_id]
    connection.close()


def _send(step: Step, run: _Run) -> None:
    connection = run.connection(step, "Unable to send message because connection was dropped")
    data = render(step.payload, run.clock)
    try:
        connection.send(data)
    except OSError as error:
        _fail(step, f"Send failed: {error}", expected=data)


def _expect(step: Step, run: _Run) -> None:
    """Read first, then fill in the expected line: ``<TIME>`` means the time of the comparison."""
    connection = run.connection(step, "Was disconnected, expected data")
    try:
        received = connection.read_message()
    except ReadError as error:
        _fail(step, error.reason, expected=render(step.payload, run.clock), received=error.received)
    expected = render(step.payload, run.clock)
    reason = compare(expected, received, run.patterns)
    if reason is not None:
        _fail(step, reason, expected=expected, received=received)


_HANDLERS: dict[StepKind, Callable[[Step, _Run], None]] = {
    StepKind.CONNECT: _connect,
    StepKind.DISCONNECT: _disconnect,
    StepKind.EXPECT_CONNECT: _expect_connect,
    StepKind.EXPECT_DISCONNECT: _expect_disconnect,
    StepKind.SEND: _send,
    StepKind.EXPECT: _expect,
}
