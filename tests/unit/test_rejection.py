"""What a user receives for a message the gateway withheld (time-to-live passed)."""

from __future__ import annotations

from actors.fix.message import Message
from actors.gateway.rejection import rejection_for


def message(msg_type: str, body: list[tuple[int, bytes]]) -> Message:
    return Message([(8, b"FIX.4.4"), (35, msg_type.encode()), (34, b"7")] + body)


def test_an_order_comes_back_as_a_rejected_execution_report_echoing_the_order() -> None:
    order = message("D", [(11, b"ORD-1"), (55, b"MSFT"), (54, b"1"), (38, b"100"), (40, b"1")])
    msg_type, body = rejection_for(order, "venue unreachable", "pid-1")
    fields = dict(body)
    assert msg_type == "8"
    assert fields[39] == fields[150] == b"8"  # OrdStatus and ExecType: Rejected
    assert (fields[11], fields[55], fields[54], fields[38]) == (b"ORD-1", b"MSFT", b"1", b"100")
    assert fields[17] == b"pid-1-7" and fields[58] == b"venue unreachable" and fields[103] == b"99"
    assert 40 not in fields
    assert [tag for tag, _ in body] == sorted(tag for tag, _ in body)


def test_anything_else_comes_back_as_a_business_message_reject() -> None:
    cancel = message("F", [(11, b"C-9"), (41, b"ORD-1")])
    msg_type, body = rejection_for(cancel, "venue unreachable", "pid-1")
    assert msg_type == "j"
    assert dict(body) == {58: b"venue unreachable", 372: b"F", 380: b"4", 379: b"C-9"}
