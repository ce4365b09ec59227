"""The gateway's vocabulary: every command, reply and event body, its exact wire map, and what a bad body gives.

The expected maps are written out as literals, key order included, because
they are the wire format other processes (monitors, older actors, operators'
scripts) read: a change here must be a decision, not a side effect.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.fix.config import Role
from actors.fix.outputs import SessionEvent, StateChanged
from actors.fix.session import Session
from actors.fix.states import SessionState as S
from actors.gateway.vocabulary import (
    BAD_SEQNUMS,
    COMMAND_TYPES,
    COORDINATOR_STARTED,
    NOT_A_COMMAND,
    AnswerLogon,
    CommandName,
    Connect,
    CoordinatorStarted,
    Disconnect,
    Logout,
    Malformed,
    PairCommandEvent,
    Refused,
    RejectedEvent,
    ResetSeqNums,
    SessionEventBody,
    SetSeqNums,
    StateEvent,
    Status,
    StatusReply,
    SwitchConnection,
    SwitchEvent,
    pair_topic,
    parse_command,
    parse_reply,
    parse_session_topic,
    rejected_topic,
    session_event_topic,
    state_topic,
    switch_topic,
)
from actors.tools.ctl import COMMANDS, command_for
from broker import protocol
from tests.pair import make_config

T_NS = 1_767_225_600_123_456_789

# ----------------------------------------------------------------- commands

#: Every command, as typed and as on the wire.
COMMAND_WIRE: list[tuple[Any, dict[str, Any]]] = [
    (Status(), {"cmd": "status"}),
    (Connect(), {"cmd": "connect"}),
    (Disconnect(), {"cmd": "disconnect"}),
    (Disconnect("end user's session ended"), {"cmd": "disconnect", "text": "end user's session ended"}),
    (Logout(), {"cmd": "logout"}),
    (Logout("end of day"), {"cmd": "logout", "text": "end of day"}),
    (ResetSeqNums(), {"cmd": "reset_seqnums"}),
    (SetSeqNums(120, 87), {"cmd": "set_seqnums", "next_sender": 120, "next_target": 87}),
    (SetSeqNums(next_target=5), {"cmd": "set_seqnums", "next_sender": None, "next_target": 5}),
    (SwitchConnection(), {"cmd": "switch_connection"}),
    (SwitchConnection("primary site maintenance"), {"cmd": "switch_connection", "text": "primary site maintenance"}),
    (AnswerLogon(), {"cmd": "answer_logon"}),
    (AnswerLogon("venue session unavailable"), {"cmd": "answer_logon", "text": "venue session unavailable"}),
]


@pytest.mark.parametrize(("command", "wire"), COMMAND_WIRE, ids=lambda v: repr(v)[:40])
def test_a_command_is_its_wire_map_and_back(command: Any, wire: dict[str, Any]) -> None:
    body = command.to_body()
    assert body == wire and list(body) == list(wire)
    assert parse_command(wire) == command
    assert type(command).from_body(wire) == command


def test_every_command_name_has_exactly_one_type_and_is_a_ctl_choice() -> None:
    assert sorted(t.cmd for t in COMMAND_TYPES) == sorted(CommandName)
    assert len({t.cmd for t in COMMAND_TYPES}) == len(COMMAND_TYPES)
    assert tuple(name.value for name in CommandName) == COMMANDS
    assert {type(c).cmd for c, _ in COMMAND_WIRE} == set(CommandName)


@pytest.mark.parametrize("name", list(CommandName))
def test_ctl_builds_each_command_it_offers(name: CommandName) -> None:
    command = command_for(name, "why", 3, 4)
    assert command.cmd is name
    assert parse_command(command.to_body()) == command


def test_ctl_leaves_out_options_a_command_does_not_use() -> None:
    assert command_for(CommandName.STATUS, "ignored", 3, 4).to_body() == {"cmd": "status"}
    assert command_for(CommandName.LOGOUT, "", 3, 4).to_body() == {"cmd": "logout"}
    assert command_for(CommandName.SET_SEQNUMS, "ignored", 3, None).to_body() == {
        "cmd": "set_seqnums", "next_sender": 3, "next_target": None}


def test_a_command_name_is_the_string_on_the_wire() -> None:
    assert CommandName.SET_SEQNUMS == "set_seqnums" and f"{CommandName.LOGOUT}" == "logout"
    assert isinstance(Status().to_body()["cmd"], str) and type(Status().to_body()["cmd"]) is str


def test_keys_a_command_does_not_know_are_ignored() -> None:
    """An older ``fixmesh ctl`` sent ``text`` with every command; the actor carried on regardless."""
    assert parse_command({"cmd": "status", "text": "hello"}) == Status()
    assert parse_command({"cmd": "set_seqnums", "next_sender": 2, "text": "x"}) == SetSeqNums(2, None)
    assert parse_command({"cmd": "logout", "text": None}) == Logout()


MALFORMED_COMMANDS: list[tuple[object, str]] = [
    (None, NOT_A_COMMAND),
    ("status", NOT_A_COMMAND),
    ([("cmd", "status")], NOT_A_COMMAND),
    ({}, NOT_A_COMMAND),
    ({"cmd": 1}, NOT_A_COMMAND),
    ({"cmd": None}, NOT_A_COMMAND),
    ({"cmd": "reboot"}, "unknown command 'reboot'"),
    ({"cmd": "STATUS"}, "unknown command 'STATUS'"),
    ({"cmd": "logout", "text": 5}, "logout: text is 5; expected a string"),
    ({"cmd": "disconnect", "text": b"bytes"}, "disconnect: text is b'bytes'; expected a string"),
    ({"cmd": "switch_connection", "text": ["a"]}, "switch_connection: text is ['a']; expected a string"),
    ({"cmd": "set_seqnums", "next_sender": 0}, BAD_SEQNUMS),
    ({"cmd": "set_seqnums", "next_target": -1}, BAD_SEQNUMS),
    ({"cmd": "set_seqnums", "next_sender": "3"}, BAD_SEQNUMS),
    ({"cmd": "set_seqnums", "next_sender": 1.5}, BAD_SEQNUMS),
    ({"cmd": "set_seqnums", "next_sender": True}, BAD_SEQNUMS),
]


@pytest.mark.parametrize(("body", "error"), MALFORMED_COMMANDS, ids=lambda v: repr(v)[:40])
def test_a_malformed_command_is_an_error_value_with_the_reason(body: object, error: str) -> None:
    result = parse_command(body)
    assert result == Malformed(error) and str(result) == error


def test_a_command_type_refuses_another_commands_body() -> None:
    assert Logout.from_body({"cmd": "disconnect", "text": "x"}) == Malformed("not a logout command but 'disconnect'")
    assert SetSeqNums.from_body({"cmd": "status"}) == Malformed("not a set_seqnums command but 'status'")
    assert Status.from_body(42) == Malformed(NOT_A_COMMAND)


def test_a_long_bad_value_is_quoted_short() -> None:
    result = parse_command({"cmd": "logout", "text": list(range(1000))})
    assert isinstance(result, Malformed) and len(result.error) < 120 and result.error.endswith("; expected a string")


# ----------------------------------------------------------------- replies


def core_status(state: S = S.CONNECTED) -> dict[str, object]:
    """A real session core's own report, so that a change of its shape shows here."""
    session = Session(make_config(Role.INITIATOR), next_sender=7, next_target=9)
    session.state = state
    return session.status()


def status_reply(**changes: Any) -> StatusReply:
    fields: dict[str, Any] = dict(state=S.CONNECTED, name="venue", role="driven", pid=4242, connected=True,
                                  awaiting_ack=2, incarnation="4242-1", reason="Logon reply received",
                                  state_changes=3, core=core_status())
    fields.update(changes)
    return StatusReply(**fields)


def test_a_status_reply_is_the_cores_report_then_the_actors_fields() -> None:
    body = status_reply().to_body()
    assert list(body) == ["ok", "status"] and body["ok"] is True
    status = body["status"]
    assert list(status) == ["state", "next_sender_seq", "next_target_seq", "heartbeat_interval_s", "queued",
                            "resend_range", "name", "role", "pid", "connected", "awaiting_ack", "incarnation",
                            "reason", "state_changes", "logon_failures"]
    assert (status["state"], status["next_sender_seq"], status["next_target_seq"]) == ("CONNECTED", 7, 9)
    assert (status["name"], status["pid"], status["state_changes"]) == ("venue", 4242, 3)


def test_a_status_reply_round_trips_through_msgpack() -> None:
    reply = status_reply()
    envelope = protocol.Envelope(kind=protocol.REPLY, src="venue", dst="coordinator", body=reply.to_body())
    assert parse_reply(protocol.decode(envelope.encode()).body) == StatusReply.from_body(reply.to_body()) == reply


def test_a_status_reply_without_the_newer_fields_reads_as_unknown() -> None:
    body = status_reply().to_body()
    del body["status"]["incarnation"], body["status"]["state_changes"]
    reply = StatusReply.from_body(body)
    assert isinstance(reply, StatusReply) and (reply.incarnation, reply.state_changes) == ("", None)


def test_a_refusal_is_ok_false_and_the_reason() -> None:
    assert Refused("no backup").to_body() == {"ok": False, "error": "no backup"}
    assert parse_reply({"ok": False, "error": "no backup"}) == Refused("no backup")


MALFORMED_REPLIES: list[tuple[object, str]] = [
    (None, "status reply is not a map but NoneType"),
    ({"ok": True}, "status reply's status is not a map but NoneType"),
    ({"ok": 1, "status": {}}, "status reply: ok is 1; expected true"),
    ({"ok": False}, "refusal: error is missing; expected a string"),
    ({"ok": True, "status": {"state": "ACTIVE"}}, "status reply: state is 'ACTIVE'; expected a session state name"),
    ({"ok": True, "status": {"state": "CONNECTED", "name": "v", "role": "driven", "pid": "1"}},
     "status reply: pid is '1'; expected an integer"),
]


@pytest.mark.parametrize(("body", "error"), MALFORMED_REPLIES, ids=lambda v: repr(v)[:40])
def test_a_malformed_reply_is_an_error_value(body: object, error: str) -> None:
    assert parse_reply(body) == Malformed(error)


def test_a_status_reply_with_a_wrongly_typed_field_is_malformed() -> None:
    for key, value in [("connected", 1), ("awaiting_ack", True), ("state_changes", "3"), ("reason", 5),
                       ("incarnation", 7), ("name", None)]:
        body = status_reply().to_body()
        body["status"][key] = value
        result = parse_reply(body)
        assert isinstance(result, Malformed) and f" {key} is " in result.error, (key, result)


# ----------------------------------------------------------------- topics


def test_topics() -> None:
    assert state_topic("venue") == "session.venue.state"
    assert session_event_topic("venue", "resend_request") == "session.venue.resend_request"
    assert rejected_topic("venue") == "session.venue.rejected"
    assert switch_topic("venue") == "session.venue.switch"
    assert pair_topic("client-venue", CommandName.DISCONNECT) == "pair.client-venue.disconnect"
    assert COORDINATOR_STARTED == "coordinator.started"


@pytest.mark.parametrize(
    ("topic", "parsed"),
    [
        ("session.venue.state", ("venue", "state")),
        ("session.desk.1.logon", ("desk.1", "logon")),
        ("session.venue", None),
        ("session..state", None),
        ("session.venue.", None),
        ("actor.venue.up", None),
        ("sessions.venue.state", None),
    ],
)
def test_parse_session_topic(topic: str, parsed: tuple[str, str] | None) -> None:
    assert parse_session_topic(topic) == parsed


# ----------------------------------------------------------------- event bodies

STATE_WIRE = {"old": "CONNECTING", "new": "CONNECTED", "reason": "Logon reply received", "next_sender": 2,
              "next_target": 3, "time_ns": T_NS, "incarnation": "4242-1", "state_changes": 5}

#: Every event body, as typed and as on the wire.
EVENT_WIRE: list[tuple[Any, dict[str, Any]]] = [
    (StateEvent(S.CONNECTING, S.CONNECTED, "Logon reply received", 2, 3, T_NS, "4242-1", 5), STATE_WIRE),
    (SessionEventBody("resend_request", "BeginSeqNo=3 EndSeqNo=0", 5, 7, T_NS),
     {"kind": "resend_request", "text": "BeginSeqNo=3 EndSeqNo=0", "next_sender": 5, "next_target": 7,
      "time_ns": T_NS}),
    (RejectedEvent("D", 12, "not delivered", "ord-1"),
     {"kind": "rejected", "msg_type": "D", "seq": 12, "text": "not delivered", "cl_ord_id": "ord-1"}),
    (SwitchEvent("primary 127.0.0.1:9877", "backup 127.0.0.1:9878", "operator"),
     {"from": "primary 127.0.0.1:9877", "to": "backup 127.0.0.1:9878", "why": "operator"}),
    (PairCommandEvent("venue", CommandName.CONNECT, "", "client is logged on", True),
     {"session": "venue", "cmd": "connect", "text": "", "why": "client is logged on", "sent": True}),
    (CoordinatorStarted(("client-venue", "desk-lse")), {"pairs": ["client-venue", "desk-lse"]}),
]


@pytest.mark.parametrize(("event", "wire"), EVENT_WIRE, ids=lambda v: type(v).__name__)
def test_an_event_body_is_its_wire_map_and_back(event: Any, wire: dict[str, Any]) -> None:
    body = event.to_body()
    assert body == wire and list(body) == list(wire)
    # What a subscriber receives: stamped by the bus client, through msgpack.
    stamped = {"time_ns": T_NS, **body, "actor": "venue"}
    _topic, received = protocol.decode_event(protocol.encode_event("session.venue.x", stamped))
    assert type(event).from_body(received) == event


def test_the_state_event_carries_the_cores_state_change() -> None:
    change = StateChanged(S.CONNECTING, S.CONNECTED, "Logon reply received", 2, 3, T_NS)
    assert StateEvent.of(change, "4242-1", 5).to_body() == STATE_WIRE
    event = SessionEvent("logon", "Logon accepted", 2, 3, T_NS)
    assert SessionEventBody.of(event) == SessionEventBody("logon", "Logon accepted", 2, 3, T_NS)


def test_a_state_event_without_the_newer_fields_reads_as_unknown() -> None:
    body = {k: v for k, v in STATE_WIRE.items() if k not in ("incarnation", "state_changes")}
    assert StateEvent.from_body(body) == StateEvent(S.CONNECTING, S.CONNECTED, "Logon reply received", 2, 3, T_NS)
    assert StateEvent.from_body({**body, "incarnation": None, "state_changes": None}) == StateEvent.from_body(body)


MALFORMED_EVENTS: list[tuple[Any, object, str]] = [
    (StateEvent, [], "state event is not a map but list"),
    (StateEvent, {**STATE_WIRE, "new": "ACTIVE"}, "state event: new is 'ACTIVE'; expected a session state name"),
    (StateEvent, {**STATE_WIRE, "old": None}, "state event: old is missing; expected a session state name"),
    (StateEvent, {**STATE_WIRE, "next_sender": True}, "state event: next_sender is True; expected an integer"),
    (StateEvent, {**STATE_WIRE, "state_changes": 2.0}, "state event: state_changes is 2.0; expected an integer"),
    (StateEvent, {**STATE_WIRE, "reason": b"r"}, "state event: reason is b'r'; expected a string"),
    (SessionEventBody, {"kind": "logon", "text": "", "next_sender": 1, "next_target": 1},
     "session event: time_ns is missing; expected an integer"),
    (RejectedEvent, {"kind": "reject", "msg_type": "D", "seq": 1, "text": ""},
     "rejected event: kind is 'reject'; expected 'rejected'"),
    (SwitchEvent, {"from": "a", "to": "b"}, "switch event: why is missing; expected a string"),
    (PairCommandEvent, {"session": "v", "cmd": "reboot", "sent": True},
     "pair command event: cmd is 'reboot'; expected a command name"),
    (PairCommandEvent, {"session": "v", "cmd": "connect", "sent": "yes"},
     "pair command event: sent is 'yes'; expected true or false"),
    (CoordinatorStarted, {"pairs": "client-venue"},
     "coordinator.started event: pairs is 'client-venue'; expected a list of pair names"),
]


@pytest.mark.parametrize(("kind", "body", "error"), MALFORMED_EVENTS, ids=lambda v: repr(v)[:40])
def test_a_malformed_event_body_is_an_error_value(kind: Any, body: object, error: str) -> None:
    assert kind.from_body(body) == Malformed(error)


# ----------------------------------------------------------------- nothing raises

PARSERS = [parse_command, parse_reply, *(t.from_body for t in COMMAND_TYPES),
           *(type(e).from_body for e, _ in EVENT_WIRE)]

#: What msgpack can hand a reader: maps of known keys with values of any decoded type, or anything at all.
VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
                      | st.binary(max_size=5), lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=8)
KEYS = st.sampled_from(["cmd", "text", "next_sender", "next_target", "ok", "status", "error", "state", "old",
                        "new", "reason", "time_ns", "kind", "seq", "from", "to", "why", "session", "sent", "pairs"])
BODIES = st.dictionaries(KEYS, VALUES | st.sampled_from([*CommandName, "CONNECTED", "rejected"]), max_size=8) | VALUES


@given(BODIES)
def test_no_body_makes_a_parser_raise(body: object) -> None:
    for parse in PARSERS:
        parse(body)  # a value or Malformed, never an exception
