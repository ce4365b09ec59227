"""The bus protocol: envelopes and events round-trip, and anything else is a ProtocolError, never a crash."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import protocol
from broker.protocol import Envelope, ProtocolError


def packed(data: Any) -> bytes:
    """Frames a foreign or buggy sender might produce, built the same way the protocol builds them."""
    return msgpack.packb(data, use_bin_type=True)


GOOD = {"v": 1, "kind": "deliver", "src": "a", "dst": "b", "id": "1", "corr": "", "body": b"x"}

ROUND_TRIPS = [
    Envelope(kind=protocol.HELLO, src="venue", dst=protocol.BROKER, id="h-1"),
    Envelope(kind=protocol.DELIVER, src="a", dst="b", id="p-0", body=b"8=FIX.4.4\x01"),
    Envelope(kind=protocol.ACK, src="b", dst="a", corr="p-0"),
    Envelope(kind=protocol.ACK, src="b", dst="a", corr="p-0", acks=("p-1", "p-2")),
    Envelope(kind=protocol.DELIVER, src="b", dst="a", id="q-0", body=b"8=FIX.4.4\x01", acks=("p-3",)),
    Envelope(kind=protocol.COMMAND, src="ops", dst="venue", id="c-1", body={"op": "connect", "n": [1, 2]}),
    Envelope(kind=protocol.REPLY, src="venue", dst="ops", id="r-1", corr="c-1", body={"ok": True}),
    Envelope(kind=protocol.HEARTBEAT, src="a.b.c", dst=protocol.BROKER),
    Envelope(kind=protocol.DELIVER, src="a", dst="b", id="p-4", body=b"x", acks=("q-1",),
             more=(("p-5", b"y"), ("p-6", {"fix": [[35, b"D"]]}))),
]


@pytest.mark.parametrize("envelope", ROUND_TRIPS, ids=lambda e: e.kind)
def test_envelope_round_trip(envelope: Envelope) -> None:
    assert protocol.decode(envelope.encode()) == envelope


REJECTED = {
    "not msgpack": b"\xc1garbage",
    "empty": b"",
    "truncated": Envelope(kind="deliver", src="a", dst="b").encode()[:-3],
    "not a map": packed([1, "deliver", "a", "b"]),
    "no version": packed({k: v for k, v in GOOD.items() if k != "v"}),
    "next version": packed({**GOOD, "v": 2}),
    "version true": packed({**GOOD, "v": True}),
    "version float": packed({**GOOD, "v": 1.0}),
    "version string": packed({**GOOD, "v": "1"}),
    "unknown kind": packed({**GOOD, "kind": "gossip"}),
    "kind is a list": packed({**GOOD, "kind": ["deliver"]}),
    "kind is bytes": packed({**GOOD, "kind": b"deliver"}),
    "src missing": packed({k: v for k, v in GOOD.items() if k != "src"}),
    "dst not a string": packed({**GOOD, "dst": 7}),
    "invalid utf-8": b"\x81\xa1v\xa2\xff\xfe",
    "acks not a list": packed({**GOOD, "acks": "p-0"}),
    "acks not strings": packed({**GOOD, "acks": [1, 2]}),
    "more not a list": packed({**GOOD, "more": {"p-1": b"y"}}),
    "more item not a pair": packed({**GOOD, "more": [["p-1", b"y", b"z"]]}),
    "more id not a string": packed({**GOOD, "more": [[1, b"y"]]}),
    "more id empty": packed({**GOOD, "more": [["", b"y"]]}),
    "more on an ack": packed({**GOOD, "kind": "ack", "more": [["p-1", b"y"]]}),
}


@pytest.mark.parametrize("frame", list(REJECTED.values()), ids=list(REJECTED))
def test_invalid_envelopes_are_protocol_errors(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode(frame)


def test_reply_is_correlated_and_addressed_back() -> None:
    command = Envelope(kind=protocol.COMMAND, src="ops", dst="venue", id="c-9")
    assert command.reply(protocol.REPLY, {"ok": 1}, id="r-1") == Envelope(
        kind=protocol.REPLY, src="venue", dst="ops", id="r-1", corr="c-9", body={"ok": 1})


def test_broker_written_envelopes() -> None:
    welcome = protocol.decode(protocol.welcome("a", corr="h-1", instance="i1").encode())
    assert (welcome.kind, welcome.src, welcome.dst, welcome.corr) == (protocol.WELCOME, protocol.BROKER, "a", "h-1")
    assert welcome.body == {"instance": "i1", "heartbeat_interval_s": protocol.HEARTBEAT_INTERVAL_S,
                            "liveness": protocol.LIVENESS}
    refused = Envelope(kind=protocol.DELIVER, src="a", dst="ghost", id="p-3")
    answer = protocol.decode(protocol.undeliverable(refused, protocol.REASON_DOWN).encode())
    assert (answer.kind, answer.src, answer.dst, answer.corr) == (protocol.UNDELIVERABLE, protocol.BROKER, "a", "p-3")
    assert answer.body == {"dst": "ghost", "reason": "down"}


def test_event_round_trip() -> None:
    frames = protocol.encode_event("session.venue.state", {"time_ns": 1, "actor": "venue", "new": "active"})
    assert protocol.decode_event(frames) == ("session.venue.state", {"time_ns": 1, "actor": "venue", "new": "active"})


@pytest.mark.parametrize("frames", [
    [b"topic"],
    [b"topic", packed({}), b"extra"],
    [b"\xff", packed({})],
    [b"topic", b"\xc1"],
    [b"topic", packed([1, 2])],
], ids=["one frame", "three frames", "topic not utf-8", "body not msgpack", "body not a map"])
def test_invalid_events_are_protocol_errors(frames: list[bytes]) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_event(frames)


@pytest.mark.parametrize(("topic", "parsed"), [
    ("actor.venue.up", ("venue", "up")),
    ("actor.venue.down", ("venue", "down")),
    ("actor.eu.venue.heartbeat", ("eu.venue", "heartbeat")),
    ("actor.up", None),
    ("actor..up", None),
    ("actor.venue.", None),
    ("broker.started", None),
    ("session.venue.state", None),
])
def test_parse_actor_topic(topic: str, parsed: tuple[str, str] | None) -> None:
    assert protocol.parse_actor_topic(topic) == parsed


def test_topics() -> None:
    assert protocol.actor_topic("v", "up") == "actor.v.up"
    assert protocol.broker_topic("heartbeat") == "broker.heartbeat"
    assert protocol.session_topic("v", "state") == "session.v.state"


def test_ids_are_unique_and_carry_the_source_prefix() -> None:
    ids = protocol.IdSource()
    taken = [ids.next() for _ in range(1000)]
    assert len(set(taken)) == 1000
    assert all(i.startswith(ids.prefix + "-") for i in taken)
    assert protocol.IdSource().prefix != ids.prefix


_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
            | st.text(max_size=8) | st.binary(max_size=8))
_values = _scalars | st.lists(_scalars, max_size=3) | st.dictionaries(st.text(max_size=4), _scalars, max_size=3)
_fields = st.sampled_from(["v", "kind", "src", "dst", "id", "corr", "body", "extra"])
_maps = st.dictionaries(_fields, _values | st.sampled_from([1, "deliver", "hello", "a"]), max_size=8)


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_protocol_error(frame: bytes) -> None:
    try:
        envelope = protocol.decode(frame)
    except ProtocolError:
        return
    assert envelope.kind in protocol.KINDS


@given(_maps)
def test_any_map_decodes_or_raises_protocol_error(data: dict[str, Any]) -> None:
    try:
        envelope = protocol.decode(packed(data))
    except ProtocolError:
        return
    assert envelope.v == protocol.VERSION and envelope.kind in protocol.KINDS
    assert isinstance(envelope.src, str) and isinstance(envelope.dst, str)


@given(st.lists(st.binary(max_size=16), max_size=3))
def test_any_event_frames_decode_or_raise_protocol_error(frames: list[bytes]) -> None:
    try:
        topic, body = protocol.decode_event(frames)
    except ProtocolError:
        return
    assert isinstance(topic, str) and isinstance(body, dict)


def test_an_envelope_acknowledges_its_corr_when_an_ack_and_its_acks_always() -> None:
    assert Envelope(kind=protocol.ACK, src="b", dst="a", corr="p-0", acks=("p-1",)).acknowledged() == ["p-0", "p-1"]
    assert Envelope(kind=protocol.DELIVER, src="b", dst="a", id="q", acks=("p-2",)).acknowledged() == ["p-2"]
    assert Envelope(kind=protocol.REPLY, src="b", dst="a", corr="c-1").acknowledged() == []


def test_a_deliver_with_more_is_its_delivers_in_order_each_from_the_same_sender_to_the_same_peer() -> None:
    group = protocol.decode(Envelope(kind=protocol.DELIVER, src="a", dst="b", id="p-1", body=b"1", acks=("q-9",),
                                     more=(("p-2", b"2"), ("p-3", b"3"))).encode())
    assert [(e.kind, e.src, e.dst, e.id, e.body, e.more) for e in group.delivers()] == [
        (protocol.DELIVER, "a", "b", "p-1", b"1", ()),
        (protocol.DELIVER, "a", "b", "p-2", b"2", ()),
        (protocol.DELIVER, "a", "b", "p-3", b"3", ())]
    single = Envelope(kind=protocol.DELIVER, src="a", dst="b", id="p-4", body=b"4")
    assert single.delivers() == [single]
