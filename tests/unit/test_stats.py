"""A session's counters: what the driver counts, what the actor counts, and the reading that carries both.

The driver's counts are checked on the in-memory pair with a fake clock
(real sessions, real outputs): new messages by MsgType, application
messages received, a gap answered with a resend and a gap fill. The actor's
counts come from the core's own outputs: logons and logouts from state
changes, rejects from the core's reject events, whose texts this test makes
the core produce, so a changed wording in the core fails here.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from actors.fix.message import Message
from actors.fix.outputs import SessionEvent, StateChanged
from actors.fix.states import SessionState as S
from actors.gateway.stats import BUSINESS, OTHER, RECEIVED, SENT, SessionCounters, reject_of
from actors.gateway.vocabulary import HistogramBody, Malformed, SessionStats, StatusReply, parse_reply
from actors.shell.traffic import Histogram
from tests.pair import SessionPair, send_orders

T_NS = 1_767_225_600_000_000_000


def logged_on_pair() -> SessionPair:
    pair = SessionPair()
    pair.connect()
    assert pair.both_logged_on
    return pair


# ------------------------------------------------------------------ histograms


def test_a_histogram_counts_each_value_in_the_first_bucket_whose_bound_is_not_below_it() -> None:
    h = Histogram([0.001, 0.01, 0.1])
    for value in (0.0005, 0.001, 0.002, 0.1, 0.5, 7.0):
        h.observe(value)
    assert h.counts == [2, 1, 1, 2]  # <=1ms: 0.5ms and 1ms (le is inclusive); the last: above every bound
    assert h.count == 6 and h.sum == pytest.approx(7.6035)
    body = HistogramBody.parse(h.to_body(), "h")
    assert body.cumulative() == [(0.001, 2), (0.01, 3), (0.1, 4), (float("inf"), 6)]


def test_histogram_bounds_must_ascend() -> None:
    with pytest.raises(ValueError):
        Histogram([0.1, 0.01])


# ------------------------------------------------------------------ the driver's counts


def test_the_driver_counts_new_messages_by_type_and_application_messages_received() -> None:
    pair = logged_on_pair()
    send_orders(pair.initiator, [1, 2, 3])
    pair.pump()
    sent, received = pair.initiator.driver.traffic, pair.acceptor.driver.traffic
    assert sent.sent == {"A": 1, "D": 3}
    assert received.received == {"D": 3}  # the Logon was handled by the core: not an application message
    assert received.sent == {"A": 1} and sent.received == {}
    assert received.reads >= 4  # a read per message at least: the Logon and three orders
    assert sent.store_sync.count >= 1  # the stored messages were synced, and the sync timed


def test_a_gap_is_asked_for_and_answered_with_a_resend_and_a_gap_fill() -> None:
    pair = logged_on_pair()
    pair.fault.drop = 1.0
    send_orders(pair.initiator, [1, 2])
    pair.pump()
    pair.fault.drop = 0.0
    send_orders(pair.initiator, [3])
    pair.pump()
    asker, answerer = pair.acceptor.driver.traffic, pair.initiator.driver.traffic
    assert asker.sent.get("2") == 1  # one ResendRequest, from the gap on (EndSeqNo 0: everything after it)
    assert answerer.resend_requests_answered == 1
    assert answerer.resent == 3  # the two orders it lost and the one that showed the gap, PossDup
    assert answerer.gap_fills_sent == 0
    assert answerer.sent == {"A": 1, "D": 3}  # resends are not new messages
    assert asker.received == {"D": 3}


def test_a_session_message_in_a_resent_range_goes_as_a_gap_fill() -> None:
    pair = logged_on_pair()
    pair.fault.drop = 1.0
    pair.advance(31)  # a Heartbeat from each side (HeartBtInt 30), the initiator's lost
    pair.fault.drop = 0.0
    send_orders(pair.initiator, [1])
    pair.pump()
    answerer = pair.initiator.driver.traffic
    assert answerer.gap_fills_sent == 1 and answerer.resent == 1  # the Heartbeat gap-filled, the order resent
    assert answerer.sent.get("0") == 1


# ------------------------------------------------------------------ the actor's counts


def test_logons_logouts_and_logged_on_since_follow_the_state_changes() -> None:
    c = SessionCounters()
    c.on_state(StateChanged(S.DISCONNECTED, S.CONNECTING, "connecting", 1, 1, T_NS))
    c.on_state(StateChanged(S.CONNECTING, S.CONNECTED, "Logon reply received", 2, 2, T_NS + 5))
    assert (c.logons, c.logouts, c.logged_on_since_ns) == (1, 0, T_NS + 5)
    c.on_state(StateChanged(S.CONNECTED, S.WAITING_FOR_LOGOFF, "logout", 3, 2, T_NS + 9))
    assert c.logouts == 0 and c.logged_on_since_ns == T_NS + 5  # still logged on until the answer
    c.on_state(StateChanged(S.WAITING_FOR_LOGOFF, S.DISCONNECTED, "Logout exchange complete", 3, 3, T_NS + 10))
    assert (c.logons, c.logouts, c.logged_on_since_ns) == (1, 1, None)
    c.on_state(StateChanged(S.DISCONNECTED, S.CONNECTING, "connecting", 3, 3, T_NS + 20))
    c.on_state(StateChanged(S.CONNECTING, S.DISCONNECTED_ABNORMALLY, "refused", 3, 3, T_NS + 21))
    assert (c.logons, c.logouts) == (1, 1)  # a failed connect is neither


def events_of(pair: SessionPair, side: str) -> list[SessionEvent]:
    return [o for o in getattr(pair, side).app.outputs if isinstance(o, SessionEvent)]


def test_a_reject_we_send_is_counted_by_its_session_reject_reason() -> None:
    pair = logged_on_pair()
    pair.initiator.driver.send("4", [])  # a SequenceReset without its NewSeqNo(36)
    pair.pump()
    rejects = [reject_of(e) for e in events_of(pair, "acceptor") if e.kind == "reject"]
    assert rejects == [(SENT, "required_tag_missing")]
    received = [reject_of(e) for e in events_of(pair, "initiator") if e.kind == "reject"]
    assert received == [(RECEIVED, "required_tag_missing")]  # the peer's Text(58) names the reason
    assert pair.acceptor.driver.traffic.sent.get("3") == 1


def test_reject_texts_without_a_standard_reason_are_other_and_business_rejects_have_their_own() -> None:
    assert reject_of(SessionEvent("reject", "peer rejected our message 7: no such thing", 1, 1, T_NS)) == (
        RECEIVED, OTHER)
    assert reject_of(SessionEvent("business_reject", "rejected Z 4: unsupported", 1, 1, T_NS)) == (SENT, BUSINESS)
    assert reject_of(SessionEvent("gap", "MsgSeqNum too high", 1, 1, T_NS)) is None
    c = SessionCounters()
    c.on_event(SessionEvent("reject", "rejected D 5: Required tag missing (tag 11)", 1, 1, T_NS))
    c.on_event(SessionEvent("reject", "rejected D 6: Required tag missing (tag 55)", 1, 1, T_NS))
    c.on_event(SessionEvent("gap", "MsgSeqNum too high", 1, 1, T_NS))
    assert c.rejects == {SENT: {"required_tag_missing": 2}}
    assert c.events == {"reject": 2, "gap": 1}


def test_forward_latency_is_from_the_peers_receipt_to_now_and_never_negative() -> None:
    c = SessionCounters()
    c.forwarded([T_NS - 2_000_000, T_NS - 30_000_000, T_NS + 1_000], T_NS)  # 2 ms, 30 ms, a clock ahead
    body = HistogramBody.parse(c.forward_latency.to_body(), "latency")
    cumulative = dict(body.cumulative())
    assert body.count == 3 and cumulative[0.0001] == 1 and cumulative[0.0025] == 2 and cumulative[0.05] == 3
    assert body.sum == pytest.approx(0.032)


def test_a_reading_carries_both_counts_and_moves_the_last_message_times_only_when_counts_move() -> None:
    pair = logged_on_pair()
    c = SessionCounters()
    driver = pair.initiator.driver
    send_orders(pair.initiator, [1])
    pair.pump()
    now = pair.clock()
    first = c.reading(now, driver, role="driven", peer="client", incarnation="9-1", pid=9, logon_failures=0,
                      queues={"outbox": 1, "backlog": 0, "held": 0})
    assert first.sent == {"A": 1, "D": 1} and first.state is S.CONNECTED
    assert first.last_sent_ns == first.last_received_ns == now.utc_ns
    assert first.cpu_s > 0 and first.rss_bytes > 0
    pair.clock.advance(5)
    second = c.reading(pair.clock(), driver, role="driven", peer="client", incarnation="9-1", pid=9,
                       logon_failures=0, queues={})
    assert second.last_sent_ns == now.utc_ns  # nothing moved: the times stay
    assert SessionStats.from_body(msgpack.unpackb(msgpack.packb(second.to_body()))) == second


# ------------------------------------------------------------------ the reading on the wire


def stats(**changes: Any) -> SessionStats:
    fields: dict[str, Any] = dict(time_ns=T_NS, state=S.CONNECTED, role="handler", pid=7, incarnation="7-1",
                                  next_sender=12, next_target=10, peer="venue", remote_address="127.0.0.1:5000",
                                  logged_on_since_ns=T_NS - 10**9, sent={"A": 1, "D": 10}, received={"8": 9},
                                  rejects={SENT: {"required_tag_missing": 1}}, queues={"outbox": 2},
                                  forward_latency=HistogramBody((0.001,), (3, 1), 0.5, 4))
    fields.update(changes)
    return SessionStats(**fields)


def test_stats_round_trip_through_msgpack_alone_and_in_a_status_reply() -> None:
    s = stats()
    assert SessionStats.from_body(msgpack.unpackb(msgpack.packb(s.to_body()))) == s
    reply = StatusReply(S.CONNECTED, "client", "handler", 7, True, 0, "7-1", "Logon accepted", 3, stats=s)
    parsed = parse_reply(msgpack.unpackb(msgpack.packb(reply.to_body())))
    assert isinstance(parsed, StatusReply) and parsed.stats == s and "stats" not in parsed.core
    assert "stats" not in StatusReply(S.CONNECTED, "c", "handler", 7, True, 0, "7-1", "", 3).to_body()["status"]


@pytest.mark.parametrize(("change", "error"), [
    ({"sent": {"D": "10"}}, "stats: sent is {'D': '10'}; expected a map of names to counts"),
    ({"state": "UP"}, "stats: state is 'UP'; expected a session state name"),
    ({"forward_latency": {"bounds": [1.0], "counts": [1], "sum": 0, "count": 1}},
     "stats's forward_latency: counts is [1]; expected a list of counts, one more than the bounds"),
    ({"cpu_s": True}, "stats: cpu_s is True; expected a number"),
])
def test_malformed_stats_are_an_error_value(change: dict[str, Any], error: str) -> None:
    assert SessionStats.from_body({**stats().to_body(), **change}) == Malformed(error)


def test_the_core_message_type_is_what_the_driver_counts() -> None:
    # The driver counts ``Message.msg_type``: the text of 35, the label Prometheus shows.
    assert Message([(35, b"D")]).msg_type == "D"
