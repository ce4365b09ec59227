"""The gateway's vocabulary: the commands a session actor obeys, its replies, and the events the gateway publishes.

``broker.protocol`` knows the envelope; this module knows what travels inside
it for the gateway. Every writer builds a body with ``to_body()`` and every
reader parses one with ``from_body()``, so a field renamed here is renamed
for every process, and mypy follows each use. The maps themselves (msgpack,
``docs/bus.md``) are the ones the gateway always sent: same keys, same key
order, same values; monitors, tests and other processes read them.

Rules:

* ``to_body()`` gives exactly the map that goes on the wire.
* ``from_body()`` never raises: a body that is not what it claims to be gives
  ``Malformed``, whose ``error`` says why in words fit for a reply or a log
  line. A key it does not know is ignored, because a newer writer may add one.
* ``incarnation`` and ``state_changes`` may be missing from a state event or
  a status reply: an actor older than them sends none, and the coordinator
  treats their absence as "unknown" (``actors/gateway/pair_policy.py``).
* State names are ``SessionState`` members, read from their values: a state
  renamed in the session core breaks the build here, not the gateway at run
  time.
* Command names are a ``StrEnum`` rather than a ``Literal``: operator tools
  enumerate them at run time (``fixmesh ctl``'s choices, the parser's table,
  a test over every name), and each member *is* the string on the wire, so
  comparing it with received text needs no conversion. A ``Literal`` would
  need a tuple of the same names kept in step by hand.

Topics (``session.<name>.state`` and so on) are functions here; the prefixes
they start with are ``broker.protocol``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self

from actors.fix.outputs import SessionEvent, StateChanged
from actors.fix.states import SessionState
from broker import protocol

# ----------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class Malformed:
    """A body that is not what it claims to be; ``error`` says what is wrong with it."""

    error: str

    def __str__(self) -> str:
        return self.error


class _Invalid(Exception):
    """Raised by the field readers below and turned into ``Malformed`` before ``from_body`` returns."""


#: How much of a bad value an error quotes: enough to recognise it, not a whole payload in a log line.
_QUOTED_CHARS = 60


def _quoted(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTED_CHARS else text[: _QUOTED_CHARS - 3] + "..."


def _map(body: object, what: str) -> Mapping[Any, Any]:
    if not isinstance(body, Mapping):
        raise _Invalid(f"{what} is not a map but {type(body).__name__}")
    return body


def _bad(what: str, key: str, value: object, expected: str) -> _Invalid:
    shown = "missing" if value is None else _quoted(value)
    return _Invalid(f"{what}: {key} is {shown}; expected {expected}")


def _text(body: Mapping[Any, Any], key: str, what: str, default: str | None = None) -> str:
    """A string field; ``default`` (when given) stands in for a missing or null one."""
    value = body.get(key)
    if isinstance(value, str):
        return value
    if value is None and default is not None:
        return default
    raise _bad(what, key, value, "a string")


def _int(body: Mapping[Any, Any], key: str, what: str) -> int:
    value = body.get(key)
    # ``True`` is an ``int`` in Python but never a count or a number on this bus.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _bad(what, key, value, "an integer")


def _optional_int(body: Mapping[Any, Any], key: str, what: str) -> int | None:
    return None if body.get(key) is None else _int(body, key, what)


def _bool(body: Mapping[Any, Any], key: str, what: str) -> bool:
    value = body.get(key)
    if isinstance(value, bool):
        return value
    raise _bad(what, key, value, "true or false")


def _float(body: Mapping[Any, Any], key: str, what: str) -> float:
    value = body.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _bad(what, key, value, "a number")


def _counts(body: Mapping[Any, Any], key: str, what: str) -> dict[str, int]:
    """A map of names to counts (``{"D": 12, "8": 12}``); missing means none counted yet."""
    value = body.get(key, {})
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in value.items()):
        raise _bad(what, key, value, "a map of names to counts")
    return dict(value)


_STATES: dict[str, SessionState] = {state.value: state for state in SessionState}


def _state(body: Mapping[Any, Any], key: str, what: str) -> SessionState:
    value = body.get(key)
    state = _STATES.get(value) if isinstance(value, str) else None
    if state is None:
        raise _bad(what, key, value, "a session state name")
    return state


# ----------------------------------------------------------------- commands


class CommandName(StrEnum):
    """Every command a session actor obeys: the ``cmd`` of a ``command`` envelope's body."""

    STATUS = "status"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    LOGOUT = "logout"
    RESET_SEQNUMS = "reset_seqnums"
    SET_SEQNUMS = "set_seqnums"
    SWITCH_CONNECTION = "switch_connection"
    ANSWER_LOGON = "answer_logon"


_COMMAND_NAMES: dict[str, CommandName] = {name.value: name for name in CommandName}

#: The refusal of a body that names no command; the text the actors always answered with.
NOT_A_COMMAND = "a command is a map with 'cmd'"


def _command_fields(body: object, cmd: CommandName) -> Mapping[Any, Any]:
    if not isinstance(body, Mapping) or not isinstance(body.get("cmd"), str):
        raise _Invalid(NOT_A_COMMAND)
    if body["cmd"] != cmd:
        raise _Invalid(f"not a {cmd} command but {_quoted(body['cmd'])}")
    return body


@dataclass(frozen=True, slots=True)
class _Bare:
    """A command without arguments: ``{"cmd": name}``."""

    cmd: ClassVar[CommandName]

    def to_body(self) -> dict[str, Any]:
        return {"cmd": self.cmd.value}

    @classmethod
    def from_body(cls, body: object) -> Self | Malformed:
        try:
            _command_fields(body, cls.cmd)
        except _Invalid as exc:
            return Malformed(str(exc))
        return cls()


@dataclass(frozen=True, slots=True)
class _WithText:
    """A command with an optional free text: ``{"cmd": name, "text": text}``, ``text`` only when not empty.

    An empty text and no text mean the same to the session (no Text(58) on the
    Logout, the default reason), so they are one value here: ``""``.
    """

    text: str = ""
    cmd: ClassVar[CommandName]

    def to_body(self) -> dict[str, Any]:
        return {"cmd": self.cmd.value, "text": self.text} if self.text else {"cmd": self.cmd.value}

    @classmethod
    def from_body(cls, body: object) -> Self | Malformed:
        try:
            return cls(_text(_command_fields(body, cls.cmd), "text", cls.cmd.value, default=""))
        except _Invalid as exc:
            return Malformed(str(exc))


@dataclass(frozen=True, slots=True)
class Status(_Bare):
    """Report where the session stands (every accepted command answers with that too)."""

    cmd: ClassVar[CommandName] = CommandName.STATUS


@dataclass(frozen=True, slots=True)
class Connect(_Bare):
    """Initiator: start connecting, and reconnecting, to the counterparty."""

    cmd: ClassVar[CommandName] = CommandName.CONNECT


@dataclass(frozen=True, slots=True)
class ResetSeqNums(_Bare):
    """Both sequence numbers back to 1; only while the session is offline."""

    cmd: ClassVar[CommandName] = CommandName.RESET_SEQNUMS


@dataclass(frozen=True, slots=True)
class Logout(_WithText):
    """Stop reconnecting and log out; ``text`` goes in the Logout's Text(58)."""

    cmd: ClassVar[CommandName] = CommandName.LOGOUT


@dataclass(frozen=True, slots=True)
class Disconnect(_WithText):
    """Stop reconnecting; log out when logged on, else drop the connection. ``text`` is the reason."""

    cmd: ClassVar[CommandName] = CommandName.DISCONNECT


@dataclass(frozen=True, slots=True)
class SwitchConnection(_WithText):
    """Initiator with a backup: move to the other connection now; ``text`` says why."""

    cmd: ClassVar[CommandName] = CommandName.SWITCH_CONNECTION


@dataclass(frozen=True, slots=True)
class AnswerLogon(_WithText):
    """Acceptor holding its user's Logon (``logon_waits_for_venue``): answer it now.

    No ``text``: accept it (the Logon reply; the user is logged on). A
    ``text``: refuse it with a Logout whose Text(58) says why.
    """

    cmd: ClassVar[CommandName] = CommandName.ANSWER_LOGON


#: The refusal of a ``set_seqnums`` with a number that is not one; the text the actors always answered with.
BAD_SEQNUMS = "next_sender / next_target must be positive integers"


@dataclass(frozen=True, slots=True)
class SetSeqNums:
    """Operator override of the next outgoing and the next expected incoming number; None leaves one as it is.

    Both keys are always on the wire, null when not given, as ``fixmesh ctl`` always sent them.
    """

    next_sender: int | None = None
    next_target: int | None = None
    cmd: ClassVar[CommandName] = CommandName.SET_SEQNUMS

    def to_body(self) -> dict[str, Any]:
        return {"cmd": self.cmd.value, "next_sender": self.next_sender, "next_target": self.next_target}

    @classmethod
    def from_body(cls, body: object) -> SetSeqNums | Malformed:
        try:
            fields = _command_fields(body, cls.cmd)
        except _Invalid as exc:
            return Malformed(str(exc))
        sender, target = fields.get("next_sender"), fields.get("next_target")
        if not all(_positive_or_none(v) for v in (sender, target)):
            return Malformed(BAD_SEQNUMS)
        return cls(sender, target)


def _positive_or_none(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


Command = Status | Connect | Disconnect | Logout | ResetSeqNums | SetSeqNums | SwitchConnection | AnswerLogon

#: One type per name; ``parse_command`` looks the name up here.
COMMAND_TYPES: tuple[type[Command], ...] = (Status, Connect, Disconnect, Logout, ResetSeqNums, SetSeqNums,
                                            SwitchConnection, AnswerLogon)
_PARSERS: dict[str, Callable[[object], Command | Malformed]] = {t.cmd.value: t.from_body for t in COMMAND_TYPES}


def parse_command(body: object) -> Command | Malformed:
    """The typed command of a ``command`` envelope's body, or why it is none (the actor refuses with that)."""
    if not isinstance(body, Mapping) or not isinstance(cmd := body.get("cmd"), str):
        return Malformed(NOT_A_COMMAND)
    parse = _PARSERS.get(cmd)
    if parse is None:
        return Malformed(f"unknown command {cmd!r}")
    return parse(body)


# ----------------------------------------------------------------- replies

#: Keys the actor adds to its session core's own status report.
_ACTOR_STATUS_KEYS = frozenset({"name", "role", "pid", "connected", "awaiting_ack", "incarnation", "reason",
                                "state_changes", "logon_failures", "stats"})


@dataclass(frozen=True, slots=True)
class StatusReply:
    """The answer to every command the actor carried out: ``{"ok": true, "status": {...}}``.

    ``core`` is the session core's own report as ``Session.status()`` gives it
    (state, sequence numbers, heartbeat interval, queue, resend range) and is
    passed through untouched: the core owns its shape. ``state`` is the one
    entry of it the coordinator reasons about, typed.
    """

    state: SessionState
    name: str
    role: str
    pid: int
    connected: bool
    #: Messages this session forwarded that its peer has not acknowledged yet. Not a backlog: the peer's ack
    #: waits up to ``ACK_DELAY_S`` (0.5 s) for a forward going back, so a pair that trades shows a few.
    awaiting_ack: int
    incarnation: str
    #: Why the session is in its state (the reason of the last state change).
    reason: str
    #: State changes this process has made so far; None from an actor that does not count them.
    state_changes: int | None
    core: Mapping[str, object] = field(default_factory=dict)
    #: Logons refused for their credentials since the actor started (an acceptor with credentials).
    logon_failures: int = 0
    #: The session's counters as its last ``session.<name>.stats`` event has them (None from an older actor).
    stats: SessionStats | None = None

    def to_body(self) -> dict[str, Any]:
        status = {
            **self.core, "state": self.state.value, "name": self.name, "role": self.role, "pid": self.pid,
            "connected": self.connected, "awaiting_ack": self.awaiting_ack, "incarnation": self.incarnation,
            "reason": self.reason, "state_changes": self.state_changes, "logon_failures": self.logon_failures}
        if self.stats is not None:
            status["stats"] = self.stats.to_body()
        return {"ok": True, "status": status}

    @classmethod
    def from_body(cls, body: object) -> StatusReply | Malformed:
        what = "status reply"
        try:
            reply = _map(body, what)
            if reply.get("ok") is not True:
                raise _bad(what, "ok", reply.get("ok"), "true")
            status = _map(reply.get("status"), f"{what}'s status")
            core = {key: value for key, value in status.items() if key not in _ACTOR_STATUS_KEYS}
            stats = None if status.get("stats") is None else SessionStats.parse(status["stats"], f"{what}'s stats")
            return cls(_state(status, "state", what), _text(status, "name", what), _text(status, "role", what),
                       _int(status, "pid", what), _bool(status, "connected", what),
                       _int(status, "awaiting_ack", what), _text(status, "incarnation", what, default=""),
                       _text(status, "reason", what, default=""), _optional_int(status, "state_changes", what),
                       core, _optional_int(status, "logon_failures", what) or 0, stats)
        except _Invalid as exc:
            return Malformed(str(exc))


@dataclass(frozen=True, slots=True)
class Refused:
    """The answer to a command the actor did not carry out: ``{"ok": false, "error": why}``."""

    error: str

    def to_body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error}

    @classmethod
    def from_body(cls, body: object) -> Refused | Malformed:
        what = "refusal"
        try:
            reply = _map(body, what)
            if reply.get("ok") is not False:
                raise _bad(what, "ok", reply.get("ok"), "false")
            return cls(_text(reply, "error", what))
        except _Invalid as exc:
            return Malformed(str(exc))


Reply = StatusReply | Refused


def parse_reply(body: object) -> Reply | Malformed:
    """A ``reply`` envelope's body, typed: the status after a command, or why the command was refused."""
    if isinstance(body, Mapping) and body.get("ok") is False:
        return Refused.from_body(body)
    return StatusReply.from_body(body)


# ----------------------------------------------------------------- topics

#: The last part of the topics a session actor publishes besides its session events' kinds.
STATE = "state"
REJECTED = "rejected"
SWITCH = "switch"
LOGON_REFUSED = "logon_refused"
#: The once-a-second counters of a session (``SessionStats``): not an occurrence, a reading.
STATS = "stats"
#: Application messages over a throttle of the session (``ThrottledEvent``, ``actors.gateway.throttling``).
THROTTLED = "throttled"
#: What every session topic starts with (the coordinator subscribes to it); ``broker.protocol``'s.
SESSION_TOPICS = protocol.SESSION_TOPICS
#: Published once by the coordinator when it starts.
COORDINATOR_STARTED = "coordinator.started"


def logon_refused_topic(session: str) -> str:
    """``session.<name>.logon_refused``: an acceptor refused a Logon's credentials (``LogonRefusedEvent``)."""
    return protocol.session_topic(session, LOGON_REFUSED)


def state_topic(session: str) -> str:
    """``session.<name>.state``: every state change of the session (``StateEvent``)."""
    return protocol.session_topic(session, STATE)


def session_event_topic(session: str, kind: str) -> str:
    """``session.<name>.<kind>``: logon, logout, resend, reject, seqreset, ... (``SessionEventBody``)."""
    return protocol.session_topic(session, kind)


def stats_topic(session: str) -> str:
    """``session.<name>.stats``: the session's counters, once a second (``SessionStats``)."""
    return protocol.session_topic(session, STATS)


def rejected_topic(session: str) -> str:
    """``session.<name>.rejected``: a message sent back to its origin unsent (``RejectedEvent``)."""
    return protocol.session_topic(session, REJECTED)


def throttled_topic(session: str) -> str:
    """``session.<name>.throttled``: messages over the throttle, once a second at most (``ThrottledEvent``)."""
    return protocol.session_topic(session, THROTTLED)


def switch_topic(session: str) -> str:
    """``session.<name>.switch``: an initiator moved to its other connection (``SwitchEvent``)."""
    return protocol.session_topic(session, SWITCH)


def pair_topic(pair: str, cmd: CommandName) -> str:
    """``pair.<handler>-<driven>.<cmd>``: a command the coordinator sent for a pair (``PairCommandEvent``)."""
    return f"pair.{pair}.{cmd.value}"


#: ``(name, what)`` of a ``session.<name>.<what>`` topic, else None (``broker.protocol``'s parser).
parse_session_topic = protocol.parse_session_topic


# ----------------------------------------------------------------- event bodies


@dataclass(frozen=True, slots=True)
class StateEvent:
    """The body of ``session.<name>.state``.

    ``incarnation`` tells one process of the session from the next, and
    ``state_changes`` counts its changes so far: with them the coordinator
    tells a restart and a stale report from news.
    """

    old: SessionState
    new: SessionState
    reason: str
    next_sender: int
    next_target: int
    time_ns: int
    incarnation: str = ""
    state_changes: int | None = None

    @classmethod
    def of(cls, change: StateChanged, incarnation: str, state_changes: int) -> StateEvent:
        return cls(change.old, change.new, change.reason, change.next_sender, change.next_target, change.utc_ns,
                   incarnation, state_changes)

    def to_body(self) -> dict[str, Any]:
        return {"old": self.old.value, "new": self.new.value, "reason": self.reason,
                "next_sender": self.next_sender, "next_target": self.next_target, "time_ns": self.time_ns,
                "incarnation": self.incarnation, "state_changes": self.state_changes}

    @classmethod
    def from_body(cls, body: object) -> StateEvent | Malformed:
        what = "state event"
        try:
            b = _map(body, what)
            return cls(_state(b, "old", what), _state(b, "new", what), _text(b, "reason", what),
                       _int(b, "next_sender", what), _int(b, "next_target", what), _int(b, "time_ns", what),
                       _text(b, "incarnation", what, default=""), _optional_int(b, "state_changes", what))
        except _Invalid as exc:
            return Malformed(str(exc))


@dataclass(frozen=True, slots=True)
class SessionEventBody:
    """The body of ``session.<name>.<kind>``: a session-level occurrence (``actors.fix.outputs.SessionEvent``)."""

    kind: str
    text: str
    next_sender: int
    next_target: int
    time_ns: int

    @classmethod
    def of(cls, event: SessionEvent) -> SessionEventBody:
        return cls(event.kind, event.text, event.next_sender, event.next_target, event.utc_ns)

    def to_body(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "next_sender": self.next_sender,
                "next_target": self.next_target, "time_ns": self.time_ns}

    @classmethod
    def from_body(cls, body: object) -> SessionEventBody | Malformed:
        what = "session event"
        try:
            b = _map(body, what)
            return cls(_text(b, "kind", what), _text(b, "text", what), _int(b, "next_sender", what),
                       _int(b, "next_target", what), _int(b, "time_ns", what))
        except _Invalid as exc:
            return Malformed(str(exc))


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """The body of ``session.<name>.rejected``: a message that outlived its time-to-live went back unsent."""

    msg_type: str
    seq: int
    text: str
    #: ClOrdID(11) of the message, "" when it has none.
    cl_ord_id: str = ""

    def to_body(self) -> dict[str, Any]:
        return {"kind": REJECTED, "msg_type": self.msg_type, "seq": self.seq, "text": self.text,
                "cl_ord_id": self.cl_ord_id}

    @classmethod
    def from_body(cls, body: object) -> RejectedEvent | Malformed:
        what = "rejected event"
        try:
            b = _map(body, what)
            if b.get("kind") != REJECTED:
                raise _bad(what, "kind", b.get("kind"), repr(REJECTED))
            return cls(_text(b, "msg_type", what), _int(b, "seq", what), _text(b, "text", what),
                       _text(b, "cl_ord_id", what, default=""))
        except _Invalid as exc:
            return Malformed(str(exc))


@dataclass(frozen=True, slots=True)
class ThrottledEvent:
    """The body of ``session.<name>.throttled``: messages over a throttle since the last such event.

    ``direction`` is ``inbound`` (from the counterparty) or ``outbound`` (for
    it); ``action`` what they got: ``reject`` (a BusinessMessageReject),
    ``delay`` (held, forwarded later), ``queue`` (outbound, sent later) or
    ``hold`` (outbound, the queue was full: left with the peer's bus outbox,
    which repeats it). ``count`` and ``msg_types`` cover this event, ``total``
    every one since the actor started; ``queued`` is the queue's depth now;
    ``first_seq`` and ``last_seq`` the MsgSeqNums (inbound; 0 outbound).
    """

    direction: str
    action: str
    count: int
    total: int
    msg_types: Mapping[str, int]
    limit: str
    queued: int = 0
    first_seq: int = 0
    last_seq: int = 0
    text: str = ""

    def to_body(self) -> dict[str, Any]:
        return {"kind": THROTTLED, "direction": self.direction, "action": self.action, "count": self.count,
                "total": self.total, "msg_types": dict(self.msg_types), "limit": self.limit, "queued": self.queued,
                "first_seq": self.first_seq, "last_seq": self.last_seq, "text": self.text}

    @classmethod
    def from_body(cls, body: object) -> ThrottledEvent | Malformed:
        what = "throttled event"
        try:
            b = _map(body, what)
            if b.get("kind") != THROTTLED:
                raise _bad(what, "kind", b.get("kind"), repr(THROTTLED))
            return cls(_text(b, "direction", what), _text(b, "action", what), _int(b, "count", what),
                       _int(b, "total", what), _counts(b, "msg_types", what), _text(b, "limit", what),
                       _int(b, "queued", what), _int(b, "first_seq", what), _int(b, "last_seq", what),
                       _text(b, "text", what, default=""))
        except _Invalid as exc:
            return Malformed(str(exc))


@dataclass(frozen=True, slots=True)
class LogonRefusedEvent:
    """The body of ``session.<name>.logon_refused``: which check refused a Logon, never what was offered.

    ``check`` is ``no_username``, ``no_password``, ``wrong_username`` or
    ``wrong_password`` (``actors.gateway.credentials.Failure``); ``failures`` the
    count since the actor started, so a monitor sees guessing without keeping a tally.
    ``address`` is the connection's IP address ("" when unknown) and
    ``locked_out_s`` how long this refusal locks that address out (0: not locked).
    """

    check: str
    failures: int
    time_ns: int
    address: str = ""
    locked_out_s: float = 0.0

    def to_body(self) -> dict[str, Any]:
        return {"kind": LOGON_REFUSED, "check": self.check, "failures": self.failures, "time_ns": self.time_ns,
                "address": self.address, "locked_out_s": self.locked_out_s}

    @classmethod
    def from_body(cls, body: object) -> LogonRefusedEvent | Malformed:
        what = "logon refused event"
        try:
            b = _map(body, what)
            if b.get("kind") != LOGON_REFUSED:
                raise _bad(what, "kind", b.get("kind"), repr(LOGON_REFUSED))
            locked = b.get("locked_out_s", 0.0)
            if not isinstance(locked, int | float) or isinstance(locked, bool):
                raise _bad(what, "locked_out_s", locked, "seconds")
            return cls(_text(b, "check", what), _int(b, "failures", what), _int(b, "time_ns", what),
                       str(b.get("address", "")), float(locked))
        except _Invalid as exc:
            return Malformed(str(exc))


@dataclass(frozen=True, slots=True)
class SwitchEvent:
    """The body of ``session.<name>.switch``: ``{"from", "to", "why"}``, each connection as the initiator names it."""

    #: The connection left (``from`` on the wire), e.g. ``primary 127.0.0.1:9877``.
    old: str
    #: The connection moved to (``to`` on the wire).
    new: str
    why: str

    def to_body(self) -> dict[str, Any]:
        return {"from": self.old, "to": self.new, "why": self.why}

    @classmethod
    def from_body(cls, body: object) -> SwitchEvent | Malformed:
        what = "switch event"
        try:
            b = _map(body, what)
            return cls(_text(b, "from", what), _text(b, "to", what), _text(b, "why", what))
        except _Invalid as exc:
            return Malformed(str(exc))


@dataclass(frozen=True, slots=True)
class PairCommandEvent:
    """The body of ``pair.<pair>.<cmd>``: a command the coordinator decided on, and whether the bus took it."""

    session: str
    cmd: CommandName
    text: str
    why: str
    sent: bool

    def to_body(self) -> dict[str, Any]:
        return {"session": self.session, "cmd": self.cmd.value, "text": self.text, "why": self.why,
                "sent": self.sent}

    @classmethod
    def from_body(cls, body: object) -> PairCommandEvent | Malformed:
        what = "pair command event"
        try:
            b = _map(body, what)
            name = b.get("cmd")
            cmd = _COMMAND_NAMES.get(name) if isinstance(name, str) else None
            if cmd is None:
                raise _bad(what, "cmd", name, "a command name")
            return cls(_text(b, "session", what), cmd, _text(b, "text", what, default=""),
                       _text(b, "why", what, default=""), _bool(b, "sent", what))
        except _Invalid as exc:
            return Malformed(str(exc))


@dataclass(frozen=True, slots=True)
class CoordinatorStarted:
    """The body of ``coordinator.started``: the pairs it enforces, ``<handler>-<driven>`` each."""

    pairs: tuple[str, ...]

    def to_body(self) -> dict[str, Any]:
        return {"pairs": list(self.pairs)}

    @classmethod
    def from_body(cls, body: object) -> CoordinatorStarted | Malformed:
        what = "coordinator.started event"
        try:
            pairs = _map(body, what).get("pairs")
            if not isinstance(pairs, list | tuple) or not all(isinstance(p, str) for p in pairs):
                raise _bad(what, "pairs", pairs, "a list of pair names")
            return cls(tuple(pairs))
        except _Invalid as exc:
            return Malformed(str(exc))


@dataclass(frozen=True, slots=True)
class HistogramBody:
    """Observations in fixed buckets (``actors.shell.traffic.Histogram``), as they travel.

    ``counts[i]`` is the number of values ``<= bounds[i]`` and above the bound
    before it (not cumulative); ``counts`` has one more entry than ``bounds``,
    for the values above the last bound.
    """

    bounds: tuple[float, ...] = ()
    counts: tuple[int, ...] = (0,)
    sum: float = 0.0
    count: int = 0

    def to_body(self) -> dict[str, Any]:
        return {"bounds": list(self.bounds), "counts": list(self.counts), "sum": self.sum, "count": self.count}

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, values <= it)`` per bucket, ``inf`` last: Prometheus's ``le`` buckets."""
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out

    @classmethod
    def parse(cls, value: object, what: str) -> HistogramBody:
        b = _map(value, what)
        bounds, counts = b.get("bounds"), b.get("counts")
        if not isinstance(bounds, list | tuple) or not all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in bounds):
            raise _bad(what, "bounds", bounds, "a list of numbers")
        if not isinstance(counts, list | tuple) or len(counts) != len(bounds) + 1 or not all(
                isinstance(x, int) and not isinstance(x, bool) for x in counts):
            raise _bad(what, "counts", counts, "a list of counts, one more than the bounds")
        return cls(tuple(float(x) for x in bounds), tuple(counts), _float(b, "sum", what), _int(b, "count", what))


@dataclass(frozen=True, slots=True)
class SessionStats:
    """The body of ``session.<name>.stats`` and the ``stats`` of a status reply: a session's counters.

    Counts are since the actor's process started (``incarnation``): a
    restart starts them at zero again, which Prometheus reads as a counter
    reset. Times are UTC nanoseconds; ``last_received_ns`` and
    ``last_sent_ns`` are as precise as the publishing interval (the first
    reading that saw the count move), which keeps every clock read off the
    message path. ``rejects`` is ``{"sent"|"received": {reason: count}}``
    (``actors.gateway.stats``), ``queues`` ``{"outbox", "backlog", "held",
    "unacked": depth}``.
    """

    time_ns: int
    state: SessionState
    role: str
    pid: int
    incarnation: str
    next_sender: int
    next_target: int
    #: The session this one forwards to ("" when it has none).
    peer: str = ""
    #: The counterparty's ``ip:port`` while connected, else "".
    remote_address: str = ""
    logged_on_since_ns: int | None = None
    last_received_ns: int | None = None
    last_sent_ns: int | None = None
    #: New messages sent, by MsgType (session messages included).
    sent: Mapping[str, int] = field(default_factory=dict)
    #: Application messages received, by MsgType.
    received: Mapping[str, int] = field(default_factory=dict)
    resent: int = 0
    gap_fills_sent: int = 0
    resend_requests_answered: int = 0
    rejects: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    logons: int = 0
    logouts: int = 0
    #: Session events by kind (``actors.fix.outputs.EVENT_KINDS``, and ``rejected``).
    events: Mapping[str, int] = field(default_factory=dict)
    logon_failures: int = 0
    queues: Mapping[str, int] = field(default_factory=dict)
    #: From the peer session's receipt of a message to its write by this session (seconds).
    forward_latency: HistogramBody = field(default_factory=HistogramBody)
    #: One sync of the store's messages (seconds).
    store_sync: HistogramBody = field(default_factory=HistogramBody)
    #: The actor process's CPU time (user + system) and resident memory.
    cpu_s: float = 0.0
    rss_bytes: int = 0
    #: When the first of the session's TLS certificates (its own, the CAs it trusts) ends, Unix seconds; None
    #: without TLS (``actors.shell.certificates``).
    tls_expires_s: int | None = None

    def to_body(self) -> dict[str, Any]:
        return {
            "time_ns": self.time_ns, "state": self.state.value, "role": self.role, "pid": self.pid,
            "incarnation": self.incarnation, "next_sender": self.next_sender, "next_target": self.next_target,
            "peer": self.peer, "remote_address": self.remote_address,
            "logged_on_since_ns": self.logged_on_since_ns, "last_received_ns": self.last_received_ns,
            "last_sent_ns": self.last_sent_ns, "sent": dict(self.sent), "received": dict(self.received),
            "resent": self.resent, "gap_fills_sent": self.gap_fills_sent,
            "resend_requests_answered": self.resend_requests_answered,
            "rejects": {direction: dict(reasons) for direction, reasons in self.rejects.items()},
            "logons": self.logons, "logouts": self.logouts, "events": dict(self.events),
            "logon_failures": self.logon_failures, "queues": dict(self.queues),
            "forward_latency": self.forward_latency.to_body(), "store_sync": self.store_sync.to_body(),
            "cpu_s": self.cpu_s, "rss_bytes": self.rss_bytes, "tls_expires_s": self.tls_expires_s,
        }

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())

    @property
    def received_total(self) -> int:
        return sum(self.received.values())

    @classmethod
    def from_body(cls, body: object) -> SessionStats | Malformed:
        try:
            return cls.parse(body, "stats")
        except _Invalid as exc:
            return Malformed(str(exc))

    @classmethod
    def parse(cls, body: object, what: str) -> SessionStats:
        """As ``from_body``, raising ``_Invalid`` (for a reader that nests it)."""
        b = _map(body, what)
        rejects_value = b.get("rejects", {})
        if not isinstance(rejects_value, Mapping):
            raise _bad(what, "rejects", rejects_value, "a map of directions")
        rejects = {str(direction): _counts(rejects_value, direction, f"{what}'s rejects")
                   for direction in rejects_value}
        return cls(
            _int(b, "time_ns", what), _state(b, "state", what), _text(b, "role", what), _int(b, "pid", what),
            _text(b, "incarnation", what, default=""), _int(b, "next_sender", what), _int(b, "next_target", what),
            _text(b, "peer", what, default=""), _text(b, "remote_address", what, default=""),
            _optional_int(b, "logged_on_since_ns", what), _optional_int(b, "last_received_ns", what),
            _optional_int(b, "last_sent_ns", what), _counts(b, "sent", what), _counts(b, "received", what),
            _int(b, "resent", what), _int(b, "gap_fills_sent", what), _int(b, "resend_requests_answered", what),
            rejects, _int(b, "logons", what), _int(b, "logouts", what), _counts(b, "events", what),
            _int(b, "logon_failures", what), _counts(b, "queues", what),
            HistogramBody.parse(b.get("forward_latency"), f"{what}'s forward_latency"),
            HistogramBody.parse(b.get("store_sync"), f"{what}'s store_sync"),
            _float(b, "cpu_s", what), _int(b, "rss_bytes", what), _optional_int(b, "tls_expires_s", what))
