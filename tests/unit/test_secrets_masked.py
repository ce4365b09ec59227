"""Secrets in FIX messages are shown as *** wherever a person reads a message (actors.fix.secrets)."""

from __future__ import annotations

from actors.fix.codec import encode, parse
from actors.fix.message import Message
from actors.fix.secrets import mask_fields, mask_wire
from actors.tools.monitor import format_line, json_line

LOGON = encode(b"FIX.4.4", b"A", [(34, b"1"), (49, b"T"), (52, b"20261130-10:00:00"), (56, b"G")],
               [(98, b"0"), (108, b"30"), (553, b"trader1"), (554, b"hunter2"), (925, b"n3w")])


def test_a_whole_message_keeps_everything_but_its_secrets() -> None:
    masked = parse(mask_wire(LOGON))
    assert masked.get(554) == b"***" and masked.get(925) == b"***" and masked.get(553) == b"trader1"
    assert b"hunter2" not in mask_wire(LOGON) and b"n3w" not in mask_wire(LOGON)


def test_a_garbled_or_cut_message_is_masked_too() -> None:
    cut = LOGON[: LOGON.index(b"554=") + 8]  # ends inside the password
    assert b"hunter2"[:4] not in mask_wire(cut)
    assert mask_wire(b"8=FIX.4.4\x01garbage\x01554=x\x0110") == b"8=FIX.4.4\x01garbage\x01554=***\x0110"


def test_a_deployments_own_secret_tags_are_masked_when_named() -> None:
    data = b"35=D\x015001=token\x01"
    assert mask_wire(data) == data
    assert mask_wire(data, extra=[5001]) == b"35=D\x015001=***\x01"
    assert mask_fields([(5001, b"token"), (11, b"1")], extra=[5001]) == [(5001, b"***"), (11, b"1")]


def test_a_message_printed_for_a_log_shows_no_secret() -> None:
    message = parse(LOGON)
    assert "hunter2" not in message.to_text() and "554=***" in message.to_text()
    assert "hunter2" not in repr(message)
    assert message.get(554) == b"hunter2", "the message itself still carries the password"
    assert isinstance(message, Message)


def test_the_monitor_shows_fix_bytes_in_an_event_masked() -> None:
    body = {"time_ns": 0, "actor": "client", "data": LOGON}
    for line in (format_line("app.client.note", body), json_line("app.client.note", body)):
        assert "hunter2" not in line and "554=***" in line, line
