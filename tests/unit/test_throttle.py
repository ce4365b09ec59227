"""The throttle's rules (``actors/shell/throttle.py``), stepped with plain numbers for the time.

Properties over any arrival times: no span of ``interval_s`` holds more
admissions than the limit, and a message is refused only when a limit that
counts it is full at that moment (the throttle never refuses for nothing).
Then a session actor's use of them (``actors/gateway/throttling.py``) on a
fake clock: the BusinessMessageReject, delays, outbound waits and reports.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.fix.codec import encode, parse
from actors.fix.config import Role, SessionConfig
from actors.fix.message import Message
from actors.fix.timefmt import Instant
from actors.gateway.throttling import Rejected, SessionThrottles, Verdict
from actors.shell.throttle import (
    NOW,
    Action,
    Admission,
    InboundThrottling,
    Limit,
    OutboundThrottling,
    Rates,
    Throttle,
    ThrottledQueue,
    ThrottleReport,
    ThrottleSettings,
)
from tests.system.raw_fix import most_in_any_window


def test_a_limit_admits_its_count_then_the_next_when_the_oldest_stops_counting() -> None:
    throttle = Throttle(Rates(Limit(3, 1.0)))
    assert [throttle.admit("D", t) for t in (0.0, 0.1, 0.2, 0.3)] == [True, True, True, False]
    assert throttle.free_at("D", 0.5) == 1.0
    assert not throttle.admit("D", 0.999)
    assert throttle.admit("D", 1.0)  # the admission at 0.0 counts until 1.0, exclusive
    assert throttle.free_at("8", 1.05) == 1.1  # its deadline does not move with the clock that asks
    assert not throttle.admit("D", 1.05)
    assert throttle.admit("D", 1.1)


def test_refused_messages_count_nowhere() -> None:
    throttle = Throttle(Rates(Limit(2, 1.0)))
    assert throttle.admit("D", 0.0) and throttle.admit("D", 0.0)
    for i in range(1000):  # a flood that is refused
        assert not throttle.admit("D", 0.5 + i / 10_000)
    assert throttle.admit("D", 1.0) and throttle.admit("D", 1.0)


def test_a_msg_type_limit_counts_its_own_type_and_the_overall_limit_counts_all() -> None:
    throttle = Throttle(Rates(Limit(5, 1.0), (("D", Limit(2, 1.0)),)))
    assert throttle.admit("D", 0.0) and throttle.admit("D", 0.0)
    assert not throttle.admit("D", 0.1)  # D's own limit
    assert throttle.binding_limit("D", 0.1) == "2 per 1 s of D"
    assert all(throttle.admit("F", 0.2) for _ in range(3))  # the overall limit has room for 3 more
    assert not throttle.admit("F", 0.3)
    assert throttle.binding_limit("F", 0.3) == "5 per 1 s"
    assert throttle.free_at("D", 0.3) == 1.0


def test_only_a_msg_type_limit_leaves_the_other_types_unthrottled() -> None:
    throttle = Throttle(Rates(None, (("D", Limit(1, 2.0)),)))
    assert throttle.admit("D", 0.0) and not throttle.admit("D", 1.0)
    assert throttle.free_at("8", 1.0) == NOW
    assert all(throttle.admit("8", 1.0) for _ in range(10_000))
    assert throttle.admit("D", 2.0)


def test_time_going_backwards_is_read_as_the_latest_time_seen() -> None:
    throttle = Throttle(Rates(Limit(1, 1.0)))
    assert throttle.admit("D", 10.0)
    assert not throttle.admit("D", 5.0)
    assert throttle.free_at("D", 5.0) == 11.0


@pytest.mark.parametrize("rates", [
    lambda: Rates(None, ()),
    lambda: Rates(Limit(1), (("0", Limit(1)),)),
    lambda: Rates(Limit(0)),
    lambda: Rates(Limit(1, 0.0)),
])
def test_rates_that_cannot_work_are_refused(rates: object) -> None:
    with pytest.raises(ValueError):
        rates()  # type: ignore[operator]


@given(
    count=st.integers(1, 20),
    interval_s=st.sampled_from([0.01, 0.5, 1.0, 3.0]),
    gaps=st.lists(st.floats(0.0, 0.5, allow_nan=False), min_size=1, max_size=300),
    types=st.lists(st.sampled_from("DFG8"), min_size=300, max_size=300),
)
def test_no_window_holds_more_than_the_limit_and_nothing_is_refused_for_nothing(
        count: int, interval_s: float, gaps: list[float], types: list[str]) -> None:
    d_count = max(1, count // 2)
    throttle = Throttle(Rates(Limit(count, interval_s), (("D", Limit(d_count, interval_s)),)))
    now = 0.0
    admitted: list[tuple[float, str]] = []
    for gap, msg_type in zip(gaps, types, strict=False):
        now += gap
        if throttle.admit(msg_type, now):
            admitted.append((now, msg_type))
        else:
            # Refused: a limit that counts it held its full count in (now - interval_s, now].
            recent = [(t, m) for t, m in admitted if t + interval_s > now]
            recent_d = [t for t, m in recent if m == "D"]
            assert len(recent) >= count or (msg_type == "D" and len(recent_d) >= d_count)
    assert most_in_any_window([t for t, _ in admitted], interval_s) <= count
    assert most_in_any_window([t for t, m in admitted if m == "D"], interval_s) <= d_count


def test_a_queue_keeps_order_behind_a_waiting_message_and_releases_at_the_rate() -> None:
    queue: ThrottledQueue[str] = ThrottledQueue(Throttle(Rates(Limit(2, 1.0), (("D", Limit(1, 1.0)),))), 10)
    assert queue.offer(1, "D", "d1", 0.0) is Admission.PASS
    assert queue.offer(2, "D", "d2", 0.0) is Admission.QUEUED
    # F has room under its limits, but waits behind d2: a cancel never overtakes its order.
    assert queue.offer(3, "F", "f3", 0.0) is Admission.QUEUED
    assert queue.offer(2, "D", "d2", 0.1) is Admission.QUEUED  # a repeat is queued once
    assert len(queue) == 2
    assert queue.next_release_s(0.2) == 1.0
    assert queue.release(0.5) == []
    released = queue.release(1.0)
    assert [q.item for q in released] == ["d2", "f3"]
    assert queue.next_release_s(1.0) is None


def test_expired_messages_leave_the_head_in_order_without_a_throttle_slot() -> None:
    queue: ThrottledQueue[str] = ThrottledQueue(Throttle(Rates(Limit(1, 1.0))), 10)
    assert queue.offer(1, "D", "live", 0.0) is Admission.PASS
    assert queue.offer(2, "D", "a", 0.0, expires_s=0.5) is Admission.QUEUED
    assert queue.offer(3, "D", "b", 0.1, expires_s=0.6) is Admission.QUEUED
    assert queue.offer(4, "D", "c", 0.2) is Admission.QUEUED  # no time-to-live
    assert queue.offer(5, "D", "d", 0.2, expires_s=0.3) is Admission.QUEUED  # behind c: waits for c to leave
    assert queue.next_expiry_s() == 0.5
    assert queue.expired(0.49) == []
    assert [q.item for q in queue.expired(0.5)] == ["a"]
    assert 2 not in queue and queue.next_expiry_s() == 0.6
    assert [q.item for q in queue.expired(0.9)] == ["b"]
    assert queue.next_expiry_s() is None and queue.expired(5.0) == []  # c never expires, and d waits behind it
    assert [q.item for q in queue.release(1.0)] == ["c"], "the expired ones used no slot of the window"
    assert [q.item for q in queue.expired(1.0)] == ["d"] and len(queue) == 0


def test_a_full_queue_refuses_and_with_refuse_until_empty_keeps_refusing_until_drained() -> None:
    queue: ThrottledQueue[int] = ThrottledQueue(Throttle(Rates(Limit(1, 1.0))), 2, refuse_until_empty=True)
    assert queue.offer(0, "8", 0, 0.0) is Admission.PASS
    assert [queue.offer(i, "8", i, 0.0) for i in (1, 2, 3)] == [Admission.QUEUED, Admission.QUEUED, Admission.FULL]
    assert queue.refusing
    assert [q.item for q in queue.release(1.0)] == [1]
    assert queue.offer(3, "8", 3, 1.0) is Admission.FULL  # room again, but 3's successors were refused too
    assert [q.item for q in queue.release(2.0)] == [2]
    assert queue.offer(3, "8", 3, 2.5) is Admission.QUEUED  # drained: the repeats come in their order
    assert not queue.refusing


def test_without_refuse_until_empty_a_queue_takes_again_as_soon_as_it_has_room() -> None:
    queue: ThrottledQueue[int] = ThrottledQueue(Throttle(Rates(Limit(1, 1.0))), 1)
    assert queue.offer(0, "D", 0, 0.0) is Admission.PASS
    assert queue.offer(1, "D", 1, 0.0) is Admission.QUEUED
    assert queue.offer(2, "D", 2, 0.0) is Admission.FULL
    queue.release(1.0)
    assert queue.offer(3, "D", 3, 1.0) is Admission.QUEUED
    assert [q.item for q in queue.take_all()] == [3] and len(queue) == 0


def test_a_report_is_due_at_once_then_at_most_once_per_interval() -> None:
    report = ThrottleReport(every_s=1.0)
    assert report.due_s() is None and report.take(0.0) is None
    report.note("D", 10, 5.0)
    assert report.due_s() == 5.0
    first = report.take(5.0)
    assert first is not None and (first.count, first.first_seq, first.last_seq, first.total) == (1, 10, 10, 1)
    for seq in range(11, 111):
        report.note("D" if seq % 2 else "G", seq, 5.0 + seq / 1000)
    assert report.due_s() == 6.0
    assert report.take(5.5) is None
    second = report.take(6.0)
    assert second is not None and second.count == 100 and second.total == 101
    assert dict(second.by_msg_type) == {"D": 50, "G": 50} and (second.first_seq, second.last_seq) == (11, 110)
    assert report.take(9.0) is None


# ------------------------------------------------------- a session actor's throttles (actors.gateway.throttling)


class FakeClock:
    def __init__(self) -> None:
        self.mono_s = 100.0

    def now(self) -> Instant:
        return Instant(self.mono_s, int(self.mono_s * 1e9))


def order(seq: int, cl_ord_id: str, msg_type: bytes = b"D") -> Message:
    header = [(34, b"%d" % seq), (49, b"TRADER"), (52, b"20260101-00:00:00"), (56, b"GATEWAY")]
    return parse(encode(b"FIX.4.4", msg_type, header, [(11, cl_ord_id.encode())]))


def throttles(settings: ThrottleSettings, clock: FakeClock, config: SessionConfig | None = None,
              paused: bool = False) -> tuple[SessionThrottles[str], dict[str, list[Any]]]:
    seen: dict[str, list[Any]] = {"published": [], "counted": [], "delayed": [], "released": [], "expired": [],
                                  "paused": []}
    t: SessionThrottles[str] = SessionThrottles(
        "client", settings, config or SessionConfig("FIX.4.4", "GATEWAY", "TRADER", Role.ACCEPTOR),
        publish=lambda topic, body: seen["published"].append((topic, body)), count_event=seen["counted"].append,
        on_delayed=seen["delayed"].extend, on_released=seen["released"].extend, on_expired=seen["expired"].extend,
        on_paused=seen["paused"].extend, out_paused=lambda: paused, now=clock.now)
    return t, seen


def test_an_inbound_message_over_the_limit_gets_a_business_message_reject_and_one_report() -> None:
    clock = FakeClock()
    t, seen = throttles(ThrottleSettings(InboundThrottling(Rates(Limit(2, 1.0)))), clock)
    verdicts = [t.inbound(order(n, f"C{n}"), clock.now(), epoch=1) for n in range(1, 6)]
    assert verdicts[:2] == [Verdict.PASS, Verdict.PASS]
    rejected = verdicts[2]
    assert isinstance(rejected, Rejected) and rejected.msg_type == "j"
    assert dict(rejected.body) == {45: b"3", 58: b"throttled: over the limit of 2 per 1 s", 372: b"D", 379: b"C3",
                                   380: b"0"}
    assert seen["counted"] == ["throttled"] * 3
    assert t.next_deadline() == 100.0  # the first report is due at once
    t.on_timer()
    [(topic, body)] = seen["published"]
    assert topic == "session.client.throttled"
    assert (body["direction"], body["action"], body["count"], body["first_seq"], body["last_seq"]) == \
        ("inbound", "reject", 3, 3, 5)
    t.inbound(order(6, "C6"), clock.now(), epoch=1)
    t.on_timer()
    assert len(seen["published"]) == 1  # the next report waits for its second
    clock.mono_s += 1.0
    t.on_timer()
    assert len(seen["published"]) == 2 and seen["published"][1][1]["count"] == 1


def test_fix50sp2_rejects_with_reason_8_throttle_limit_exceeded() -> None:
    clock = FakeClock()
    config = SessionConfig("FIXT.1.1", "GATEWAY", "TRADER", Role.ACCEPTOR, default_appl_ver_id="9")
    t, _ = throttles(ThrottleSettings(InboundThrottling(Rates(None, (("D", Limit(1, 1.0)),)))), clock, config)
    assert t.inbound(order(1, "A"), clock.now(), epoch=1) is Verdict.PASS
    assert t.inbound(order(2, "B", b"F"), clock.now(), epoch=1) is Verdict.PASS  # F has no limit
    rejected = t.inbound(order(3, "C"), clock.now(), epoch=1)
    assert isinstance(rejected, Rejected) and dict(rejected.body)[380] == b"8"
    assert dict(rejected.body)[58] == b"throttled: over the limit of 1 per 1 s of D"


def test_delayed_inbound_messages_are_handed_over_in_order_when_the_window_has_room() -> None:
    clock = FakeClock()
    t, seen = throttles(ThrottleSettings(InboundThrottling(Rates(Limit(1, 1.0)), Action.DELAY, 2)), clock)
    verdicts = [t.inbound(order(n, f"C{n}"), clock.now(), epoch=7) for n in range(1, 5)]
    assert verdicts[:3] == [Verdict.PASS, Verdict.DELAYED, Verdict.DELAYED]
    assert isinstance(verdicts[3], Rejected) and b"2 messages already wait" in dict(verdicts[3].body)[58]
    assert t.depths() == {"throttled_in": 2}
    t.on_timer()
    assert seen["delayed"] == []
    assert t.next_deadline() == 101.0
    clock.mono_s = 101.0
    t.on_timer()
    assert [(d.message.get(11), d.epoch) for d in seen["delayed"]] == [(b"C2", 7)]
    clock.mono_s = 102.0
    t.on_timer()
    assert [d.message.get(11) for d in seen["delayed"]] == [b"C2", b"C3"] and t.depths() == {"throttled_in": 0}


def test_outbound_forwards_wait_then_go_and_a_full_queue_holds_the_rest_with_the_sender() -> None:
    clock = FakeClock()
    t, seen = throttles(ThrottleSettings(outbound=OutboundThrottling(Rates(Limit(1, 1.0)), 1)), clock)
    now = clock.now()
    assert [t.outbound(k, "8", k, now) for k in ("a", "b", "b", "c")] == \
        [Admission.PASS, Admission.QUEUED, Admission.QUEUED, Admission.FULL]
    assert seen["counted"] == ["throttled", "throttled"]  # the repeat of b is not counted again
    clock.mono_s = 101.0
    t.on_timer()
    assert seen["released"] == ["b"]
    actions = {body["action"] for _, body in seen["published"]}
    assert actions == {"queue", "hold"}


def test_outbound_forwards_past_their_time_to_live_expire_when_they_do_not_when_their_turn_comes() -> None:
    clock = FakeClock()
    t, seen = throttles(ThrottleSettings(outbound=OutboundThrottling(Rates(Limit(1, 1.0)))), clock)
    now = clock.now()
    assert [t.outbound(k, "D", k, now, expires_s=now.mono_s + 0.4) for k in ("a", "b", "c")] == \
        [Admission.PASS, Admission.QUEUED, Admission.QUEUED]
    assert t.outbound("live", "D", "live", now) is Admission.QUEUED
    assert t.next_deadline() == now.mono_s  # the first report
    t.on_timer()
    assert t.next_deadline() == now.mono_s + 0.4, "the timer wakes at the expiry, before the window's 1 s"
    clock.mono_s += 0.4
    t.on_timer()
    assert seen["expired"] == ["b", "c"] and seen["released"] == [] and t.depths() == {"throttled_out": 1}
    clock.mono_s += 0.6
    t.on_timer()
    assert seen["released"] == ["live"], "the live forward goes in the next slot, not after the dead ones"


def test_outbound_forwards_waiting_when_the_session_goes_offline_wait_for_the_logon_instead() -> None:
    clock = FakeClock()
    t, seen = throttles(ThrottleSettings(outbound=OutboundThrottling(Rates(Limit(1, 1.0)))), clock, paused=True)
    now = clock.now()
    assert [t.outbound(k, "8", k, now) for k in ("a", "b", "c")] == [Admission.PASS, Admission.QUEUED,
                                                                     Admission.QUEUED]
    t.on_timer()
    assert seen["paused"] == ["b", "c"] and seen["released"] == [] and t.depths() == {"throttled_out": 0}
