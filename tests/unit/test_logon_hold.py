"""An acceptor that holds its peer's Logon (``LogonHold``) and answers it later, over an in-memory link.

The gateway's ``logon_waits_for_venue`` rests on these rules of the session
core: a held Logon gets no reply until ``answer_logon``; accepting then is
the same as accepting at once; refusing sends a Logout with the reason; the
wait is bounded by ``logon_timeout_s``; what the peer sends meanwhile is not
processed. Time is a fake clock: nothing here sleeps.
"""

from __future__ import annotations

from dataclasses import replace

from actors.fix.codec import encode, parse
from actors.fix.hooks import HOLD_LOGON, LogonHold, SessionHooks
from actors.fix.message import Message
from actors.fix.outputs import Deliver, Log, SessionEvent, StateChanged
from actors.fix.states import LOGON_HELD_REASON, OFFLINE
from actors.fix.states import SessionState as S
from actors.fix.timefmt import Instant, TimestampFormatter
from tests.pair import SessionPair, Side, app_payloads, send_orders


class Hold(SessionHooks):
    """Holds every Logon, as a gateway's Handler with ``logon_waits_for_venue`` does."""

    def __init__(self, hold: LogonHold = HOLD_LOGON) -> None:
        self.hold = hold

    def on_logon_request(self, logon: Message, now: Instant) -> str | LogonHold | None:
        return self.hold


def held_pair(hold: LogonHold = HOLD_LOGON, *, initiator_logon_timeout_s: float | None = None,
              **config: object) -> SessionPair:
    """A pair whose acceptor holds the initiator's Logon; connected, so the Logon is held on return."""
    pair = SessionPair(**config)
    pair.acceptor.driver.session.hooks = Hold(hold)
    if initiator_logon_timeout_s is not None:
        # The initiator waits longer than the acceptor holds, so that the acceptor's bound is what ends the wait.
        session = pair.initiator.driver.session
        session.config = replace(session.config, logon_timeout_s=initiator_logon_timeout_s)
    pair.connect()
    return pair


def states(side: Side) -> list[S]:
    return [o.new for o in side.app.outputs if isinstance(o, StateChanged)]


def sent(side: Side) -> list[Message]:
    return [parse(data) for _, data in side.store.get_outgoing(1, 10**9)]


def logout_texts(side: Side) -> list[str | None]:
    return [m.get_str(58) for m in sent(side) if m.msg_type == "5"]


def test_a_held_logon_gets_no_reply_until_it_is_accepted_then_both_sides_trade() -> None:
    pair = held_pair()
    acceptor = pair.acceptor.driver.session
    assert acceptor.state is S.LOGON_RECEIVED and acceptor.logon_held
    assert pair.initiator.driver.session.state is S.CONNECTING
    assert sent(pair.acceptor) == [], "no Logon reply while the Logon is held"
    received = [o for o in pair.acceptor.app.outputs if isinstance(o, StateChanged) and o.new is S.LOGON_RECEIVED]
    assert [o.reason for o in received] == [LOGON_HELD_REASON]
    assert [o.kind for o in pair.acceptor.app.outputs if isinstance(o, SessionEvent)] == ["logon_held"]

    pair.acceptor.driver.answer_logon(None)
    pair.pump()
    assert pair.both_logged_on and not acceptor.logon_held
    assert states(pair.acceptor) == [S.WAITING_FOR_LOGON, S.LOGON_RECEIVED, S.CONNECTED]
    send_orders(pair.initiator, [1, 2, 3])
    send_orders(pair.acceptor, [4, 5])
    pair.pump()
    assert app_payloads(pair.acceptor.app.messages) == [b"1", b"2", b"3"]
    assert app_payloads(pair.initiator.app.messages) == [b"4", b"5"]


def test_a_held_logon_refused_gets_a_logout_with_the_reason_and_the_connection_ends() -> None:
    pair = held_pair()
    pair.acceptor.driver.answer_logon("venue session unavailable: gave up after 3 tries")
    pair.pump()
    assert logout_texts(pair.acceptor) == ["venue session unavailable: gave up after 3 tries"]
    assert pair.acceptor.driver.session.state in OFFLINE
    refused = [o.reason for o in pair.initiator.app.outputs if isinstance(o, StateChanged)]
    assert any("venue session unavailable: gave up after 3 tries" in r for r in refused), refused
    assert not pair.initiator.driver.session.is_logged_on


def test_an_unanswered_logon_is_refused_at_the_logon_timeout_with_the_holders_words() -> None:
    pair = held_pair(LogonHold("venue session unavailable: no answer from the venue"), logon_timeout_s=10,
                     initiator_logon_timeout_s=60)
    pair.advance(9)
    assert pair.acceptor.driver.session.state is S.LOGON_RECEIVED, "still waiting before the bound"
    pair.advance(1)
    assert logout_texts(pair.acceptor) == ["venue session unavailable: no answer from the venue within 10 s"]
    assert pair.acceptor.driver.session.state in OFFLINE
    assert not pair.acceptor.driver.session.logon_held
    # A late answer changes nothing: the Logon it was for is gone.
    before = len(pair.acceptor.app.outputs)
    pair.acceptor.driver.answer_logon(None)
    assert pair.acceptor.driver.session.state in OFFLINE
    assert all(isinstance(o, Log) for o in pair.acceptor.app.outputs[before:])


def test_messages_sent_before_the_answer_are_ignored_and_asked_for_again_after_it() -> None:
    pair = held_pair()
    acceptor = pair.acceptor.driver.session
    stamp = TimestampFormatter(3).format(pair.clock.utc_ns)
    early = encode(b"FIX.4.4", b"D", [(34, b"2"), (49, b"BUY"), (52, stamp), (56, b"SELL")], [(11, b"early")])
    pair.acceptor.driver.feed(early)
    assert acceptor.state is S.LOGON_RECEIVED and acceptor.logon_held
    assert not any(isinstance(o, Deliver) for o in pair.acceptor.app.outputs)
    assert any(isinstance(o, Log) and "not answered yet" in o.text for o in pair.acceptor.app.outputs)
    pair.acceptor.driver.answer_logon(None)
    pair.pump()
    assert pair.both_logged_on
    assert acceptor.next_target == 2, "the early message's number was not consumed"
    send_orders(pair.initiator, [7])
    pair.pump()
    assert app_payloads(pair.acceptor.app.messages) == [b"7"]


def test_a_logout_while_the_logon_is_held_ends_the_connection_with_a_logout_reply() -> None:
    pair = held_pair()
    stamp = TimestampFormatter(3).format(pair.clock.utc_ns)
    logout = encode(b"FIX.4.4", b"5", [(34, b"2"), (49, b"BUY"), (52, stamp), (56, b"SELL")], [(58, b"tired")])
    pair.acceptor.driver.feed(logout)
    acceptor = pair.acceptor.driver.session
    assert acceptor.state in OFFLINE or acceptor.state is S.WAITING_FOR_FORCED_DISCONNECT
    assert not acceptor.logon_held
    assert [m.msg_type for m in sent(pair.acceptor)] == ["5"]


def test_accepting_a_held_reset_logon_resets_like_an_immediate_one() -> None:
    pair = SessionPair()
    pair.connect()
    send_orders(pair.initiator, [1, 2])
    pair.pump()
    pair.initiator.driver.logout()
    pair.pump()
    pair.acceptor.driver.session.hooks = Hold()
    session = pair.initiator.driver.session
    session.config = replace(session.config, reset_on_logon=True)
    pair.connect()
    assert pair.acceptor.driver.session.logon_held
    pair.acceptor.driver.answer_logon(None)
    pair.pump()
    assert pair.both_logged_on
    reply = [m for m in sent(pair.acceptor) if m.msg_type == "A"][-1]
    assert reply.get(141) == b"Y" and reply.seq_num == 1
    assert pair.acceptor.driver.session.next_target == 2 and pair.initiator.driver.session.next_target == 2


def test_a_long_hold_is_not_taken_for_a_silent_peer_once_accepted() -> None:
    pair = held_pair(heartbeat_interval_s=2, logon_timeout_s=30)
    pair.advance(20)
    pair.acceptor.driver.answer_logon(None)
    pair.pump()
    assert pair.both_logged_on
    pair.advance(1)
    assert pair.both_logged_on
    assert [m.msg_type for m in sent(pair.acceptor) if m.msg_type == "1"] == [], "no TestRequest after the hold"


class Refuse(SessionHooks):
    """Refuses every Logon, as a Handler does for wrong credentials."""

    def on_logon_request(self, logon: Message, now: Instant) -> str | LogonHold | None:
        return "Logon refused: invalid credentials"


def traded_then_logged_out() -> SessionPair:
    """A pair that traded two orders and logged out: both sides' numbers are past 1."""
    pair = SessionPair()
    pair.connect()
    send_orders(pair.initiator, [1, 2])
    pair.pump()
    pair.initiator.driver.logout()
    pair.pump()
    return pair


def test_a_refused_reset_logon_leaves_the_sessions_numbers_and_store_as_they_were() -> None:
    pair = traded_then_logged_out()
    acceptor = pair.acceptor.driver.session
    before = (acceptor.next_sender, acceptor.next_target, pair.acceptor.store.next_sender_seq,
              pair.acceptor.store.next_target_seq)
    assert before[0] > 1 and before[1] > 1
    acceptor.hooks = Refuse()
    initiator = pair.initiator.driver.session
    initiator.config = replace(initiator.config, reset_on_logon=True)  # a squatter's Logon with 141=Y
    pair.connect()
    assert logout_texts(pair.acceptor)[-1] == "Logon refused: invalid credentials"
    after = (acceptor.next_sender, acceptor.next_target, pair.acceptor.store.next_sender_seq,
             pair.acceptor.store.next_target_seq)
    # Only the refusal's own Logout took a number; nothing was reset to 1.
    assert after == (before[0] + 1, before[1], before[2] + 1, before[3])
    assert not any(isinstance(o, SessionEvent) and o.kind == "seqreset" for o in pair.acceptor.app.outputs)


def test_a_held_reset_logon_resets_only_when_it_is_accepted() -> None:
    pair = traded_then_logged_out()
    acceptor = pair.acceptor.driver.session
    numbers = (acceptor.next_sender, acceptor.next_target)
    acceptor.hooks = Hold()
    initiator = pair.initiator.driver.session
    initiator.config = replace(initiator.config, reset_on_logon=True)
    pair.connect()
    assert acceptor.logon_held and (acceptor.next_sender, acceptor.next_target) == numbers
    pair.acceptor.driver.answer_logon(None)
    pair.pump()
    assert pair.both_logged_on and acceptor.next_target == 2


def test_a_reset_logon_in_the_middle_of_a_session_that_fails_its_checks_resets_nothing() -> None:
    pair = SessionPair()
    pair.connect()
    send_orders(pair.initiator, [1, 2, 3])
    pair.pump()
    acceptor = pair.acceptor.driver.session
    numbers = (acceptor.next_sender, acceptor.next_target)
    stamp = TimestampFormatter(3).format(pair.clock.utc_ns - 3600 * 10**9)  # an hour off
    logon = encode(b"FIX.4.4", b"A", [(34, b"1"), (49, b"BUY"), (52, stamp), (56, b"SELL")],
                   [(98, b"0"), (108, b"30"), (141, b"Y")])
    pair.acceptor.driver.feed(logon)
    assert (acceptor.next_sender, acceptor.next_target) != (1, 1)
    assert acceptor.next_target == numbers[1], "the refused Logon moved the expected number"
    assert not any(isinstance(o, SessionEvent) and o.kind == "seqreset" for o in pair.acceptor.app.outputs)
