"""The monitor's formatting and silence tracking, without sockets: tables of events in, lines out, on a fake clock."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from actors.fix.timefmt import NS_PER_S, Instant
from actors.tools.monitor import (
    BACK_TOPIC,
    DEFAULT_SILENCE_S,
    RESTARTED_TOPIC,
    SILENT_TOPIC,
    Line,
    Monitor,
    Options,
    SilenceTracker,
    describe,
    format_line,
    heartbeat_actor,
    json_line,
    parse_args,
    utc_text,
    value_text,
)
from broker import protocol

#: 2026-01-01T00:00:00.123Z
T0_NS = 1_767_225_600_123_456_789
T0_TEXT = "2026-01-01T00:00:00.123Z"


@dataclass
class FakeClock:
    """Both clocks, stepped by the test: nothing here waits for real time."""

    mono_s: float = 1000.0
    utc_ns: int = T0_NS

    def now(self) -> Instant:
        return Instant(self.mono_s, self.utc_ns)

    def advance(self, seconds: float) -> Instant:
        self.mono_s += seconds
        self.utc_ns += round(seconds * NS_PER_S)
        return self.now()


def event(topic: str, **body: Any) -> list[bytes]:
    return protocol.encode_event(topic, {"time_ns": T0_NS, "actor": "venue", **body})


# ----------------------------------------------------------------- time


@pytest.mark.parametrize(
    ("time_ns", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (T0_NS, T0_TEXT),
        (T0_NS + 999_000_000 - 123_456_789, "2026-01-01T00:00:00.999Z"),
        (1_709_251_199_999_999_999, "2024-02-29T23:59:59.999Z"),
        (10**30, "@1000000000000000000000000000000ns"),
    ],
)
def test_utc_text_has_milliseconds_and_never_fails(time_ns: int, text: str) -> None:
    assert utc_text(time_ns) == text


# ----------------------------------------------------------------- one line per event

SEQ = {"next_sender": 5, "next_target": 7}

DESCRIBE_TABLE: list[tuple[str, dict[str, Any], str]] = [
    # state changes: OLD -> NEW: reason (out N, in M)
    ("session.venue.state", {"old": "LOGON_SENT", "new": "ACTIVE", "reason": "logon accepted", **SEQ},
     "LOGON_SENT -> ACTIVE: logon accepted (out 5, in 7)"),
    ("session.venue.state", {"old": "ACTIVE", "new": "DISCONNECTED", "reason": "", **SEQ},
     "ACTIVE -> DISCONNECTED (out 5, in 7)"),
    ("session.venue.state", {"old": "ACTIVE", "new": "LOGOUT_SENT", "reason": "operator"},
     "ACTIVE -> LOGOUT_SENT: operator"),
    ("session.venue.state", {"new": "ACTIVE", "next_sender": 2}, "? -> ACTIVE (out 2, in ?)"),
    ("session.a.b.state", {"old": "X", "new": "Y"}, "X -> Y"),
    # session events: kind: text (out N, in M)
    ("session.venue.resend_request", {"kind": "resend_request", "text": "BeginSeqNo=3 EndSeqNo=0", **SEQ},
     "resend_request: BeginSeqNo=3 EndSeqNo=0 (out 5, in 7)"),
    ("session.venue.reject", {"kind": "reject", "text": "tag 44 has no value\nsecond line", **SEQ},
     "reject: tag 44 has no value\\nsecond line (out 5, in 7)"),
    ("session.venue.logon", {"kind": "logon", "text": "", **SEQ}, "logon (out 5, in 7)"),
    ("session.venue.gap", {"text": "expected 7 got 9", **SEQ}, "gap: expected 7 got 9 (out 5, in 7)"),
    ("session.venue.garbled", {"kind": "garbled", "text": b"8=FIX.4.4\x019=5\x01"},
     "garbled: 8=FIX.4.4|9=5|"),
    # anything else: compact key=value, time_ns left out because the line starts with it
    ("actor.venue.heartbeat", {}, "actor=venue"),
    ("pair.p1.linked", {"handler": "venue", "driven": "client one"}, 'actor=venue handler=venue driven="client one"'),
    ("coordinator.schedule", {"open": True, "ids": [1, 2], "none": None, "ratio": 0.5},
     "actor=venue open=true ids=[1,2] none=null ratio=0.5"),
    ("broker.started", {"raw": b"a\x01b", "map": {"k": b"v"}}, 'actor=venue raw=a|b map={"k":"v"}'),
    ("session", {"kind": "logon"}, "actor=venue kind=logon"),
    # the monitor's own events, when they come back in (for instance from a --json file replayed)
    (SILENT_TOPIC, {"actor": "venue", "silent_s": 3.04, "last_heartbeat_ns": T0_NS},
     f"actor venue silent for 3.0 s (last heartbeat at {T0_TEXT})"),
    (SILENT_TOPIC, {"actor": "venue", "silent_s": "x", "last_heartbeat_ns": True},
     "actor venue silent for ? s (last heartbeat at ?)"),
    (BACK_TOPIC, {"actor": "venue", "silent_s": 4.25}, "actor venue back after 4.2 s"),
    (RESTARTED_TOPIC, {"actor": "venue", "silent_s": 0.81, "incarnation": "2a-b", "previous": "1f-a"},
     "actor venue restarted: a new process heard 0.8 s after the last heartbeat of the old one "
     "(incarnation 1f-a -> 2a-b)"),
]


@pytest.mark.parametrize(("topic", "extra", "text"), DESCRIBE_TABLE)
def test_describe_gives_the_essentials(topic: str, extra: dict[str, Any], text: str) -> None:
    body = {"time_ns": T0_NS, "actor": "venue", **extra}
    assert describe(topic, body) == text


def test_a_line_is_time_topic_essentials() -> None:
    body = {"time_ns": T0_NS, "actor": "venue", "old": "A", "new": "B", "reason": "r", **SEQ}
    assert format_line("session.venue.state", body) == (
        f"{T0_TEXT}  session.venue.state           A -> B: r (out 5, in 7)"
    )
    assert format_line("x.y", {"time_ns": T0_NS, "actor": "a" * 3}).endswith(f"  {'x.y':<28}  actor=aaa")


@pytest.mark.parametrize(
    ("value", "text"),
    [("plain", "plain"), ("", '""'), ("two words", '"two words"'), ("a=b", '"a=b"'), ('say "hi"', '"say \\"hi\\""'),
     (b"\xff\x01", "\\xff|"), (3, "3"), (-1.5, "-1.5"), (False, "false"), (None, "null"),
     (float("inf"), '"inf"'), ({"n": [1, b"x"]}, '{"n":[1,"x"]}')],
)
def test_values_are_one_unambiguous_token(value: Any, text: str) -> None:
    assert value_text(value) == text


JSON_TABLE: list[tuple[str, dict[Any, Any], dict[str, Any]]] = [
    ("session.venue.state", {"time_ns": 1, "actor": "venue", "old": "A", "new": "B"},
     {"topic": "session.venue.state", "body": {"time_ns": 1, "actor": "venue", "old": "A", "new": "B"}}),
    ("x", {"time_ns": 1, "actor": "a", "topic": "inner", "data": b"8=FIX\x01", "nan": float("nan")},
     {"topic": "x", "body": {"time_ns": 1, "actor": "a", "topic": "inner", "data": "8=FIX|", "nan": "nan"}}),
    ("x", {"time_ns": 1, "actor": "a", b"raw-key": {b"k": (1, 2)}},
     {"topic": "x", "body": {"time_ns": 1, "actor": "a", "raw-key": {"k": [1, 2]}}}),
]


@pytest.mark.parametrize(("topic", "body", "expected"), JSON_TABLE)
def test_json_is_one_object_per_line_with_topic_and_body(topic: str, body: dict[Any, Any],
                                                        expected: dict[str, Any]) -> None:
    line = json_line(topic, body)
    assert "\n" not in line
    assert json.loads(line) == expected


@pytest.mark.parametrize(
    ("topic", "name"),
    [("actor.venue.heartbeat", "venue"), ("actor.fix.venue.heartbeat", "fix.venue"), ("actor..heartbeat", None),
     ("actor.venue.up", None), ("broker.heartbeat", None), ("session.venue.heartbeat", None)],
)
def test_heartbeat_topics_name_their_actor(topic: str, name: str | None) -> None:
    assert heartbeat_actor(topic) == name


# ----------------------------------------------------------------- malformed events

MALFORMED_TABLE: list[tuple[list[bytes], str]] = [
    ([b"session.venue.state"], "1 frames"),
    ([b"a", b"b", b"c"], "3 frames"),
    ([b"session.venue.state", b"\xc1"], "malformed event"),
    ([b"\xff\xfe", protocol.encode_event("x", {"time_ns": 1, "actor": "a"})[1]], "malformed event"),
    (protocol.encode_event("x", {"time_ns": 1, "actor": "a"})[:1] + [b"\x93\x01\x02\x03"], "not a map"),
    (protocol.encode_event("x", {"actor": "a"}), "time_ns"),
    (protocol.encode_event("x", {"time_ns": "now", "actor": "a"}), "time_ns"),
    (protocol.encode_event("x", {"time_ns": True, "actor": "a"}), "time_ns"),
    (protocol.encode_event("x", {"time_ns": 1}), "actor"),
    (protocol.encode_event("x", {"time_ns": 1, "actor": 7}), "actor"),
    ([], "0 frames"),
]


@pytest.mark.parametrize(("frames", "reason"), MALFORMED_TABLE)
def test_malformed_events_become_one_warning_and_are_not_counted(frames: list[bytes], reason: str) -> None:
    monitor = Monitor()
    [line] = monitor.receive(frames, FakeClock().now())
    assert line.warning
    assert line.text.startswith(f"{T0_TEXT}  warning: malformed event skipped")
    assert reason in line.text
    assert monitor.events == 0
    assert monitor.receive(event("x.ok"), FakeClock().now()) == [Line(f"{T0_TEXT}  {'x.ok':<28}  actor=venue")]
    assert monitor.events == 1


# ----------------------------------------------------------------- silence tracking

#: (seconds to advance, heartbeat or check, topics expected); the tracker's limit is 3 s.
SILENCE_TABLE: list[tuple[str, list[tuple[float, str, list[str]]]]] = [
    ("an unknown actor is never silent", [(10.0, "check", [])]),
    ("steady heartbeats stay quiet", [(0.0, "hb", []), (1.0, "hb", []), (1.0, "hb", []), (2.9, "check", [])]),
    ("silence is reported once, exactly at the limit",
     [(0.0, "hb", []), (2.999, "check", []), (0.001, "check", [SILENT_TOPIC]), (5.0, "check", [])]),
    ("back is reported once when heard again",
     [(0.0, "hb", []), (3.5, "check", [SILENT_TOPIC]), (1.0, "hb", [BACK_TOPIC]), (1.0, "hb", []),
      (2.0, "check", [])]),
    ("a second silence is a new report",
     [(0.0, "hb", []), (3.0, "check", [SILENT_TOPIC]), (0.5, "hb", [BACK_TOPIC]), (3.0, "check", [SILENT_TOPIC])]),
    ("a late heartbeat not yet checked is no silence", [(0.0, "hb", []), (4.0, "hb", []), (2.0, "check", [])]),
]


@pytest.mark.parametrize(("story", "steps"), SILENCE_TABLE, ids=[story for story, _ in SILENCE_TABLE])
def test_silence_tracking(story: str, steps: list[tuple[float, str, list[str]]]) -> None:
    clock = FakeClock()
    tracker = SilenceTracker(3.0)
    for advance_s, action, expected in steps:
        now = clock.advance(advance_s)
        found = tracker.heard("venue", now, now.utc_ns) if action == "hb" else tracker.check(now)
        assert [topic for topic, _ in found] == expected, (story, advance_s, action)


def test_silence_and_back_events_carry_names_times_and_durations() -> None:
    clock = FakeClock()
    tracker = SilenceTracker(3.0)
    first = clock.now()
    tracker.heard("venue", first, T0_NS - 5)
    tracker.heard("client", clock.advance(1.0), T0_NS)
    assert tracker.next_deadline_s() == pytest.approx(first.mono_s + 3.0)
    [(topic, body)] = tracker.check(clock.advance(2.25))
    assert topic == SILENT_TOPIC
    assert body == {"time_ns": clock.utc_ns, "actor": "venue", "silent_s": pytest.approx(3.25),
                    "last_heartbeat_ns": T0_NS - 5}
    assert tracker.next_deadline_s() == pytest.approx(first.mono_s + 4.0)
    [(topic, body)] = tracker.check(clock.advance(1.0))
    assert (topic, body["actor"]) == (SILENT_TOPIC, "client")
    assert tracker.next_deadline_s() is None
    [(topic, body)] = tracker.heard("venue", clock.advance(0.75), T0_NS + 1)
    assert (topic, body) == (BACK_TOPIC, {"time_ns": clock.utc_ns, "actor": "venue", "silent_s": pytest.approx(5.0)})
    assert tracker.next_deadline_s() == pytest.approx(clock.mono_s + 3.0)


#: (seconds to advance, incarnation of the heartbeat, topics expected); the tracker's limit is 3 s.
RESTART_TABLE: list[tuple[str, list[tuple[float, str | None, list[str]]]]] = [
    ("the same incarnation is no restart", [(0.0, "a", []), (1.0, "a", []), (1.0, "a", [])]),
    ("a restart faster than the limit is reported though no silence was",
     [(0.0, "a", []), (0.8, "b", [RESTARTED_TOPIC]), (1.0, "b", [])]),
    ("a restart after a silence is silent, back, then restarted",
     [(0.0, "a", []), (4.0, "b", [SILENT_TOPIC, BACK_TOPIC, RESTARTED_TOPIC])]),
    ("a publisher without incarnations never restarts", [(0.0, None, []), (1.0, None, []), (1.0, "a", []),
                                                        (1.0, None, []), (1.0, "b", [RESTARTED_TOPIC])]),
]


@pytest.mark.parametrize(("story", "steps"), RESTART_TABLE, ids=[story for story, _ in RESTART_TABLE])
def test_restart_tracking(story: str, steps: list[tuple[float, str | None, list[str]]]) -> None:
    clock = FakeClock()
    tracker = SilenceTracker(3.0)
    for advance_s, incarnation, expected in steps:
        now = clock.advance(advance_s)
        found = tracker.check(now) + tracker.heard("venue", now, now.utc_ns, incarnation)
        assert [topic for topic, _ in found] == expected, (story, advance_s, incarnation)


def test_monitor_reports_a_restart_with_both_incarnations() -> None:
    clock = FakeClock()
    monitor = Monitor(json_output=True)
    monitor.receive(event("actor.venue.heartbeat", incarnation="1f-a"), clock.now())
    _, restarted = monitor.receive(event("actor.venue.heartbeat", incarnation="2a-b"), clock.advance(0.5))
    assert json.loads(restarted.text) == {"topic": RESTARTED_TOPIC, "body": {
        "time_ns": clock.utc_ns, "actor": "venue", "silent_s": 0.5, "incarnation": "2a-b", "previous": "1f-a"}}
    assert monitor.receive(event("actor.venue.heartbeat", incarnation=7), clock.advance(1.0))[1:] == [], \
        "a malformed incarnation is no restart"


def test_silence_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SilenceTracker(0.0)


def test_monitor_prints_heartbeat_silence_and_back_lines() -> None:
    clock = FakeClock()
    monitor = Monitor(silence_s=2.0)
    assert monitor.receive(event("actor.venue.heartbeat"), clock.now()) == [
        Line(f"{T0_TEXT}  actor.venue.heartbeat         actor=venue")
    ]
    assert monitor.next_deadline_s() == clock.mono_s + 2.0
    assert monitor.tick(clock.advance(1.0)) == []
    [silent] = monitor.tick(clock.advance(1.5))
    assert silent.text == (
        f"{utc_text(clock.utc_ns)}  monitor.actor.silent          actor venue silent for 2.5 s "
        f"(last heartbeat at {T0_TEXT})"
    )
    heartbeat, back = monitor.receive(event("actor.venue.heartbeat"), clock.advance(0.5))
    assert heartbeat.text.endswith("actor=venue")
    assert back.text == f"{utc_text(clock.utc_ns)}  monitor.actor.back            actor venue back after 3.0 s"
    assert monitor.events == 2


def test_monitor_json_mode_uses_the_same_topics_for_its_own_lines() -> None:
    clock = FakeClock()
    monitor = Monitor(json_output=True, silence_s=1.0)
    [heartbeat] = monitor.receive(event("actor.venue.heartbeat", seq=1), clock.now())
    assert json.loads(heartbeat.text) == {"topic": "actor.venue.heartbeat",
                                          "body": {"time_ns": T0_NS, "actor": "venue", "seq": 1}}
    [silent] = monitor.tick(clock.advance(1.0))
    assert json.loads(silent.text) == {"topic": SILENT_TOPIC, "body": {
        "time_ns": clock.utc_ns, "actor": "venue", "silent_s": 1.0, "last_heartbeat_ns": T0_NS}}
    _, back = monitor.receive(event("actor.venue.heartbeat"), clock.advance(1.0))
    assert json.loads(back.text) == {"topic": BACK_TOPIC, "body": {"time_ns": clock.utc_ns, "actor": "venue",
                                                                    "silent_s": 2.0}}


# ----------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("argv", "options"),
    [
        ([], Options()),
        (["session.venue", "actor.", "--json"], Options(prefixes=("session.venue", "actor."), json_output=True)),
        (["--endpoint", "tcp://10.0.0.5:5572", "--silence-s", "0.5", "--count", "3", "--duration-s", "0"],
         Options(endpoint="tcp://10.0.0.5:5572", silence_s=0.5, count=3, duration_s=0.0)),
    ],
)
def test_options(argv: list[str], options: Options) -> None:
    assert parse_args(argv) == options


def test_default_silence_is_the_broker_liveness_rule() -> None:
    assert DEFAULT_SILENCE_S == protocol.HEARTBEAT_INTERVAL_S * protocol.LIVENESS
    assert Options().endpoint == protocol.DEFAULT_XPUB_ENDPOINT


@pytest.mark.parametrize(
    "argv",
    [["--silence-s", "0"], ["--silence-s", "nan"], ["--count", "0"], ["--count", "x"], ["--duration-s", "-1"]],
)
def test_bad_options_are_rejected(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert argv[0] in capsys.readouterr().err
