"""Session scenarios over an in-memory link, each checked in both roles where it applies."""

from __future__ import annotations

import pytest

from actors.fix.codec import Framer, encode, parse
from actors.fix.config import Role
from actors.fix.hooks import SessionHooks
from actors.fix.message import Message
from actors.fix.outputs import Disconnect, PeerRejected, StateChanged, Withheld
from actors.fix.session import Session
from actors.fix.states import TRANSITIONS
from actors.fix.states import SessionState as S
from actors.fix.timefmt import Instant, TimestampFormatter
from actors.shell.driver import SLOT_SYNC_INTERVAL_S
from actors.store import MemoryStore
from tests.pair import FakeClock, RecordingApp, SessionPair, app_payloads, make_config, send_orders

ROLES = ["initiator", "acceptor"]


def states(side) -> list[S]:  # type: ignore[no-untyped-def]
    return [o.new for o in side.app.outputs if isinstance(o, StateChanged)]


def test_logon_walks_the_documented_states() -> None:
    pair = SessionPair()
    pair.connect()
    assert states(pair.initiator) == [S.CONNECTING, S.CONNECTED]
    assert states(pair.acceptor) == [S.WAITING_FOR_LOGON, S.LOGON_RECEIVED, S.CONNECTED]
    for side in (pair.initiator, pair.acceptor):
        for o in side.app.outputs:
            if isinstance(o, StateChanged):
                assert (o.old, o.new) in TRANSITIONS
                assert o.utc_ns == pair.clock.utc_ns and o.reason


@pytest.mark.parametrize("sender", ROLES)
def test_application_messages_flow_in_order(sender: str) -> None:
    pair = SessionPair()
    pair.connect()
    src = getattr(pair, sender)
    dst = pair.acceptor if sender == "initiator" else pair.initiator
    send_orders(src, list(range(50)))
    pair.pump()
    assert app_payloads(dst.app.messages) == [b"%d" % i for i in range(50)]
    assert dst.driver.session.next_target == src.driver.session.next_sender


def test_heartbeat_then_test_request_then_disconnect_without_logout() -> None:
    pair = SessionPair(heartbeat_interval_s=10)
    pair.connect()
    silenced: list[bytes] = []
    pair.acceptor.end.write = silenced.append  # type: ignore[method-assign]  # the acceptor goes silent
    sent_types: list[str] = []
    init_write = pair.initiator.end.write

    def spy(data: bytes) -> None:
        sent_types.append(parse(data).msg_type)
        init_write(data)

    pair.initiator.end.write = spy  # type: ignore[method-assign]
    pair.advance(10)
    assert sent_types == ["0"], "one Heartbeat after one silent interval"
    pair.advance(2)
    assert sent_types == ["0", "1"], "TestRequest after 1.2 intervals without input"
    pair.advance(12)
    assert "5" not in sent_types, "no Logout when the peer is silent"
    assert states(pair.initiator)[-1] is S.DISCONNECTED_ABNORMALLY


@pytest.mark.parametrize("sender", ROLES)
def test_gap_is_filled_by_resend_with_possdup(sender: str) -> None:
    pair = SessionPair()
    pair.connect()
    src = getattr(pair, sender)
    dst = pair.acceptor if sender == "initiator" else pair.initiator
    pair.fault.drop = 1.0
    send_orders(src, [1, 2, 3])
    pair.pump()
    pair.fault.drop = 0.0
    send_orders(src, [4])
    pair.pump()
    assert app_payloads(dst.app.messages) == [b"1", b"2", b"3", b"4"]
    resent = [m for m in dst.app.messages[:3]]
    assert all(m.get(43) == b"Y" and m.get(122) is not None for m in resent)
    assert dst.app.messages[3].get(43) is None


@pytest.mark.parametrize("sender", ROLES)
def test_duplicate_without_possdup_ends_with_logout(sender: str) -> None:
    pair = SessionPair()
    pair.connect()
    src = getattr(pair, sender)
    dst = pair.acceptor if sender == "initiator" else pair.initiator
    send_orders(src, [1])
    pair.pump()
    pair.fault.duplicate = 1.0
    send_orders(src, [2])
    pair.pump()
    pair.fault.duplicate = 0.0
    assert app_payloads(dst.app.messages) == [b"1", b"2"]
    logout_texts = [m.get_str(58) for m in sent_messages(dst) if m.msg_type == "5"]
    [seq] = [m.seq_num for m in sent_messages(src) if m.get(11) == b"2"]
    assert logout_texts == [f"MsgSeqNum too low, expecting {seq + 1} but received {seq}"]
    assert not pair.initiator.driver.connected and not pair.acceptor.driver.connected


def sent_messages(side) -> list[Message]:  # type: ignore[no-untyped-def]
    return [parse(data) for _, data in side.store.get_outgoing(1, 10**9)]


@pytest.mark.parametrize("who", ROLES)
def test_clean_logout_both_ways(who: str) -> None:
    pair = SessionPair()
    pair.connect()
    getattr(pair, who).driver.logout("end of day")
    pair.pump()
    assert states(getattr(pair, who))[-2:] == [S.WAITING_FOR_LOGOFF, S.DISCONNECTED]
    other = pair.acceptor if who == "initiator" else pair.initiator
    assert states(other)[-1] is S.DISCONNECTED


def test_logout_reply_wait_is_bounded() -> None:
    pair = SessionPair()
    pair.connect()
    pair.fault.drop = 1.0
    pair.initiator.driver.logout()
    pair.advance(1)
    assert pair.initiator.driver.session.state is S.WAITING_FOR_LOGOFF
    pair.advance(1.5)
    assert pair.initiator.driver.session.state is S.DISCONNECTED


def test_messages_sent_while_disconnected_arrive_after_logon() -> None:
    pair = SessionPair()
    pair.connect()
    send_orders(pair.initiator, [1])
    pair.pump()
    pair.cut()
    send_orders(pair.initiator, [2, 3])
    send_orders(pair.acceptor, [7, 8])
    pair.connect()
    assert app_payloads(pair.acceptor.app.messages) == [b"1", b"2", b"3"]
    assert app_payloads(pair.initiator.app.messages) == [b"7", b"8"]


def test_a_batch_is_written_after_its_messages_are_synced_and_before_the_sequence_state_is() -> None:
    """Persist before send; the sequence state's fsync comes after the write, off the message's path: once,
    by the driver's timer, ``SLOT_SYNC_INTERVAL_S`` after the first batch that left it."""
    events: list[str] = []

    class RecordingStore(MemoryStore):
        def sync_messages(self) -> None:
            events.append("sync_messages")

        def sync(self) -> None:
            events.append("sync")

    pair = SessionPair(initiator_store=RecordingStore("initiator", now_ns=0))
    pair.connect()
    assert pair.both_logged_on
    end = pair.initiator.end
    assert end is not None
    write = end.write

    def recording_write(data: bytes) -> None:
        events.append("write")
        write(data)

    end.write = recording_write  # type: ignore[method-assign]
    driver = pair.initiator.driver
    if driver.next_deadline() is not None:  # the Logon's batch left the sequence state for the timer
        pair.clock.advance(max(0.0, driver.next_deadline() - pair.clock.mono_s))
        driver.on_timer()
    events.clear()
    driver.send("D", [(11, b"1"), (55, b"X")])
    driver.send("D", [(11, b"2"), (55, b"X")])
    # The messages are synced before each write; the sequence state waits for the driver's timer ...
    assert events == ["sync_messages", "write", "sync_messages", "write"]
    due = driver.next_deadline()
    assert due is not None and due <= pair.clock.mono_s + SLOT_SYNC_INTERVAL_S
    pair.clock.advance(due - pair.clock.mono_s)
    events.clear()
    driver.on_timer()
    # ... which syncs it once for both batches, with nothing more to write.
    assert events == ["sync"]


def test_resend_merges_session_messages_and_vetoed_ones_into_gap_fills() -> None:
    class Veto(SessionHooks):
        def on_resend(self, message: Message, now: Instant) -> str | None:
            return "order 2 withheld" if message.get(11) == b"2" else None

    pair = SessionPair()
    pair.initiator.driver.session.hooks = Veto()
    pair.connect()
    pair.fault.drop = 1.0
    send_orders(pair.initiator, [1, 2, 3])
    pair.advance(30)  # a Heartbeat, dropped too
    pair.fault.drop = 0.0
    send_orders(pair.initiator, [4])
    pair.pump()
    assert app_payloads(pair.acceptor.app.messages) == [b"1", b"3", b"4"]
    withheld = [o for o in pair.initiator.app.outputs if isinstance(o, Withheld)]
    assert [(o.message.get(11), o.reason) for o in withheld] == [(b"2", "order 2 withheld")]


def test_logon_refused_by_the_application_gets_a_logout_with_its_text() -> None:
    class Refuse(SessionHooks):
        def on_logon_request(self, logon: Message, now: Instant) -> str | None:
            return "bad password" if logon.get(554) != b"secret" else None

    pair = SessionPair(password="wrong")
    pair.acceptor.driver.session.hooks = Refuse()
    pair.connect()
    assert not pair.both_logged_on
    texts = [m.get_str(58) for m in sent_messages(pair.acceptor) if m.msg_type == "5"]
    assert texts == ["bad password"]


def test_reset_seq_num_flag_resets_both_sides() -> None:
    pair = SessionPair()
    pair.connect()
    send_orders(pair.initiator, list(range(5)))
    pair.pump()
    pair.initiator.driver.logout()
    pair.pump()
    pair.initiator.driver.session.config = make_config(Role.INITIATOR, reset_on_logon=True)
    pair.connect()
    assert pair.both_logged_on
    assert pair.initiator.driver.session.next_sender == 2
    assert pair.acceptor.driver.session.next_target == 2


def test_unsupported_message_type_gets_business_message_reject() -> None:
    pair = SessionPair(app_msg_types=frozenset({"D"}))
    pair.connect()
    pair.initiator.driver.send("8", [(37, b"x")])
    pair.pump()
    rejects = [m for m in sent_messages(pair.acceptor) if m.msg_type == "j"]
    assert len(rejects) == 1
    assert (rejects[0].get(58), rejects[0].get(372), rejects[0].get(380)) == (b"Unsupported Message Type", b"8", b"3")
    assert pair.acceptor.driver.session.next_target == pair.initiator.driver.session.next_sender


def test_a_reject_from_the_peer_is_handed_to_the_application_with_what_it_refers_to() -> None:
    """A gateway must tell the user whose message the counterparty refused: the core hands the Reject up."""
    pair = SessionPair()
    pair.connect()
    send_orders(pair.initiator, [1])
    pair.pump()
    order_seq = pair.initiator.driver.session.next_sender - 1
    pair.acceptor.driver.send("3", [(45, b"%d" % order_seq), (58, b"Required tag missing"), (371, b"54"),
                                    (373, b"1")])
    pair.pump()
    refused = [o for o in pair.initiator.app.outputs if isinstance(o, PeerRejected)]
    assert refused == [PeerRejected(order_seq, "Required tag missing", 1, 54)]


def test_next_expected_msg_seq_num_in_logon_triggers_resend() -> None:
    pair = SessionPair(send_next_expected_msg_seq_num=True)
    pair.connect()
    pair.fault.drop = 1.0
    send_orders(pair.acceptor, [1, 2])
    pair.pump()
    pair.fault.drop = 0.0
    pair.cut()
    pair.connect()
    assert app_payloads(pair.initiator.app.messages) == [b"1", b"2"]


def test_sending_time_format_and_precision() -> None:
    fmt = TimestampFormatter(3)
    assert fmt.format(FakeClock().utc_ns) == b"20260101-00:00:00.000"
    config = make_config(Role.INITIATOR, begin_string="FIX.4.1")
    assert Session(config).config.effective_timestamp_precision == 0


def test_garbled_input_before_logon_disconnects_and_after_is_ignored() -> None:
    clock = FakeClock()
    session = Session(make_config(Role.ACCEPTOR))
    session.connection_made(clock())
    session.receive(b"8=FIX.4.4\x019=5\x0135=A\x0110=000\x01")
    out = session.process(clock())
    assert any(isinstance(o, Disconnect) for o in out)
    # after logon: ignored
    pair = SessionPair()
    pair.connect()
    before = pair.acceptor.driver.session.next_target
    pair.acceptor.driver.feed(b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01")
    assert pair.acceptor.driver.connected and pair.acceptor.driver.session.next_target == before


def test_every_output_of_a_logon_exchange_is_encodable_fix() -> None:
    clock = FakeClock()
    stamp = TimestampFormatter(3).format(clock.utc_ns)
    msg = encode(b"FIX.4.4", b"0", [(34, b"1"), (49, b"A"), (52, stamp), (56, b"B")], [])
    assert parse(msg).msg_type == "0"


def test_a_stale_logon_deadline_does_not_fire_during_a_slow_reconnect() -> None:
    clock = FakeClock()
    session = Session(make_config(Role.INITIATOR))
    session.start_connecting(clock())
    session.connection_made(clock())
    clock.advance(60)
    session.connection_lost(clock(), "peer went away")
    session.start_reconnecting(clock(), "retry")
    clock.advance(1)
    session.start_connecting(clock())
    assert session.next_deadline() is None, "no deadline while the TCP connect is in progress"
    clock.advance(0.1)
    session.on_timer(clock())
    assert session.state is S.CONNECTING
    session.connection_made(clock())
    assert session.state is S.CONNECTING


def test_reset_after_24_hours_resets_both_sides_at_the_next_logon() -> None:
    from actors.shell.seqpolicy import SequencePolicy

    pair = SessionPair()
    pair.initiator.driver.policy = SequencePolicy(reset_after_24h=True)
    pair.connect()
    send_orders(pair.initiator, list(range(5)))
    send_orders(pair.acceptor, list(range(3)))
    pair.pump()
    pair.initiator.driver.logout()
    pair.pump()
    pair.advance(23 * 3600, step_s=3600)
    pair.connect()
    assert pair.initiator.driver.session.next_sender == 9, "no reset within 24 hours"
    pair.initiator.driver.logout()
    pair.pump()
    pair.advance(2 * 3600, step_s=3600)
    pair.connect()
    assert pair.both_logged_on
    assert pair.initiator.driver.session.next_sender == 2 and pair.acceptor.driver.session.next_target == 2
    assert pair.acceptor.driver.session.next_sender == 2 and pair.initiator.driver.session.next_target == 2
    assert pair.initiator.store.get_outgoing(2, 99) == [], "the store was reset with the numbers"


def test_explicit_sequence_numbers_override_the_store() -> None:
    from actors.shell.seqpolicy import SequencePolicy
    from actors.store import MemoryStore

    store = MemoryStore("s", now_ns=0)
    store.save_outgoing(1, b"x")
    assert SequencePolicy(next_sender=0, next_target=0).start_numbers(store) == (2, 1)
    assert SequencePolicy(next_sender=50, next_target=70).start_numbers(store) == (50, 70)
    assert (store.next_sender_seq, store.next_target_seq) == (50, 70)


def test_fixt_application_dictionary_is_chosen_by_appl_ver_id() -> None:
    from actors.fix.dictionary import parse_dictionary
    from tests.acceptance import conformance_dir

    spec = conformance_dir() / "spec"
    transport = parse_dictionary((spec / "FIXT11.xml").read_text(), "FIXT11.xml")
    sp2 = parse_dictionary((spec / "FIX50SP2.xml").read_text(), "FIX50SP2.xml")
    fixt = dict(begin_string="FIXT.1.1", default_appl_ver_id="9", use_data_dictionary=True)
    pair = SessionPair(**fixt)
    for side in (pair.initiator, pair.acceptor):
        side.driver.session = Session(side.driver.session.config, transport_dictionary=transport,
                                      app_dictionary=sp2, app_dictionaries={"9": sp2})
    pair.connect()
    assert pair.both_logged_on
    order = [(11, b"1"), (38, b"5"), (40, b"1"), (54, b"1"), (55, b"X"), (60, b"20260101-00:00:00")]
    pair.initiator.driver.send("D", order)
    pair.initiator.driver.send("D", order, header=[(1128, b"7")])  # FIX.5.0: no dictionary configured
    pair.pump()
    assert [m.get(11) for m in pair.acceptor.app.messages] == [b"1"]
    [reject] = [m for m in sent_messages(pair.acceptor) if m.msg_type == "3"]
    assert (reject.get(373), reject.get(371)) == (b"18", b"1128")


@pytest.mark.parametrize("begin_string", ["FIX.4.0", "FIX.4.1", "FIX.4.2", "FIX.4.3", "FIX.4.4"])
def test_each_fix4_version_logs_on_and_recovers_a_gap(begin_string: str) -> None:
    pair = SessionPair(begin_string=begin_string)
    pair.connect()
    pair.fault.drop = 1.0
    send_orders(pair.initiator, [1, 2])
    pair.pump()
    pair.fault.drop = 0.0
    send_orders(pair.initiator, [3])
    pair.pump()
    assert app_payloads(pair.acceptor.app.messages) == [b"1", b"2", b"3"]
    [request] = [m for m in sent_messages(pair.acceptor) if m.msg_type == "2"]
    assert request.get(16) == (b"999999" if begin_string in ("FIX.4.0", "FIX.4.1") else b"0")
    stamp = pair.acceptor.app.messages[0].get(52) or b""
    assert len(stamp) == (17 if begin_string in ("FIX.4.0", "FIX.4.1") else 21)


def test_fix41_reject_puts_the_tag_in_the_text() -> None:
    pair = SessionPair(begin_string="FIX.4.1")
    pair.connect()
    seq = pair.initiator.driver.session.next_sender
    stamp = TimestampFormatter(0).format(pair.clock.utc_ns)
    bad = encode(b"FIX.4.1", b"4", [(34, b"%d" % seq), (49, b"BUY"), (52, stamp), (56, b"SELL")], [])
    pair.acceptor.driver.feed(bad)
    [reject] = [m for m in sent_messages(pair.acceptor) if m.msg_type == "3"]
    assert reject.get(58) == b"Required tag missing (36)" and reject.get(371) is None and reject.get(373) is None


def test_replies_sent_from_on_message_never_overtake_earlier_numbers_on_the_wire() -> None:
    """An application that answers inside on_message, in a batch where the session also replies itself."""

    class Echo(RecordingApp):
        def on_message(self, driver, message):  # type: ignore[no-untyped-def]
            super().on_message(driver, message)
            driver.send("8", [(11, message.get(11) or b"")])

    pair = SessionPair()
    pair.acceptor.driver.app = Echo()
    pair.connect()
    wire: list[int] = []
    original = pair.acceptor.end.write

    framer = Framer()

    def spy(data: bytes) -> None:
        framer.feed(data)
        while (frame := framer.next_frame()) is not None:
            wire.append(parse(frame.data).seq_num or 0)
        original(data)

    pair.acceptor.end.write = spy  # type: ignore[method-assign]
    stamp = TimestampFormatter(3).format(pair.clock.utc_ns)
    seq = pair.initiator.driver.session.next_sender
    order = encode(b"FIX.4.4", b"D", [(34, b"%d" % seq), (49, b"BUY"), (52, stamp), (56, b"SELL")], [(11, b"1")])
    test_request = encode(b"FIX.4.4", b"1", [(34, b"%d" % (seq + 1)), (49, b"BUY"), (52, stamp), (56, b"SELL")],
                          [(112, b"T")])
    pair.acceptor.driver.feed(order + test_request)  # one batch: Deliver, then the session's Heartbeat
    assert wire == sorted(wire) and len(wire) == 2, wire


def test_messages_sent_while_the_logon_awaits_its_reply_go_out_as_new_once_logged_on() -> None:
    from tests.pair import LinkEnd

    pair = SessionPair()
    for side in (pair.acceptor, pair.initiator):
        side.end = LinkEnd()
    pair.initiator.driver.start_connecting()
    pair.acceptor.driver.attach(pair.acceptor.end)  # type: ignore[arg-type]
    pair.initiator.driver.attach(pair.initiator.end)  # type: ignore[arg-type]  # Logon 1 is on its way
    send_orders(pair.initiator, [1, 2])  # numbered 2 and 3, stored, not yet written
    assert pair.initiator.end is not None and len(pair.initiator.end.outbox) == 1
    pair.pump()
    assert app_payloads(pair.acceptor.app.messages) == [b"1", b"2"]
    assert all(m.get(43) is None for m in pair.acceptor.app.messages), "new messages, not PossDup resends"
    assert not [m for m in sent_messages(pair.acceptor) if m.msg_type == "2"], "no ResendRequest was needed"
