"""The bus client's protocol half, without sockets: time is a plain number, the link is the test.

Each frame the outbox returns is taken unless the test says ``refused``, the way
``BusClient`` reports a ZeroMQ send that would block. Nothing sleeps: a timeout
is an addition to ``T0``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from actors.fix.timefmt import Instant
from actors.gateway.outbox import (
    BROKER_SILENCE_S,
    LINK_RETRY_S,
    MAX_ACKS_PER_ENVELOPE,
    MAX_GROUP,
    MAX_GROUP_BYTES,
    MAX_RETRANSMIT_AFTER_S,
    MIN_SWITCH_S,
    SEEK_S,
    Outbox,
    Outcome,
    Received,
)
from broker import protocol
from broker.protocol import HEARTBEAT_INTERVAL_S, Envelope, IdSource

ROOT = Path(__file__).resolve().parents[2]
NAME = "a"
T0 = 1000.0
#: Far beyond every test's steps, for tests about something other than the retransmit timer.
NEVER_S = 1e6


def new(**options: Any) -> Outbox:
    return Outbox(NAME, T0, ids=IdSource("t"), **options)


def welcomed(instance: str = "i1", **options: Any) -> Outbox:
    """An outbox that has said hello at ``T0`` and was welcomed by broker ``instance``."""
    outbox = new(**options)
    assert outbox.hello(T0) is not None
    outbox.receive(welcome(instance), T0, Received())
    assert outbox.welcomed and outbox.broker_instance == instance
    return outbox


def welcome(instance: str) -> bytes:
    return protocol.welcome(NAME, corr="t-0", instance=instance).encode()


def ack_from(src: str, *ids: str) -> bytes:
    return Envelope(kind=protocol.ACK, src=src, dst=NAME, corr=ids[0], acks=ids[1:]).encode()


def event(topic: str, **body: Any) -> list[bytes]:
    return protocol.encode_event(topic, {"time_ns": 0, "actor": "broker", **body})


def receive(outbox: Outbox, frame: bytes, now_s: float = T0) -> Received:
    received = Received()
    outbox.receive(frame, now_s, received)
    return received


def delivered(frame: bytes | Outcome) -> Envelope:
    assert isinstance(frame, bytes), frame
    return protocol.decode(frame)


def retransmits(outbox: Outbox, now_s: float) -> list[str]:
    """Ids of the delivers due by ``now_s``, each taken by the link."""
    ids: list[str] = []
    while (frame := outbox.retransmit(now_s)) is not None:
        ids.append(protocol.decode(frame).id)
    return ids


# ----------------------------------------------------------------- retransmission


def test_a_deliver_is_sent_again_after_the_retransmit_timeout_as_the_same_bytes() -> None:
    outbox = welcomed(retransmit_after_s=2.0)
    frame = outbox.deliver("b", "m-1", b"x", T0)
    assert delivered(frame) == Envelope(kind=protocol.DELIVER, src=NAME, dst="b", id="m-1", body=b"x")
    assert outbox.pending == 1 and outbox.is_pending("m-1")
    assert outbox.retransmit(T0 + 1.999) is None
    assert outbox.retransmit(T0 + 2.0) is frame, "encoded once, sent as often as needed"
    assert outbox.retransmit(T0 + 2.0) is None, "one copy per timeout"


def test_the_retransmit_timeout_doubles_per_attempt_up_to_its_cap() -> None:
    outbox = welcomed(retransmit_after_s=4.0)
    outbox.deliver("b", "m-1", b"x", T0)
    sent_s = T0
    for gap_s in [4.0, 8.0, 16.0, MAX_RETRANSMIT_AFTER_S, MAX_RETRANSMIT_AFTER_S]:
        assert retransmits(outbox, sent_s + gap_s - 0.001) == [], f"early, {gap_s} s after the last copy"
        sent_s += gap_s
        assert retransmits(outbox, sent_s) == ["m-1"], f"{gap_s} s after the last copy"


def test_an_ack_from_its_peer_forgets_the_deliver() -> None:
    outbox = welcomed(retransmit_after_s=2.0)
    outbox.deliver("b", "m-1", b"x", T0)
    outbox.deliver("b", "m-2", b"x", T0)
    assert receive(outbox, ack_from("b", "m-2", "m-1")).acked == ["m-2", "m-1"]
    assert outbox.pending == 0
    assert retransmits(outbox, T0 + NEVER_S) == []


def test_acks_from_another_actor_are_ignored() -> None:
    outbox = welcomed(retransmit_after_s=2.0)
    outbox.deliver("b", "m-1", b"x", T0)
    assert receive(outbox, ack_from("c", "m-1")).acked == []
    riding = Envelope(kind=protocol.DELIVER, src="c", dst=NAME, id="c-1", acks=("m-1",)).encode()
    assert receive(outbox, riding).acked == []
    assert outbox.is_pending("m-1")
    assert retransmits(outbox, T0 + 2.0) == ["m-1"]


# ----------------------------------------------------------------- gathered delivers


def group_ids(outbox: Outbox) -> list[tuple[str, list[str]]]:
    """``(dst, ids)`` of each frame ``groups`` hands out, each taken by the link."""
    out = []
    for frame, entries in outbox.groups():
        env = protocol.decode(frame)
        assert [e.id for e in entries] == [d.id for d in env.delivers()]
        out.append((env.dst, [d.id for d in env.delivers()]))
    return out


def test_gathered_delivers_leave_as_one_frame_per_peer_in_order_with_the_acks_owed_to_it() -> None:
    outbox = welcomed(retransmit_after_s=2.0, ack_delay_s=0.005)
    assert outbox.ack("b", "b-7", T0) is None
    for dst, id in [("b", "m-1"), ("c", "n-1"), ("b", "m-2"), ("b", "m-3")]:
        assert outbox.gather(dst, id, id.encode(), T0)
    groups = outbox.groups()
    assert [(protocol.decode(f).dst, [e.id for e in entries]) for f, entries in groups] == [
        ("b", ["m-1", "m-2", "m-3"]), ("c", ["n-1"])]
    to_b = protocol.decode(groups[0][0])
    assert to_b.acks == ("b-7",), "the ack owed to b rides on b's frame"
    assert [(d.id, d.body) for d in to_b.delivers()] == [("m-1", b"m-1"), ("m-2", b"m-2"), ("m-3", b"m-3")]
    assert protocol.decode(groups[1][0]).more == ()
    assert outbox.pending == 4 and outbox.groups() == [], "kept until acked, handed out once"
    assert not outbox.acks_due(T0 + 1.0), "nothing owed any more"


def test_a_gathered_deliver_is_retransmitted_alone_and_forgotten_when_acked() -> None:
    outbox = welcomed(retransmit_after_s=2.0)
    outbox.gather("b", "m-1", b"1", T0)
    outbox.gather("b", "m-2", b"2", T0)
    assert group_ids(outbox) == [("b", ["m-1", "m-2"])]
    assert receive(outbox, ack_from("b", "m-1")).acked == ["m-1"]
    frame = outbox.retransmit(T0 + 2.0)
    assert delivered(frame) == Envelope(kind=protocol.DELIVER, src=NAME, dst="b", id="m-2", body=b"2"), \
        "a receiver that reads only the first deliver of a frame still gets every one, one by one"
    assert outbox.retransmit(T0 + 2.0) is None


def test_groups_are_split_at_the_most_delivers_and_bytes_a_frame_carries() -> None:
    outbox = welcomed(max_outbox=1000)
    for n in range(MAX_GROUP + 1):
        outbox.gather("b", f"m-{n}", b"x", T0)
    assert [len(ids) for _, ids in group_ids(outbox)] == [MAX_GROUP, 1]
    big = b"x" * (MAX_GROUP_BYTES // 3)
    for n in range(4):
        outbox.gather("b", f"big-{n}", big, T0)
    groups = outbox.groups()
    assert [[e.id for e in entries] for _, entries in groups] == [["big-0", "big-1"], ["big-2", "big-3"]]
    assert all(len(frame) <= MAX_GROUP_BYTES for frame, _ in groups)
    huge = b"x" * (MAX_GROUP_BYTES + 1)
    outbox.gather("b", "huge", huge, T0)
    assert group_ids(outbox) == [("b", ["huge"])], "one deliver larger than a group still goes, alone"


def test_a_refused_group_is_tried_again_deliver_by_deliver_after_link_retry() -> None:
    outbox = welcomed(retransmit_after_s=2.0)
    outbox.gather("b", "m-1", b"1", T0)
    outbox.gather("b", "m-2", b"2", T0)
    [(_, entries)] = outbox.groups()
    outbox.refused_group(entries, T0)
    assert outbox.pending == 2 and retransmits(outbox, T0) == []
    assert retransmits(outbox, T0 + LINK_RETRY_S) == ["m-1", "m-2"]
    assert retransmits(outbox, T0 + LINK_RETRY_S + 1.999) == [], "the refused attempt did not count"


def test_gathering_is_refused_by_a_full_outbox_and_a_replaced_id_goes_once() -> None:
    outbox = welcomed(max_outbox=2)
    assert outbox.gather("b", "m-1", b"old", T0) and outbox.gather("b", "m-2", b"2", T0)
    assert not outbox.gather("b", "m-3", b"3", T0)
    assert outbox.gather("b", "m-1", b"new", T0), "a pending id is replaced, not refused"
    [(frame, _)] = outbox.groups()
    assert [(d.id, d.body) for d in protocol.decode(frame).delivers()] == [("m-2", b"2"), ("m-1", b"new")]


def test_a_received_group_is_its_delivers_for_the_actor_in_order() -> None:
    outbox = welcomed()
    outbox.deliver("b", "m-1", b"x", T0)
    group = Envelope(kind=protocol.DELIVER, src="b", dst=NAME, id="b-1", body=b"1", acks=("m-1",),
                     more=(("b-2", b"2"), ("b-3", b"3"))).encode()
    received = receive(outbox, group)
    assert received.acked == ["m-1"]
    assert [(e.src, e.id, e.body) for e in received.for_actor] == [("b", "b-1", b"1"), ("b", "b-2", b"2"),
                                                                   ("b", "b-3", b"3")]


# ----------------------------------------------------------------- the link refusing a frame


def test_a_refused_deliver_is_tried_again_after_link_retry_without_spinning() -> None:
    outbox = welcomed(retransmit_after_s=2.0)
    frame = outbox.deliver("b", "m-1", b"x", T0)
    outbox.refused(T0)
    assert outbox.is_pending("m-1"), "kept: QUEUED, not lost"
    assert outbox.retransmit(T0) is None, "not due again at once: the loop would spin"
    assert outbox.next_deadline() == T0 + LINK_RETRY_S
    retry_s = T0 + LINK_RETRY_S
    assert outbox.retransmit(retry_s) is frame
    # The refused attempt did not count: the next copy waits the first timeout, not its double.
    assert retransmits(outbox, retry_s + 1.999) == []
    assert retransmits(outbox, retry_s + 2.0) == ["m-1"]


def test_a_refused_retransmit_makes_everything_due_wait_link_retry() -> None:
    outbox = welcomed(retransmit_after_s=0.5)  # due before the first heartbeat, which would be the deadline
    for n in range(3):
        outbox.deliver("b", f"m-{n}", b"x", T0)
    due_s = T0 + 0.5
    assert outbox.retransmit(due_s) is not None
    outbox.refused(due_s)
    assert outbox.retransmit(due_s) is None, "the link is full: the rest waits too"
    assert outbox.next_deadline() == due_s + LINK_RETRY_S
    retry_s = due_s + LINK_RETRY_S
    assert sorted(retransmits(outbox, retry_s)) == ["m-0", "m-1", "m-2"]
    # Each has been taken twice, so the next copies wait the doubled timeout.
    assert retransmits(outbox, retry_s + 0.999) == []
    assert sorted(retransmits(outbox, retry_s + 1.0)) == ["m-0", "m-1", "m-2"]


def test_refused_after_a_frame_that_is_never_retried_changes_nothing() -> None:
    outbox = welcomed(retransmit_after_s=2.0)
    outbox.deliver("b", "m-1", b"x", T0)
    outbox.command("b", {"op": "status"})
    outbox.refused(T0)  # the command was refused, not the deliver
    assert outbox.next_deadline() == T0 + HEARTBEAT_INTERVAL_S
    assert retransmits(outbox, T0 + 1.999) == []
    assert retransmits(outbox, T0 + 2.0) == ["m-1"]


# ----------------------------------------------------------------- resending when things change


def test_a_peer_coming_up_brings_its_delivers_at_once_with_a_fresh_backoff() -> None:
    outbox = welcomed(retransmit_after_s=20.0)
    outbox.deliver("b", "m-1", b"x", T0)
    outbox.deliver("c", "m-2", b"x", T0)
    assert outbox.receive_event(event("actor.b.up", instance="i1"), T0 + 1.0) is not None
    assert retransmits(outbox, T0 + 1.0) == ["m-1"], "only b's"
    assert retransmits(outbox, T0 + 20.0) == ["m-2"]
    # m-1 had been sent once before b came up; counted afresh, its next copy is 20 s away, not 40 (30, capped).
    assert retransmits(outbox, T0 + 1.0 + 20.0) == ["m-1"]


def test_a_welcome_from_a_new_broker_instance_resends_everything() -> None:
    outbox = welcomed("i1", retransmit_after_s=NEVER_S)
    outbox.deliver("b", "m-1", b"x", T0)
    outbox.deliver("c", "m-2", b"x", T0)
    receive(outbox, welcome("i1"), T0 + 1.0)
    assert retransmits(outbox, T0 + 1.0) == [], "the same broker: nothing was lost"
    receive(outbox, welcome("i2"), T0 + 2.0)
    assert outbox.broker_instance == "i2"
    assert sorted(retransmits(outbox, T0 + 2.0)) == ["m-1", "m-2"]


# ----------------------------------------------------------------- acks


def test_an_ack_leaves_at_once_without_a_delay() -> None:
    outbox = welcomed()
    assert not outbox.ack_starts_delay
    frame = outbox.ack("b", "m-1", None)
    assert frame is not None
    assert protocol.decode(frame) == Envelope(kind=protocol.ACK, src=NAME, dst="b", corr="m-1")


def test_a_delayed_ack_rides_on_the_next_deliver_to_its_peer() -> None:
    outbox = welcomed(ack_delay_s=0.5)
    assert outbox.ack_starts_delay
    assert outbox.ack("b", "order-1", T0) is None
    assert not outbox.ack_starts_delay
    assert delivered(outbox.deliver("c", "other-1", b"x", T0 + 0.1)).acks == (), "c is owed nothing"
    report = delivered(outbox.deliver("b", "report-1", b"report", T0 + 0.2))
    assert report.acks == ("order-1",) and report.body == b"report"
    assert outbox.flush_acks() == [] and not outbox.acks_due(T0 + 10.0), "carried: nothing left to flush"
    assert outbox.ack_starts_delay


def test_owed_acks_leave_together_when_the_delay_is_up() -> None:
    outbox = welcomed(ack_delay_s=0.5)
    assert outbox.ack("b", "m-1", T0) is None
    assert outbox.ack("b", "m-2", None) is None, "the delay runs already: no clock needed"
    assert outbox.ack("c", "m-3", T0 + 0.3) is None
    assert outbox.next_deadline() == T0 + 0.5, "the delay starts at the first owed ack"
    assert not outbox.acks_due(T0 + 0.499)
    assert outbox.acks_due(T0 + 0.5)
    assert [protocol.decode(f) for f in outbox.flush_acks()] == [
        Envelope(kind=protocol.ACK, src=NAME, dst="b", corr="m-1", acks=("m-2",)),
        Envelope(kind=protocol.ACK, src=NAME, dst="c", corr="m-3"),
    ]
    assert not outbox.acks_due(T0 + 10.0) and outbox.ack_starts_delay
    assert outbox.next_deadline() == T0 + HEARTBEAT_INTERVAL_S
    assert outbox.flush_acks() == [], "sent once"
    assert delivered(outbox.deliver("b", "next", b"x", T0 + 0.6)).acks == (), "nothing left to ride"


def test_a_retransmitted_deliver_whose_ack_is_owed_is_owed_once() -> None:
    """A peer that retransmits before the delayed ack left gets one ack for both copies."""
    outbox = welcomed(ack_delay_s=0.5)
    assert outbox.ack("b", "m-1", T0) is None
    assert outbox.ack("b", "m-1", None) is None
    assert outbox.ack("b", "m-2", None) is None
    assert [protocol.decode(f).acknowledged() for f in outbox.flush_acks()] == [["m-1", "m-2"]]
    assert outbox.ack("b", "m-1", T0 + 1.0) is None, "acked already: a later copy is owed again"
    assert delivered(outbox.deliver("b", "report", b"x", T0 + 1.1)).acks == ("m-1",)


def test_the_first_owed_ack_needs_the_time() -> None:
    outbox = welcomed(ack_delay_s=0.5)
    with pytest.raises(ValueError, match="now_s"):
        outbox.ack("b", "m-1", None)
    assert outbox.flush_acks() == [], "nothing owed after the refused call"


def test_a_full_envelope_of_owed_acks_leaves_at_once() -> None:
    outbox = welcomed(ack_delay_s=60.0)
    ids = [f"m-{n}" for n in range(MAX_ACKS_PER_ENVELOPE)]
    assert [outbox.ack("b", id, T0) for id in ids[:-1]] == [None] * (MAX_ACKS_PER_ENVELOPE - 1)
    frame = outbox.ack("b", ids[-1], T0)
    assert frame is not None
    assert protocol.decode(frame).acknowledged() == ids
    assert outbox.flush_acks() == [] and outbox.ack_starts_delay


# ----------------------------------------------------------------- back pressure


def test_a_full_outbox_refuses_with_a_value_and_replaces_a_pending_id() -> None:
    outbox = welcomed(max_outbox=2)
    outbox.deliver("b", "m-0", b"x", T0)
    outbox.deliver("b", "m-1", b"x", T0)
    assert outbox.deliver("b", "m-2", b"x", T0) is Outcome.FULL
    assert not outbox.is_pending("m-2")
    assert delivered(outbox.deliver("b", "m-0", b"again", T0)).body == b"again", "a pending id is replaced"
    assert outbox.pending == 2
    receive(outbox, ack_from("b", "m-1"))
    assert delivered(outbox.deliver("b", "m-2", b"x", T0)).id == "m-2", "room again after an ack"


# ----------------------------------------------------------------- hello, welcome, heartbeat


def test_hello_is_retried_until_welcomed() -> None:
    outbox = new()
    first = outbox.hello(T0)
    assert first is not None
    hello = protocol.decode(first)
    assert (hello.kind, hello.src, hello.dst) == (protocol.HELLO, NAME, protocol.BROKER)
    assert outbox.hello(T0) is None
    again_s = T0 + HEARTBEAT_INTERVAL_S
    assert outbox.hello(again_s - 0.001) is None
    second = outbox.hello(again_s)
    assert second is not None and protocol.decode(second).id != hello.id
    outbox.refused(again_s)  # no connection yet: sooner than an interval
    assert outbox.hello(again_s + LINK_RETRY_S - 0.001) is None
    assert outbox.hello(again_s + LINK_RETRY_S) is not None
    receive(outbox, welcome("i1"), again_s + 0.5)
    assert outbox.welcomed
    assert outbox.hello(T0 + NEVER_S) is None


def test_a_down_event_about_this_actor_brings_a_hello_at_once() -> None:
    outbox = welcomed()
    outbox.receive_event(event("actor.b.down", instance="i1"), T0 + 0.5)
    assert outbox.welcomed and outbox.hello(T0 + 0.5) is None, "another actor's down is not ours"
    outbox.receive_event(event("actor.a.down", instance="i1"), T0 + 0.5)
    assert not outbox.welcomed
    assert outbox.next_deadline() == T0 + 0.5
    assert outbox.hello(T0 + 0.5) is not None


def test_a_down_event_before_the_welcome_leaves_the_hello_retries_alone() -> None:
    outbox = new()
    outbox.hello(T0)
    outbox.receive_event(event("actor.a.down", instance="i1"), T0 + 0.5)
    assert outbox.hello(T0 + 0.5) is None


def test_a_broker_event_with_a_new_instance_brings_a_hello() -> None:
    outbox = welcomed("i1")
    outbox.receive_event(event("broker.heartbeat", instance="i1"), T0 + 0.5)
    assert outbox.welcomed
    outbox.receive_event(event("broker.started", instance="i2"), T0 + 0.6)
    assert not outbox.welcomed and outbox.hello(T0 + 0.6) is not None


def test_the_brokers_answer_to_a_heartbeat_tells_a_restart_and_a_broker_that_stopped_serving() -> None:
    """A session actor subscribes to no ``broker.heartbeat``: the answers to its own heartbeats say the same."""
    outbox = welcomed("i1")
    receive(outbox, protocol.broker_heartbeat(NAME, {"instance": "i1"}).encode(), T0 + 0.5)
    assert outbox.welcomed
    receive(outbox, protocol.broker_heartbeat(NAME, {"instance": "i2"}).encode(), T0 + 0.6)
    assert not outbox.welcomed and outbox.hello(T0 + 0.6) is not None
    stopped = paired()
    receive(stopped, protocol.broker_heartbeat(NAME, {"instance": "i1", "state": "passive"}).encode(), T0 + 1)
    assert not stopped.welcomed and stopped.switch(T0 + 1) == 1
    # Only the broker answers heartbeats: one from an actor is not the broker's word.
    other = welcomed("i1")
    forged = Envelope(kind=protocol.HEARTBEAT, src="mallory", dst=NAME, body={"instance": "i9"}).encode()
    receive(other, forged, T0 + 0.5)
    assert other.welcomed and other.broker_instance == "i1"


def test_the_heartbeat_goes_every_interval_its_envelope_only_while_welcomed() -> None:
    utc_ns = 1_700_000_000_000_000_000
    outbox = new()
    outbox.hello(T0)
    assert outbox.heartbeat(Instant(T0 + HEARTBEAT_INTERVAL_S - 0.001, utc_ns)) is None
    unwelcomed = outbox.heartbeat(Instant(T0 + HEARTBEAT_INTERVAL_S, utc_ns))
    assert unwelcomed is not None and unwelcomed.frame is None
    assert protocol.decode_event(unwelcomed.event) == ("actor.a.heartbeat", {"time_ns": utc_ns, "incarnation": "t",
                                                                            "actor": NAME})
    assert outbox.next_deadline() == T0 + HEARTBEAT_INTERVAL_S, "the hello retry comes first"
    outbox.hello(T0 + HEARTBEAT_INTERVAL_S)
    receive(outbox, welcome("i1"))
    assert outbox.next_deadline() == T0 + 2 * HEARTBEAT_INTERVAL_S
    beat = outbox.heartbeat(Instant(T0 + 2 * HEARTBEAT_INTERVAL_S, utc_ns + 1))
    assert beat is not None and beat.frame is not None
    assert protocol.decode(beat.frame) == Envelope(kind=protocol.HEARTBEAT, src=NAME, dst=protocol.BROKER)


def test_events_are_stamped_with_the_actor_and_the_time_unless_given() -> None:
    outbox = new()
    assert protocol.decode_event(outbox.event("session.a.state", {"new": "up"}, 5)) == \
        ("session.a.state", {"time_ns": 5, "new": "up", "actor": NAME})
    assert protocol.decode_event(outbox.event("t", {"time_ns": 7, "actor": "x"}, 5)) == \
        ("t", {"time_ns": 7, "actor": NAME})


# ----------------------------------------------------------------- what arrives


def test_delivers_commands_and_replies_go_to_the_actor_with_their_acks_applied() -> None:
    outbox = welcomed()
    outbox.deliver("b", "m-1", b"x", T0)
    carrying = Envelope(kind=protocol.DELIVER, src="b", dst=NAME, id="r-1", body=b"report", acks=("m-1",))
    command = Envelope(kind=protocol.COMMAND, src="c", dst=NAME, id="c-1", body={"op": "status"})
    received = Received()
    for envelope in (carrying, command):
        outbox.receive(envelope.encode(), T0, received)
    assert received == Received(for_actor=[carrying, command], acked=["m-1"], undeliverable=[])


def test_an_undeliverable_deliver_is_kept_and_reported_a_commands_goes_to_the_actor() -> None:
    outbox = welcomed(retransmit_after_s=NEVER_S)
    outbox.deliver("b", "m-1", b"x", T0)
    refused = protocol.undeliverable(Envelope(kind=protocol.DELIVER, src=NAME, dst="b", id="m-1"), "down")
    received = receive(outbox, refused.encode())
    assert received.undeliverable == [refused] and received.for_actor == []
    assert outbox.is_pending("m-1")
    command_id, _ = outbox.command("b", {"op": "status"})
    lost = protocol.undeliverable(Envelope(kind=protocol.COMMAND, src=NAME, dst="b", id=command_id), "down")
    assert receive(outbox, lost.encode()).for_actor == [lost]


@pytest.mark.parametrize("frame", [
    b"\xc1 not msgpack",
    Envelope(kind=protocol.DELIVER, src="b", dst="someone-else", id="x").encode(),
    Envelope(kind=protocol.HELLO, src="b", dst=NAME, id="x").encode(),
], ids=["malformed", "misaddressed", "a kind the broker never sends to actors"])
def test_frames_the_client_cannot_use_are_dropped(frame: bytes) -> None:
    outbox = welcomed()
    assert receive(outbox, frame) == Received()
    assert outbox.welcomed


def test_a_malformed_event_is_dropped() -> None:
    assert welcomed().receive_event([b"actor.b.up"], T0) is None


@pytest.mark.parametrize("options", [{"max_outbox": 0}, {"retransmit_after_s": 0.0}, {"ack_delay_s": -0.1},
                                     {"brokers": 3}, {"brokers": 0}])
def test_settings_that_cannot_work_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        new(**options)


# ----------------------------------------------------------------- a pair of brokers


def paired(**options: Any) -> Outbox:
    """A client of a pair of brokers that hears their events, welcomed by the primary (``i1``) at ``T0``."""
    return welcomed(brokers=2, watches_broker=True, **options)


def passive_from(state: str = "passive", corr: str = "") -> bytes:
    return protocol.passive(NAME, corr=corr, instance="i2", role="backup", state=state).encode()


def test_a_silent_broker_is_left_for_the_other_after_the_silence_limit() -> None:
    outbox = paired()
    outbox.heard(T0 + 1)
    assert outbox.next_deadline() <= T0 + 1 + BROKER_SILENCE_S
    assert outbox.switch(T0 + 1 + BROKER_SILENCE_S - 0.01) is None and outbox.welcomed
    assert outbox.switch(T0 + 1 + BROKER_SILENCE_S) == 1
    assert outbox.broker_index == 1 and not outbox.welcomed
    hello = outbox.hello(T0 + 1 + BROKER_SILENCE_S)
    assert hello is not None and protocol.decode(hello).kind == protocol.HELLO, "a hello at once to the backup"


def test_an_unwelcomed_client_alternates_between_the_brokers_every_seek_interval() -> None:
    outbox = new(brokers=2, watches_broker=True)
    assert outbox.hello(T0) is not None
    assert outbox.switch(T0 + SEEK_S - 0.01) is None
    assert outbox.switch(T0 + SEEK_S) == 1
    assert outbox.hello(T0 + SEEK_S) is not None
    assert outbox.switch(T0 + 2 * SEEK_S) == 0
    outbox.receive(welcome("i1"), T0 + 2 * SEEK_S, Received())
    assert outbox.welcomed and outbox.switch(T0 + 2 * SEEK_S + 0.5) is None


def test_a_passive_answer_moves_the_client_at_once_but_never_faster_than_the_minimum() -> None:
    outbox = new(brokers=2, watches_broker=True)
    receive(outbox, passive_from(corr="t-0"), T0 + 1)
    assert outbox.switch(T0 + 1) == 1, "a second after the start: at once"
    assert outbox.hello(T0 + 1) is not None
    receive(outbox, passive_from(state="starting"), T0 + 1.01)
    assert outbox.switch(T0 + 1.01) is None, "both refuse: no spin"
    assert outbox.switch(T0 + 1 + MIN_SWITCH_S - 0.01) is None
    assert outbox.switch(T0 + 1 + MIN_SWITCH_S) == 0


def test_the_other_brokers_welcome_resends_every_unacked_deliver() -> None:
    outbox = paired(retransmit_after_s=NEVER_S)
    for n in range(3):
        delivered(outbox.deliver("b", f"m{n}", {}, T0))
    assert outbox.switch(T0 + BROKER_SILENCE_S) == 1
    outbox.receive(protocol.welcome(NAME, corr="t-1", instance="i2").encode(), T0 + BROKER_SILENCE_S, Received())
    assert outbox.welcomed and outbox.broker_instance == "i2"
    assert retransmits(outbox, T0 + BROKER_SILENCE_S) == ["m0", "m1", "m2"]


def test_a_broker_that_stops_serving_sends_its_clients_away() -> None:
    """Unasked ``passive`` (the backup yields after a split), or its own event saying so."""
    outbox = paired()
    receive(outbox, passive_from(), T0 + 1)
    assert not outbox.welcomed and outbox.switch(T0 + 1) == 1
    other = paired()
    other.receive_event(event("broker.switch", instance="i1", state="passive"), T0 + 1)
    assert not other.welcomed and other.switch(T0 + 1) == 1
    # Another instance's word is not this broker's: a hello to it again (as after a restart), no move yet.
    stale = paired()
    stale.receive_event(event("broker.heartbeat", instance="i0", state="passive"), T0 + 1)
    assert stale.switch(T0 + 1) is None and stale.broker_index == 0 and stale.hello(T0 + 1) is not None


def test_hearing_the_broker_keeps_the_client_there() -> None:
    outbox = paired()
    for second in range(1, 30):
        outbox.heard(T0 + second)
        assert outbox.switch(T0 + second + 0.5) is None
    assert outbox.broker_index == 0 and outbox.welcomed


def test_with_one_broker_or_without_its_events_the_client_never_switches() -> None:
    alone = welcomed()
    assert alone.switch(T0 + 100) is None
    receive(alone, passive_from(), T0 + 1)
    assert not alone.welcomed and alone.switch(T0 + 100) is None
    assert alone.hello(T0 + 1) is None and alone.hello(T0 + 1 + HEARTBEAT_INTERVAL_S) is not None
    deaf = welcomed(brokers=2)
    assert deaf.switch(T0 + 100) is None and deaf.welcomed, "silence means nothing without the broker's events"


def test_a_lease_is_asked_for_in_hello_and_heartbeat_and_followed() -> None:
    outbox = new(lease="coordinator")
    hello = protocol.decode(outbox.hello(T0) or b"")
    assert protocol.lease_asked(hello) == "coordinator"
    outbox.receive(protocol.welcome(NAME, corr="t-0", instance="i1", lease_held=False).encode(), T0, Received())
    assert outbox.welcomed and not outbox.lease_held
    beat = outbox.heartbeat(Instant(T0 + HEARTBEAT_INTERVAL_S, 0))
    assert beat is not None and beat.frame is not None and protocol.lease_asked(protocol.decode(beat.frame))
    # The holder went down: the broker passes the lease on with another welcome.
    outbox.receive(protocol.welcome(NAME, corr="", instance="i1", lease_held=True).encode(), T0 + 2, Received())
    assert outbox.lease_held
    refused = Envelope(kind=protocol.UNDELIVERABLE, src=protocol.BROKER, dst=NAME, corr="c1",
                       body={"dst": "venue", "reason": protocol.REASON_STANDBY})
    assert receive(outbox, refused.encode()).for_actor == [refused]
    assert not outbox.lease_held, "a command refused standby: the lease is somebody else's now"
    outbox.receive(protocol.welcome(NAME, corr="", instance="i1", lease_held=True).encode(), T0 + 3, Received())
    outbox.receive_event(event("actor.a.down"), T0 + 4)
    assert not outbox.welcomed and not outbox.lease_held, "not welcomed: no lease"
    assert protocol.lease_asked(protocol.decode(new().hello(T0) or b"")) is None


def test_the_outbox_imports_no_socket_and_reads_no_clock() -> None:
    """STYLE principle 1, checked in a fresh interpreter: the sockets and the clock are the shell's."""
    code = ("import sys\nbefore = set(sys.modules)\nimport actors.gateway.outbox\n"
            "print('\\n'.join(sorted(set(sys.modules) - before)))\n")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    assert "actors.gateway.outbox" in loaded
    forbidden = ("zmq", "socket", "selectors", "asyncio", "actors.shell", "actors.gateway.bus")
    assert not [m for m in loaded for f in forbidden if m == f or m.startswith(f + ".")]
    source = (ROOT / "actors" / "gateway" / "outbox.py").read_text()
    for needle in ("time.monotonic(", "time.time(", "time.perf_counter(", "datetime.now(", "clock.now"):
        assert needle not in source, needle
