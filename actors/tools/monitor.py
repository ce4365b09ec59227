"""Watch the event plane: one readable line per bus event, and a warning when an actor falls silent.

    fixmesh monitor [TOPIC_PREFIX ...] [--endpoint tcp://127.0.0.1:5572] [--json]
                             [--silence-s 3.0] [--count N] [--duration-s S]
                             [--config T.yaml] [--key NAME|FILE] [--broker-key FILE]

On a bus with keys only a key with the right to subscribe (an operator's or
a subscriber's, listed under the topology's ``bus:``) may read events:
``--config`` takes the XPUB endpoint and the keys folder from the topology,
``--key`` (or ``FIXMESH_BUS_KEY``) names the key; without a topology,
``--key FILE.key_secret --broker-key BROKER.key`` give both files. The
broker's ``audit.command`` and ``audit.refused`` events read as one line each.

The monitor is a plain SUB client of the broker's XPUB endpoint, so an
operator can attach it from any host that reaches that port, as often as
wanted, without the broker or the sessions knowing or waiting for it. It
never publishes and never answers: watching must not change what is watched.

With a pair of brokers (the topology's ``broker.backup``, read with
``--config``) the monitor follows the one that serves: it starts on the
primary's XPUB and moves to the other when the broker it reads has said
nothing for ``BROKER_SILENCE_S`` (every broker publishes
``broker.heartbeat`` each second) or says it is passive; each move is a
warning line on stderr. ``BrokerFollower`` decides, without a socket.

The work is split the way the session actors are: ``Monitor`` is a sans-IO
core (frames and the time in, lines out) with the formatting and
``SilenceTracker`` as pure functions and classes, tested without sockets;
``run`` is the thin shell that owns the socket, the signals, the clock and the
output streams and makes no decision of its own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

import zmq

from actors.fix.secrets import mask_wire
from actors.fix.timefmt import NS_PER_S, Instant
from actors.gateway.vocabulary import STATE, STATS, SessionEventBody, SessionStats, StateEvent
from actors.shell import clock
from actors.tools.keys import KEY_ENV, key_argument
from broker import protocol

if TYPE_CHECKING:
    from actors.gateway.bus import CurveKeys

Event = tuple[str, dict[str, Any]]

#: An actor that misses this long of heartbeats is reported: the broker's own liveness rule
#: (``LIVENESS`` missed intervals), so the monitor and the broker agree on who is gone.
DEFAULT_SILENCE_S = protocol.HEARTBEAT_INTERVAL_S * protocol.LIVENESS

#: The monitor of a pair of brokers moves to the other one after this long without an event from its own.
BROKER_SILENCE_S = protocol.HEARTBEAT_INTERVAL_S * protocol.LIVENESS
#: ... and at once when its broker says it does not serve, but never twice within this long.
MIN_SWITCH_S = 0.25
_NOT_SERVING = frozenset({protocol.STATE_PASSIVE, protocol.STATE_STARTING})

SILENT_TOPIC = "monitor.actor.silent"
BACK_TOPIC = "monitor.actor.back"
RESTARTED_TOPIC = "monitor.actor.restarted"
AUDIT_COMMAND_TOPIC = protocol.audit_topic("command")
AUDIT_REFUSED_TOPIC = protocol.audit_topic("refused")
BROKER_SWITCH_TOPIC = protocol.broker_topic("switch")

_HEARTBEAT_PREFIX = "actor."
_HEARTBEAT_SUFFIX = ".heartbeat"
#: Wide enough for ``session.<name>.resend_request`` with a short name, so columns line up.
TOPIC_WIDTH = 28
#: The longest the shell blocks in one poll, so that SIGINT/SIGTERM are honoured promptly even though
#: pyzmq resumes a poll interrupted by a signal.
MAX_WAIT_S = 0.2
#: Messages handled per wake-up before timers are looked at again, so a flood cannot hide a silence.
MAX_BATCH = 1000
_MS_PER_S = 1000
_NS_PER_MS = 1_000_000


# ----------------------------------------------------------------- formatting (pure)


def utc_text(time_ns: int) -> str:
    """ISO 8601 UTC with milliseconds: sortable, unambiguous across hosts and time zones."""
    seconds, rest_ns = divmod(time_ns, NS_PER_S)
    try:
        stamp = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"@{time_ns}ns"
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{rest_ns // _NS_PER_MS:03d}Z"


def check_event(frames: Sequence[bytes]) -> Event:
    """Decode an event and insist on the two keys every line relies on, so formatting cannot fail later.

    Raises ``protocol.ProtocolError`` for anything else; the caller reports and skips it.
    """
    topic, body = protocol.decode_event(list(frames))
    time_ns = body.get("time_ns")
    if not isinstance(time_ns, int) or isinstance(time_ns, bool):
        raise protocol.ProtocolError(f"time_ns is {time_ns!r}, expected an integer")
    actor = body.get("actor")
    if not isinstance(actor, str):
        raise protocol.ProtocolError(f"actor is {actor!r}, expected a string")
    return topic, body


def describe(topic: str, body: Mapping[str, Any]) -> str:
    """The essentials of one event, chosen by topic, so a session's story reads line by line."""
    if topic == SILENT_TOPIC:
        last = body.get("last_heartbeat_ns")
        last_text = utc_text(last) if isinstance(last, int) and not isinstance(last, bool) else "?"
        silent_s = _seconds_text(body.get("silent_s"))
        return f"actor {body.get('actor')} silent for {silent_s} s (last heartbeat at {last_text})"
    if topic == BACK_TOPIC:
        return f"actor {body.get('actor')} back after {_seconds_text(body.get('silent_s'))} s"
    if topic == RESTARTED_TOPIC:
        return (f"actor {body.get('actor')} restarted: a new process heard {_seconds_text(body.get('silent_s'))} s "
                f"after the last heartbeat of the old one (incarnation {body.get('previous')} -> "
                f"{body.get('incarnation')})")
    if topic == AUDIT_COMMAND_TOPIC:
        return _audit_command_text(body)
    if topic == AUDIT_REFUSED_TOPIC:
        return _audit_refused_text(body)
    if topic == BROKER_SWITCH_TOPIC:
        return (f"{body.get('role', '?')} broker {body.get('instance', '?')}: {body.get('from', '?')} -> "
                f"{body.get('to', '?')}: {body.get('why', '')}")
    parts = topic.split(".")
    if parts[0] == "session" and len(parts) >= 3:
        if parts[-1] == STATE:
            return _state_text(body)
        if parts[-1] == STATS:
            return _stats_text(body)
        return _session_event_text(parts[-1], body)
    return key_values(body)


def format_line(topic: str, body: Mapping[str, Any]) -> str:
    """One human line: UTC time of the event, topic, essentials."""
    return f"{utc_text(body['time_ns'])}  {topic:<{TOPIC_WIDTH}}  {describe(topic, body)}".rstrip()


def json_line(topic: str, body: Mapping[str, Any]) -> str:
    """One JSON object per line; the body is nested so that no body key can clash with ``topic``."""
    return json.dumps({"topic": topic, "body": _jsonable(dict(body))}, ensure_ascii=False, separators=(",", ":"))


def key_values(body: Mapping[str, Any]) -> str:
    """``key=value`` in the publisher's order; ``time_ns`` is left out because the line starts with it."""
    return " ".join(f"{key}={value_text(value)}" for key, value in body.items() if key != "time_ns")


def value_text(value: Any) -> str:
    """A value as one token: bare when it cannot be misread, JSON-quoted otherwise."""
    if isinstance(value, bytes):
        value = _bytes_text(value)
    if isinstance(value, str):
        if value and not any(c.isspace() or c in "=\"'" for c in value):
            return value
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"))


def _audit_command_text(body: Mapping[str, Any]) -> str:
    """``key ops as ctl-ops-42 -> venue: logout text="end of day" (forwarded)``: who, what, and what became of it."""
    args = body.get("args")
    arg_text = " ".join(f"{k}={value_text(v)}" for k, v in args.items()) if isinstance(args, Mapping) else ""
    what = " ".join(part for part in (_field(body, "command"), arg_text) if part)
    return (f"key {_field(body, 'principal')} as {_field(body, 'src')} -> {_field(body, 'dst')}: {what} "
            f"({_field(body, 'outcome')})")


def _audit_refused_text(body: Mapping[str, Any]) -> str:
    """``refused (name not allowed): key client may not act as 'venue': ...``, with the count of repeats."""
    repeated = body.get("repeated")
    more = f" (and {repeated} more like it)" if isinstance(repeated, int) and repeated else ""
    return f"refused ({_field(body, 'reason')}): {_plain(body.get('text', ''))}{more}"


def _state_text(body: Mapping[str, Any]) -> str:
    """``OLD -> NEW: reason (out N, in M)``.

    A body that is not a state event of this gateway (another version's, a hand-made one) is shown as far
    as it goes, with ``?`` for what is missing: the monitor shows what was sent, it does not judge it.
    """
    event = StateEvent.from_body(body)
    if isinstance(event, StateEvent):
        return _described(f"{event.old.value} -> {event.new.value}", _plain(event.reason) if event.reason else None,
                          _numbers_text(str(event.next_sender), str(event.next_target)))
    reason = body.get("reason")
    return _described(f"{_field(body, 'old')} -> {_field(body, 'new')}",
                      None if reason in (None, "") else _plain(reason), _sequence_text(body))


def _stats_text(body: Mapping[str, Any]) -> str:
    """``CONNECTED: sent 12 received 10, cpu 0.8 s, rss 41 MiB (out 14, in 11)``: a session's reading in brief."""
    stats = SessionStats.from_body(body)
    if not isinstance(stats, SessionStats):
        return key_values(body)
    return _described(stats.state.value, f"sent {stats.sent_total} received {stats.received_total}, cpu "
                      f"{stats.cpu_s:.1f} s, rss {stats.rss_bytes >> 20} MiB",
                      _numbers_text(str(stats.next_sender), str(stats.next_target)))


def _session_event_text(what: str, body: Mapping[str, Any]) -> str:
    """``kind: text (out N, in M)``; the topic's last part stands in for a missing kind."""
    event = SessionEventBody.from_body(body)
    if isinstance(event, SessionEventBody):
        return _described(_plain(event.kind) if event.kind else what, _plain(event.text) if event.text else None,
                          _numbers_text(str(event.next_sender), str(event.next_target)))
    kind, detail = body.get("kind"), body.get("text")
    return _described(_plain(kind) if kind not in (None, "") else what,
                      None if detail in (None, "") else _plain(detail), _sequence_text(body))


def _described(head: str, detail: str | None, numbers: str) -> str:
    """``head: detail numbers``, the detail left out when there is none."""
    return f"{head}: {detail}{numbers}" if detail is not None else head + numbers


def _sequence_text(body: Mapping[str, Any]) -> str:
    """`` (out N, in M)`` from an untyped body; nothing when it has neither number."""
    if "next_sender" not in body and "next_target" not in body:
        return ""
    return _numbers_text(_field(body, "next_sender"), _field(body, "next_target"))


def _numbers_text(next_sender: str, next_target: str) -> str:
    """`` (out N, in M)``: the next numbers each way, the first thing to compare with the peer's log."""
    return f" (out {next_sender}, in {next_target})"


def _field(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    return "?" if value is None else _plain(value)


def _plain(value: Any) -> str:
    """Free text on one line: a FIX text with a newline or SOH must not break the line-per-event contract."""
    text = _bytes_text(value) if isinstance(value, bytes) else str(value)
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _bytes_text(data: bytes) -> str:
    """Bytes are usually FIX: SOH shown as ``|`` like every FIX log viewer does."""
    return mask_wire(data).decode("utf-8", errors="backslashreplace").replace("\x01", "|")


def _seconds_text(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.1f}"
    return "?"


def _jsonable(value: Any) -> Any:
    """What ``json.dumps`` accepts: msgpack may hand over bytes, bytes keys and non-finite floats."""
    if isinstance(value, dict):
        return {_key_text(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes):
        return _bytes_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _key_text(key: Any) -> str:
    return _bytes_text(key) if isinstance(key, bytes) else str(key)


# ----------------------------------------------------------------- silence tracking (pure)


@dataclass(slots=True)
class _Watch:
    last_heard_mono_s: float
    last_heartbeat_ns: int
    #: The actor process's incarnation from its heartbeats; None from a publisher that sends none.
    incarnation: str | None = None
    silent: bool = False


def heartbeat_actor(topic: str) -> str | None:
    """The actor name of ``actor.<name>.heartbeat``, else None; a name may itself contain dots."""
    if topic.startswith(_HEARTBEAT_PREFIX) and topic.endswith(_HEARTBEAT_SUFFIX):
        name = topic[len(_HEARTBEAT_PREFIX) : -len(_HEARTBEAT_SUFFIX)]
        return name or None
    return None


class SilenceTracker:
    """Which actors have stopped heartbeating, measured on the monitor's monotonic clock.

    Only actors heard at least once are known: the monitor cannot tell a missing
    actor from one that was never meant to run. Gaps are measured from when the
    monitor received each heartbeat, never from the publisher's ``time_ns``, so a
    remote host's clock skew cannot fake or hide a silence. Each silence is
    reported once, and its end once.

    A process restarted faster than the limit (kill -9, then supervisord) leaves
    no silence to report, so each heartbeat's ``incarnation`` is compared with the
    last one: a new one is a restart, reported whether or not a silence was.
    """

    def __init__(self, silence_s: float) -> None:
        if silence_s <= 0:
            raise ValueError("silence_s must be positive")
        self.silence_s = silence_s
        self._watches: dict[str, _Watch] = {}

    def heard(self, name: str, now: Instant, heartbeat_ns: int, incarnation: str | None = None) -> list[Event]:
        """A heartbeat arrived: ``monitor.actor.back`` if the actor had been reported silent, then
        ``monitor.actor.restarted`` if it comes from a new incarnation."""
        watch = self._watches.get(name)
        events: list[Event] = []
        if watch is None:
            self._watches[name] = _Watch(now.mono_s, heartbeat_ns, incarnation)
            return events
        silent_s = round(now.mono_s - watch.last_heard_mono_s, 3)
        if watch.silent:
            events.append((BACK_TOPIC, {"time_ns": now.utc_ns, "actor": name, "silent_s": silent_s}))
        if incarnation is not None and watch.incarnation is not None and incarnation != watch.incarnation:
            events.append((RESTARTED_TOPIC, {"time_ns": now.utc_ns, "actor": name, "silent_s": silent_s,
                                             "incarnation": incarnation, "previous": watch.incarnation}))
        watch.last_heard_mono_s = now.mono_s
        watch.last_heartbeat_ns = heartbeat_ns
        if incarnation is not None:
            watch.incarnation = incarnation
        watch.silent = False
        return events

    def check(self, now: Instant) -> list[Event]:
        """``monitor.actor.silent`` for each actor whose silence reached the limit since the last check."""
        events: list[Event] = []
        for name, watch in self._watches.items():
            silent_s = now.mono_s - watch.last_heard_mono_s
            if not watch.silent and silent_s >= self.silence_s:
                watch.silent = True
                events.append((SILENT_TOPIC, {"time_ns": now.utc_ns, "actor": name, "silent_s": round(silent_s, 3),
                                              "last_heartbeat_ns": watch.last_heartbeat_ns}))
        return events

    def next_deadline_s(self) -> float | None:
        """The monotonic time at which ``check`` next has something to say; None when nothing is pending."""
        pending = [w.last_heard_mono_s + self.silence_s for w in self._watches.values() if not w.silent]
        return min(pending, default=None)


class BrokerFollower:
    """Which broker of a pair the monitor reads: the one that serves. Pure: time is an argument.

    Rules: start on the primary (index 0); every event read from a broker shows it alive; a ``broker.*``
    event whose ``state`` is passive or starting means it does not serve; move to the other broker after
    ``BROKER_SILENCE_S`` without an event, or at once when it does not serve, but at most once per
    ``MIN_SWITCH_S``. With one broker, never move.
    """

    def __init__(self, endpoints: Sequence[str], now_s: float) -> None:
        if not 1 <= len(endpoints) <= 2:
            raise ValueError("one broker or a pair")
        self.endpoints = tuple(endpoints)
        self.index = 0
        self._heard_s = now_s
        self._switched_s = now_s
        self._leave_s: float | None = None
        self._why = ""

    @property
    def endpoint(self) -> str:
        return self.endpoints[self.index]

    def heard(self, topic: str, body: Mapping[str, Any], now_s: float) -> None:
        self._heard_s = now_s
        if topic.startswith(protocol.BROKER_TOPICS) and body.get("state") in _NOT_SERVING and self._leave_s is None:
            self._leave_s = max(now_s, self._switched_s + MIN_SWITCH_S)
            self._why = f"it is {body.get('state')}"

    def next_deadline_s(self) -> float | None:
        if len(self.endpoints) < 2:
            return None
        silent_s = self._heard_s + BROKER_SILENCE_S
        return silent_s if self._leave_s is None else min(silent_s, self._leave_s)

    def switch(self, now_s: float) -> str | None:
        """When it is time to move: the reason (the caller moves the socket to ``endpoint``); else None."""
        due_s = self.next_deadline_s()
        if due_s is None or now_s < due_s:
            return None
        why = self._why if self._leave_s is not None and now_s >= self._leave_s else \
            f"nothing from it for {now_s - self._heard_s:.1f} s"
        old = self.endpoint
        self.index = 1 - self.index
        self._heard_s = self._switched_s = now_s
        self._leave_s = None
        self._why = ""
        return f"the broker at {old} does not serve ({why}); reading {self.endpoint}"


# ----------------------------------------------------------------- the sans-IO monitor


@dataclass(frozen=True, slots=True)
class Line:
    """One line of output; warnings go to stderr so that stdout stays clean for ``--json`` readers."""

    text: str
    warning: bool = False


class Monitor:
    """Frames and the time in, lines out: everything the monitor decides, without a socket or a clock."""

    def __init__(self, *, json_output: bool = False, silence_s: float = DEFAULT_SILENCE_S) -> None:
        self.json_output = json_output
        self.tracker = SilenceTracker(silence_s)
        #: Well-formed bus events received, which ``--count`` bounds; the monitor's own lines are not counted.
        self.events = 0

    def receive(self, frames: Sequence[bytes], now: Instant) -> list[Line]:
        try:
            topic, body = check_event(frames)
        except protocol.ProtocolError as exc:
            return [Line(f"{utc_text(now.utc_ns)}  warning: malformed event skipped ({_topic_hint(frames)}): {exc}",
                         warning=True)]
        self.events += 1
        lines = [self._render(topic, body)]
        name = heartbeat_actor(topic)
        if name is not None:
            incarnation = body.get("incarnation")
            if not isinstance(incarnation, str):
                incarnation = None
            heard = self.tracker.heard(name, now, body["time_ns"], incarnation)
            lines.extend(self._render(*event) for event in heard)
        return lines

    def tick(self, now: Instant) -> list[Line]:
        return [self._render(*event) for event in self.tracker.check(now)]

    def next_deadline_s(self) -> float | None:
        return self.tracker.next_deadline_s()

    def _render(self, topic: str, body: Mapping[str, Any]) -> Line:
        return Line(json_line(topic, body) if self.json_output else format_line(topic, body))


def _topic_hint(frames: Sequence[bytes]) -> str:
    """Enough to find the publisher: the topic it used and the frame sizes it sent."""
    if not frames:
        return "no frames"
    sizes = "+".join(str(len(frame)) for frame in frames)
    return f"topic {_bytes_text(bytes(frames[0][:80]))!r}, frames of {sizes} bytes"


# ----------------------------------------------------------------- options


@dataclass(frozen=True, slots=True)
class Options:
    prefixes: tuple[str, ...] = ()
    endpoint: str = protocol.DEFAULT_XPUB_ENDPOINT
    json_output: bool = False
    silence_s: float = DEFAULT_SILENCE_S
    count: int | None = None
    duration_s: float | None = None
    #: A bus with keys: the monitor's key pair and the broker's public key.
    curve: CurveKeys | None = None
    #: The backup broker's XPUB, for a pair of brokers (from the topology); None: one broker.
    backup_endpoint: str | None = None


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = _parser()
    args = parser.parse_args(argv)
    endpoint = args.endpoint
    curve = None
    if args.config is None and not args.key:
        return Options(prefixes=tuple(args.prefixes), endpoint=endpoint or protocol.DEFAULT_XPUB_ENDPOINT,
                       json_output=args.json, silence_s=args.silence_s, count=args.count,
                       duration_s=args.duration_s)
    # Only now: a monitor is often started with its broker, and every import delays its subscription.
    from actors.gateway.bus import KeyFileError, load_curve_keys
    from actors.gateway.topology import ConfigError, load_topology

    backup_endpoint = None
    try:
        if args.config is not None:
            topology = load_topology(args.config)
            if endpoint is None and topology.broker.backup is not None:
                backup_endpoint = topology.broker.backup.xpub
            endpoint = endpoint or topology.broker.xpub
            key = args.key or os.environ.get(KEY_ENV)
            if topology.bus is not None:
                if not key:
                    parser.error(f"{args.config}: this bus has keys, so reading its events needs a key with the right "
                                 f"to subscribe: pass --key NAME or set {KEY_ENV} (bus.operators, bus.subscribers)")
                principal, secret_file = key_argument(key)
                curve = topology.bus_keys(principal, secret_file)
        elif args.key:
            principal, secret_file = key_argument(args.key)
            if args.broker_key is None or secret_file is None:
                parser.error("--key without --config is the path of a .key_secret file, with --broker-key: the "
                             "broker's public .key file")
            curve = load_curve_keys(principal, secret_file, Path(args.broker_key))
    except (ConfigError, KeyFileError) as exc:
        parser.error(str(exc))
    return Options(prefixes=tuple(args.prefixes), endpoint=endpoint or protocol.DEFAULT_XPUB_ENDPOINT,
                   json_output=args.json, silence_s=args.silence_s, count=args.count, duration_s=args.duration_s,
                   curve=curve, backup_endpoint=backup_endpoint)


def _parser() -> argparse.ArgumentParser:
    invoked_as = sys.argv[0] if sys.argv and not sys.argv[0].endswith(".py") else "fixmesh monitor"
    parser = argparse.ArgumentParser(
        prog=invoked_as,
        description="Print the events of the fixmesh event plane, one line each, and warn when an actor falls silent.",
    )
    parser.add_argument("prefixes", nargs="*", metavar="TOPIC_PREFIX",
                        help="only topics starting with one of these (e.g. session.venue actor.); default: all")
    parser.add_argument("--endpoint", default=None,
                        help="the broker's XPUB endpoint (default: the topology's broker.xpub, else "
                             f"{protocol.DEFAULT_XPUB_ENDPOINT})")
    parser.add_argument("--json", action="store_true", help="one JSON object per line: {\"topic\", \"body\"}")
    parser.add_argument("--silence-s", type=_positive_float, default=DEFAULT_SILENCE_S,
                        help=f"report an actor whose heartbeats stop for this long (default: {DEFAULT_SILENCE_S:g})")
    parser.add_argument("--count", type=_positive_int, default=None, help="exit 0 after N events")
    parser.add_argument("--duration-s", type=_non_negative_float, default=None, help="exit 0 after S seconds")
    parser.add_argument("--config", help="a topology: its XPUB endpoint and, on a bus with keys, its keys folder")
    parser.add_argument("--key", help=f"on a bus with keys: a key name (with --config; default: ${KEY_ENV}) "
                                      "or a .key_secret file")
    parser.add_argument("--broker-key", help="without --config: the broker's public .key file")
    return parser


def _positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


# ----------------------------------------------------------------- the shell


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop finishes its current line and returns 0, because stopping is normal."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def run(options: Options, out: TextIO, err: TextIO, *, now: Callable[[], Instant] = clock.now,
        stop: StopFlag | None = None) -> int:
    """Subscribe and print until stopped, ``--count`` events or ``--duration-s``; returns the exit code."""
    stop = stop or StopFlag()
    monitor = Monitor(json_output=options.json_output, silence_s=options.silence_s)
    endpoints = (options.endpoint,) if options.backup_endpoint is None else (options.endpoint, options.backup_endpoint)
    follower = BrokerFollower(endpoints, now().mono_s)
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    if options.curve is not None:
        options.curve.apply(sub)
    prefixes = options.prefixes
    # Following a pair needs the brokers' own events; they are shown only when asked for.
    watching = len(endpoints) > 1 and bool(prefixes) and not any(protocol.BROKER_TOPICS.startswith(p)
                                                                 for p in prefixes)
    try:
        for endpoint in endpoints:
            try:
                sub.connect(endpoint)
            except zmq.ZMQError as exc:
                print(f"error: cannot connect to {endpoint!r}: {exc}", file=err, flush=True)
                return 2
            if endpoint != follower.endpoint:
                sub.disconnect(endpoint)  # only checked: the monitor reads one broker at a time
        for prefix in (*(prefixes or ("",)), *((protocol.BROKER_TOPICS,) if watching else ())):
            sub.subscribe(prefix)
        started = now()
        stop_at = None if options.duration_s is None else started.mono_s + options.duration_s
        while not stop.requested:
            moment = now()
            _emit(monitor.tick(moment), out, err)
            moved = follower.switch(moment.mono_s)
            if moved is not None:
                sub.disconnect(follower.endpoints[1 - follower.index])
                sub.connect(follower.endpoint)
                _emit([Line(f"{utc_text(moment.utc_ns)}  warning: {moved}", warning=True)], out, err)
            if stop_at is not None and moment.mono_s >= stop_at:
                return 0
            wait_s = _wait_s(moment.mono_s, monitor.next_deadline_s(), follower.next_deadline_s(), stop_at)
            if not sub.poll(math.ceil(wait_s * _MS_PER_S)):
                continue
            for _ in range(MAX_BATCH):
                try:
                    frames = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                arrived = now()
                if len(endpoints) > 1:
                    follower.heard(*_broker_event_of(frames), arrived.mono_s)
                    if watching and not any(frames[0].startswith(p.encode("utf-8")) for p in prefixes):
                        continue
                _emit(monitor.receive(frames, arrived), out, err)
                if options.count is not None and monitor.events >= options.count:
                    return 0
        return 0
    finally:
        sub.close(linger=0)
        context.term()


def _broker_event_of(frames: Sequence[bytes]) -> tuple[str, Mapping[str, Any]]:
    """The topic and, for a broker's own event, its body; what the follower needs (malformed: empty)."""
    if len(frames) == 2 and frames[0].startswith(protocol.BROKER_TOPICS.encode("ascii")):
        try:
            return protocol.decode_event(list(frames))
        except protocol.ProtocolError:
            return "", {}
    return "", {}


def _wait_s(now_s: float, *deadlines_s: float | None) -> float:
    """Sleep until the nearest deadline, never longer than ``MAX_WAIT_S``."""
    nearest = min((d for d in deadlines_s if d is not None), default=now_s + MAX_WAIT_S)
    return max(0.0, min(nearest - now_s, MAX_WAIT_S))


def _emit(lines: list[Line], out: TextIO, err: TextIO) -> None:
    """Flush per line: the monitor is read live, often through a pipe that would otherwise buffer minutes."""
    for line in lines:
        stream = err if line.warning else out
        stream.write(line.text + "\n")
        stream.flush()


def main(argv: list[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    stop = StopFlag()
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run(options, sys.stdout, sys.stderr, stop=stop)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader went away (``| head``): a normal end. Point stdout at /dev/null so the interpreter's
        # final flush does not complain about the same closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
