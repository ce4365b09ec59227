"""The session scenarios of the differential test, written once as data for every FIX version.

A scenario is a list of steps that the player (``player.py``) carries out
against each acceptor on a session of its own, so that both start with both
sequence numbers at 1:

``Connect``
    open a TCP connection.
``Send``
    send one message: the standard header ``8, 9, 35, 34, 49, 52, 56`` (the
    layout of QuickFIX's acceptance scripts), extra header fields, the body,
    fields after the body, ``10``. ``seq=None`` takes the client's next
    MsgSeqNum; afterwards the next number is ``next_seq`` if given, otherwise
    the larger of the old one and ``seq + 1``. ``replace`` changes a standard
    header field or leaves it out (value None); ``drop`` leaves body fields
    out; ``body_length`` and ``checksum`` send those values instead of the
    right ones.
``Burst``
    send several messages in one write: the acceptor reads them together.
``Use``
    switch to another connection (connection 1 at the start); the client's
    MsgSeqNum counter is shared, as the connections are one counterparty.
``Sync``
    send a TestRequest (112=SYNC<n>) and read until its Heartbeat comes: the
    acceptor has then handled everything sent before, so the next step starts
    from a known state without a fixed sleep. A Sync waits for application
    replies first (an ``Until``): fixmesh may answer the TestRequest before
    the application's echo of an earlier message read in the same batch
    (the ``burst_*`` scenarios show it), and the scenarios compare session
    behaviour, not that ordering, except where they mean to.
``Until``
    read until a message of the given MsgType arrives (a ResendRequest, the
    acceptor's Logout, an echo).
``ExpectClose``
    read until the acceptor closes the connection (``seconds`` bounds the
    wait where QuickFIX is known to keep it open).

Every read is bounded; what a read did not get (no Heartbeat, no close) is
recorded and compared like a message. Field values may hold placeholders,
filled in when the message is sent, identically for both acceptors:
``<NOW>``, ``<NOW+n>``, ``<NOW-n>`` (UTC, milliseconds from FIX.4.2 on,
seconds before), ``<SEQ>`` (this message's MsgSeqNum), ``<INF>`` (EndSeqNo
"up to the last": 0 from FIX.4.2 on, 999999 before), ``<APPLVERID>``.
A body or header item that is a string names a fragment of fields that
differs by version (``FRAGMENTS``): a valid Logon, NewOrderSingle, Email,
OrderCancelRequest, routing header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.differential import Version

Field = tuple[int | str, str]
Item = Field | str


@dataclass(frozen=True)
class Connect:
    pass


@dataclass(frozen=True)
class Send:
    msg_type: str
    body: tuple[Item, ...] = ()
    header: tuple[Item, ...] = ()
    seq: int | None = None
    replace: tuple[tuple[int, str | None], ...] = ()
    drop: frozenset[int] = frozenset()
    after_body: tuple[Field, ...] = ()
    body_length: str | None = None
    checksum: str | None = None
    next_seq: int | None = None


@dataclass(frozen=True)
class Burst:
    """Several messages in one write, so that the acceptor reads them together."""

    sends: tuple[Send, ...]


@dataclass(frozen=True)
class Use:
    """Later steps act on connection ``number`` (1 at the start)."""

    number: int


@dataclass(frozen=True)
class Sync:
    pass


@dataclass(frozen=True)
class Until:
    msg_type: str


@dataclass(frozen=True)
class ExpectClose:
    #: How long to wait; None: ``Limits.close_s``.
    seconds: float | None = None


Step = Connect | Send | Burst | Use | Sync | Until | ExpectClose


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    steps: tuple[Step, ...]
    #: Version keys (``tests.differential.VERSIONS``) it applies to; None: all.
    versions: frozenset[str] | None = None
    #: In the fast subset that runs without ``-m slow``.
    fast: bool = False
    #: Waits for the acceptor's timers. QuickFIX's SocketAcceptor looks at its timers late while its sockets
    #: are busy (a Heartbeat was skipped once, 1.7 s between two looks), so these play after the others,
    #: when nothing else is going on.
    timed: bool = False

    def applies_to(self, version: Version) -> bool:
        return self.versions is None or version.key in self.versions


# ------------------------------------------------------------------ fragments


def _logon(v: Version) -> list[Field]:
    fields: list[Field] = [(98, "0"), (108, "30")]
    return fields + [(1137, "<APPLVERID>")] if v.is_fixt else fields


def _order(v: Version, cl_ord_id: str = "ORD-1") -> list[Field]:
    fields: list[Field] = [(11, cl_ord_id), (21, "1"), (38, "100"), (40, "1"), (54, "1"), (55, "FMX")]
    return fields + [(60, "<NOW>")] if v.rank >= 42 else fields


def _email(v: Version) -> list[Field]:
    if v.rank == 40:
        return [(94, "0"), (33, "1"), (58, "hello")]
    return [(164, "T1"), (94, "0"), (147, "subject"), (33, "1"), (58, "hello")]


def _cancel(v: Version) -> list[Field]:
    """OrderCancelRequest: valid in every version, and not a MsgType the application takes."""
    fields: list[Field] = [(41, "ORD-1"), (11, "ORD-2")]
    if v.rank == 40:
        return fields + [(125, "F"), (55, "FMX"), (54, "1"), (38, "100")]
    fields += [(55, "FMX"), (54, "1")]
    return fields + [(60, "<NOW>"), (38, "100")] if v.rank >= 42 else fields


def _routing(v: Version) -> list[Field]:
    fields: list[Field] = [(115, "OBO"), (116, "OBOSUB"), (128, "DTC"), (129, "DTCSUB")]
    return fields + [(144, "OBOLOC"), (145, "DTCLOC")] if v.rank >= 41 else fields


FRAGMENTS: dict[str, Callable[[Version], list[Field]]] = {
    "logon": _logon,
    "order": _order,
    "order2": lambda v: _order(v, "ORD-2"),
    "email": _email,
    "cancel": _cancel,
    "routing": _routing,
}


def expand(items: tuple[Item, ...], version: Version) -> list[Field]:
    fields: list[Field] = []
    for item in items:
        fields.extend(FRAGMENTS[item](version) if isinstance(item, str) else [item])
    return fields


# -------------------------------------------------------------------- helpers

FIX4 = frozenset({"4.0", "4.1", "4.2", "4.3", "4.4"})
ALL_BUT_40 = frozenset({"4.1", "4.2", "4.3", "4.4", "5.0", "5.0SP1", "5.0SP2"})
FROM_42 = frozenset({"4.2", "4.3", "4.4", "5.0", "5.0SP1", "5.0SP2"})
FIXT = frozenset({"5.0", "5.0SP1", "5.0SP2"})
POSS_DUP = ((43, "Y"), (122, "<NOW-1>"))
#: QuickFIX neither answers nor closes a connection whose Logon fails validation (it was still open after
#: 40 s); waiting two seconds shows that without slowing the run (the pairs play in parallel).
HOLD_S = 2.0
#: HeartBtInt of the timer scenarios. QuickFIX looks at its timers about once a second when nothing else is
#: going on, so with a shorter interval the Heartbeat (due after 1 interval) and the TestRequest (after 1.2)
#: can fall on the same tick, and QuickFIX then sends only the TestRequest; at 5 s they are a tick apart.
#: The disconnect comes after 12 s.
TIMER_HBI = "5"
TIMER_CLOSE_S = 16.0


def logon(*extra: Item, **kwargs: Any) -> Send:
    return Send("A", ("logon", *extra), **kwargs)


def hb(*body: Item, **kwargs: Any) -> Send:
    return Send("0", body, **kwargs)


def gap_fill(seq: int, new_seq_no: int, **kwargs: Any) -> Send:
    """A SequenceReset-GapFill as a resend answering the acceptor's ResendRequest."""
    return Send("4", ((123, "Y"), (36, str(new_seq_no))), header=POSS_DUP, seq=seq, **kwargs)


def order(*extra: Item, **kwargs: Any) -> Send:
    return Send("D", ("order", *extra), **kwargs)


START: tuple[Step, ...] = (Connect(), logon(), Until("A"))
LOGOUT: tuple[Step, ...] = (Send("5"), ExpectClose())
#: The acceptor has sent a Logout and waits for ours.
ANSWER_LOGOUT: tuple[Step, ...] = (Until("5"), Send("5"), ExpectClose())


def scenario(name: str, about: str, *steps: Step, versions: frozenset[str] | None = None,
             fast: bool = False, timed: bool = False) -> Scenario:
    return Scenario(name, about, steps, versions, fast, timed)


# ------------------------------------------------------------------ scenarios

SCENARIOS: tuple[Scenario, ...] = (
    # ---- Logon variants
    scenario("logon_plain", "valid Logon, then Logout", *START, *LOGOUT, fast=True),
    scenario("logon_reset_flag", "Logon with ResetSeqNumFlag 141=Y",
             Connect(), logon((141, "Y")), Until("A"), Sync(), *LOGOUT, versions=ALL_BUT_40, fast=True),
    scenario("logon_reset_flag_seq_2", "Logon with 141=Y and MsgSeqNum 2",
             Connect(), logon((141, "Y"), seq=2), Until("A"), *LOGOUT, versions=ALL_BUT_40),
    scenario("logon_seq_too_high", "Logon with MsgSeqNum 5: Logon, ResendRequest 1.., then our gap fill",
             Connect(), logon(seq=5), Until("2"), gap_fill(1, 6), Sync(), *LOGOUT),
    scenario("logon_seq_too_low", "second connection's Logon with MsgSeqNum 2 when 5 is expected",
             *START, hb(), hb(), *LOGOUT, Connect(), logon(seq=2), ExpectClose()),
    scenario("logon_reconnect", "second connection's Logon in sequence after a Logout",
             *START, hb(), *LOGOUT, Connect(), logon(), Until("A"), Sync(), *LOGOUT),
    scenario("logon_duplicate", "a second connection's Logon while the session is logged on (1b)",
             *START, Use(2), Connect(), logon(seq=1), ExpectClose(), Use(1), Sync(), *LOGOUT),
    scenario("logon_wrong_sender", "Logon from a SenderCompID no session has",
             Connect(), logon(replace=((49, "NOBODY"),)), ExpectClose()),
    scenario("logon_wrong_target", "Logon to a TargetCompID no session has",
             Connect(), logon(replace=((56, "NOBODY"),)), ExpectClose()),
    scenario("logon_wrong_begin", "Logon with BeginString FIX.3.9",
             Connect(), logon(replace=((8, "FIX.3.9"),)), ExpectClose()),
    scenario("logon_no_heartbtint", "Logon without HeartBtInt (108)",
             Connect(), logon(drop=frozenset({108})), ExpectClose(HOLD_S)),
    scenario("logon_bad_heartbtint", "Logon with HeartBtInt=abc",
             Connect(), Send("A", ((98, "0"), (108, "abc"), (1137, "<APPLVERID>"))), ExpectClose(HOLD_S),
             versions=FIXT),
    scenario("logon_bad_heartbtint_4x", "Logon with HeartBtInt=abc",
             Connect(), Send("A", ((98, "0"), (108, "abc"))), ExpectClose(HOLD_S), versions=FIX4),
    scenario("logon_undefined_tag", "Logon with 141=Y in FIX.4.0, whose dictionary has no tag 141",
             Connect(), logon((141, "Y")), ExpectClose(HOLD_S), versions=frozenset({"4.0"})),
    scenario("logon_stale_time", "Logon whose SendingTime is 200 s old",
             Connect(), logon(replace=((52, "<NOW-200>"),)), ExpectClose()),
    scenario("logon_not_first", "a Heartbeat as the first message",
             Connect(), hb(), ExpectClose()),
    scenario("logon_no_appl_ver_id", "FIXT Logon without DefaultApplVerID (1137)",
             Connect(), logon(drop=frozenset({1137})), ExpectClose(), versions=FIXT),
    scenario("logon_other_appl_ver_id", "FIXT Logon naming another DefaultApplVerID (1137=6, FIX.4.4), then an order",
             Connect(), Send("A", ((98, "0"), (108, "30"), (1137, "6"))), Until("A"), order(), Until("D"), Sync(),
             *LOGOUT, versions=FIXT),
    scenario("logon_twice", "a second Logon on a logged-on connection",
             *START, logon(), Sync(), *LOGOUT),
    scenario("logon_reset_mid_session", "Logon 141=Y with MsgSeqNum 1 in the middle of a session",
             *START, hb(), hb(), logon((141, "Y"), seq=1, next_seq=2), Until("A"), Sync(), *LOGOUT,
             versions=ALL_BUT_40),
    scenario("logon_reset_refused", "a reset Logon refused for its SendingTime, then a Logon in sequence",
             *START, hb(), *LOGOUT, Connect(), logon((141, "Y"), seq=1, replace=((52, "<NOW-200>"),), next_seq=4),
             ExpectClose(), Connect(), logon(), Until("A"), *LOGOUT, versions=ALL_BUT_40),
    scenario("logon_encrypt_method", "Logon with EncryptMethod 98=5 (not 0)",
             Connect(), Send("A", ((98, "5"), (108, "30"))), Until("A"), Sync(), *LOGOUT, versions=FIX4),

    # ---- MsgSeqNum gaps and resends
    scenario("seq_too_high", "MsgSeqNum 5 when 2 is expected, then a gap fill 2..5",
             *START, hb(seq=5), Until("2"), gap_fill(2, 5), Sync(), *LOGOUT, fast=True),
    scenario("seq_too_high_resent", "gap 2..3 filled with PossDup orders",
             *START, hb(seq=4), Until("2"), order(header=POSS_DUP, seq=2),
             Send("D", ("order2",), header=POSS_DUP, seq=3), Until("D"), Until("D"), Sync(), *LOGOUT),
    scenario("seq_too_high_twice", "two too-high messages: one ResendRequest",
             *START, hb(seq=5), hb(seq=6), Until("2"), gap_fill(2, 5), Sync(), *LOGOUT),
    scenario("seq_too_high_order", "a too-high order is queued and echoed once the gap is filled",
             *START, order(seq=4), Until("2"), gap_fill(2, 4), Until("D"), Sync(), *LOGOUT),
    scenario("seq_too_low", "MsgSeqNum 2 again without PossDup",
             *START, hb(), hb(seq=2), ExpectClose(), fast=True),
    scenario("possdup_too_low", "PossDup resend of MsgSeqNum 2 with a sane OrigSendingTime: ignored",
             *START, hb(), hb(header=POSS_DUP, seq=2), Sync(), *LOGOUT),
    scenario("possdup_no_orig_time", "PossDup resend of MsgSeqNum 2 without OrigSendingTime",
             *START, hb(), hb(header=((43, "Y"),), seq=2), Sync(), *LOGOUT),
    scenario("possdup_orig_time_late", "PossDup resend whose OrigSendingTime is after its SendingTime",
             *START, hb(), hb(header=((43, "Y"), (122, "<NOW+10>")), seq=2), *ANSWER_LOGOUT),
    scenario("possdup_in_seq_no_orig", "in-sequence PossDup message without OrigSendingTime",
             *START, hb(header=((43, "Y"),)), Sync(), *LOGOUT),
    scenario("possdup_order_in_seq", "in-sequence PossDup order with OrigSendingTime: echoed",
             *START, order(header=POSS_DUP), Until("D"), *LOGOUT),

    # ---- ResendRequest from us
    scenario("resend_mixed", "ResendRequest 1..infinity after two echoed orders: gap fills and PossDup resends",
             *START, order(), Until("D"), Send("D", ("order2",)), Until("D"), Sync(),
             Send("2", ((7, "1"), (16, "<INF>"))), Sync(), *LOGOUT, fast=True),
    scenario("resend_admin_only", "ResendRequest 1..infinity when only admin messages were sent",
             *START, Sync(), Send("2", ((7, "1"), (16, "<INF>"))), Sync(), *LOGOUT),
    scenario("resend_end_beyond", "ResendRequest 2..50 when 3 messages were sent",
             *START, order(), Until("D"), Send("2", ((7, "2"), (16, "50"))), Sync(), *LOGOUT),
    scenario("resend_one", "ResendRequest 2..2 for one order",
             *START, order(), Until("D"), Send("D", ("order2",)), Until("D"), Send("2", ((7, "2"), (16, "2"))),
             Sync(), *LOGOUT),
    scenario("resend_seq_too_high", "ResendRequest whose own MsgSeqNum (5) is too high, our gap fill 2..5, Logout",
             *START, Send("2", ((7, "1"), (16, "<INF>")), seq=5), gap_fill(2, 5), *LOGOUT),
    scenario("resend_seq_too_low", "ResendRequest whose own MsgSeqNum is too low (no PossDup)",
             *START, hb(), hb(), Send("2", ((7, "1"), (16, "<INF>")), seq=2), Sync(), *LOGOUT),
    scenario("resend_begin_after_end", "ResendRequest 3..2",
             *START, order(), Until("D"), Send("2", ((7, "3"), (16, "2"))), Sync(), *LOGOUT),
    scenario("resend_no_end", "ResendRequest without EndSeqNo (16)",
             *START, Send("2", ((7, "1"),)), Sync(), *LOGOUT),
    scenario("resend_bad_begin", "ResendRequest with BeginSeqNo 7=abc",
             *START, Send("2", ((7, "abc"), (16, "<INF>"))), Sync(), *LOGOUT),

    # ---- SequenceReset
    scenario("reset_forward", "SequenceReset-Reset NewSeqNo 10",
             *START, Send("4", ((36, "10"),), next_seq=10), Sync(), *LOGOUT, fast=True),
    scenario("reset_backward", "SequenceReset-Reset NewSeqNo 2 when 4 is expected",
             *START, hb(), hb(), Send("4", ((36, "2"),), next_seq=4), Sync(), *LOGOUT),
    scenario("reset_equal", "SequenceReset-Reset NewSeqNo equal to the expected number",
             *START, hb(), Send("4", ((36, "3"),), next_seq=3), Sync(), *LOGOUT),
    scenario("reset_seq_zero", "SequenceReset-Reset with MsgSeqNum 0",
             *START, Send("4", ((36, "5"),), seq=0, next_seq=5), Sync(), *LOGOUT),
    scenario("reset_no_new_seq_no", "SequenceReset without NewSeqNo",
             *START, Send("4", ((123, "Y"),), next_seq=2), Sync(), *LOGOUT),
    scenario("reset_bad_new_seq_no", "SequenceReset-Reset with NewSeqNo 36=abc",
             *START, Send("4", ((36, "abc"),), next_seq=2), Sync(), *LOGOUT),
    scenario("gapfill_forward", "SequenceReset-GapFill in sequence, NewSeqNo 10",
             *START, Send("4", ((123, "Y"), (36, "10")), next_seq=10), Sync(), *LOGOUT, fast=True),
    scenario("gapfill_too_high", "SequenceReset-GapFill with a too-high MsgSeqNum",
             *START, Send("4", ((123, "Y"), (36, "10")), seq=5, next_seq=10), Until("2"), gap_fill(2, 5), Sync(),
             *LOGOUT),
    scenario("gapfill_backward", "SequenceReset-GapFill whose NewSeqNo is below its MsgSeqNum",
             *START, hb(), hb(), Send("4", ((123, "Y"), (36, "2")), next_seq=4), Sync(), *LOGOUT),
    scenario("gapfill_too_low_possdup", "PossDup SequenceReset-GapFill with a too-low MsgSeqNum: ignored",
             *START, hb(), hb(), gap_fill(2, 3, next_seq=4), Sync(), *LOGOUT),
    scenario("gapfill_too_low", "SequenceReset-GapFill with a too-low MsgSeqNum, no PossDup",
             *START, hb(), hb(), Send("4", ((123, "Y"), (36, "3")), seq=2), ExpectClose()),

    # ---- TestRequest and Heartbeat
    scenario("test_request", "TestRequest 112=ABC",
             *START, Send("1", ((112, "ABC"),)), Sync(), *LOGOUT, fast=True),
    scenario("test_request_no_id", "TestRequest without TestReqID",
             *START, Send("1"), Sync(), *LOGOUT),
    scenario("heartbeat_with_id", "unsolicited Heartbeat with a TestReqID",
             *START, hb((112, "XYZ")), Sync(), *LOGOUT),
    scenario("heartbeat_timers", "HeartBtInt 5 and a silent client: Heartbeat, TestRequest, disconnect",
             Connect(), Send("A", ((98, "0"), (108, TIMER_HBI), (1137, "<APPLVERID>"))), Until("A"),
             ExpectClose(TIMER_CLOSE_S), versions=FIXT, timed=True),
    scenario("heartbeat_timers_4x", "HeartBtInt 5 and a silent client: Heartbeat, TestRequest, disconnect",
             Connect(), Send("A", ((98, "0"), (108, TIMER_HBI))), Until("A"), ExpectClose(TIMER_CLOSE_S),
             versions=FIX4, timed=True),

    # ---- Rejects, one per SessionRejectReason the engines produce
    scenario("reject_invalid_tag", "reason 0: tag 4999 (no dictionary defines it)",
             *START, hb((4999, "x")), Sync(), *LOGOUT, fast=True),
    scenario("reject_user_defined_tag", "reason 0: user-defined tag 5000, ValidateUserDefinedFields=Y",
             *START, hb((5000, "x")), Sync(), *LOGOUT),
    scenario("reject_tag_zero", "reason 0: tag 0",
             *START, hb((0, "x")), Sync(), *LOGOUT),
    scenario("reject_tag_not_number", "a tag that is not a number: garbled, ignored",
             *START, hb(("ab", "x"), next_seq=2), Sync(), *LOGOUT),
    scenario("reject_missing_body_tag", "reason 1: order without ClOrdID (11)",
             *START, order(drop=frozenset({11})), Sync(), *LOGOUT),
    scenario("reject_missing_target", "reason 1: TargetCompID (56) missing",
             *START, hb(replace=((56, None),)), Sync(), *LOGOUT),
    scenario("reject_missing_sending_time", "reason 1: SendingTime (52) missing",
             *START, hb(replace=((52, None),)), Sync(), *LOGOUT),
    scenario("reject_missing_seq_num", "MsgSeqNum (34) missing",
             *START, hb(replace=((34, None),), next_seq=2), Sync(), *LOGOUT),
    scenario("reject_seq_num_not_number", "MsgSeqNum 34=abc",
             *START, hb(replace=((34, "abc"),), next_seq=2), Sync(), *LOGOUT),
    scenario("reject_tag_not_for_msg", "reason 2: Symbol (55) in a Heartbeat",
             *START, hb((55, "X")), Sync(), *LOGOUT, fast=True),
    scenario("reject_empty_value", "reason 4: TestRequest with 112=",
             *START, Send("1", ((112, ""),)), Sync(), *LOGOUT),
    scenario("reject_value_out_of_range", "reason 5: order with Side 54=Z",
             *START, order(drop=frozenset({54}), after_body=((54, "Z"),)), Sync(), *LOGOUT),
    scenario("reject_header_enum", "PossDupFlag 43=X",
             *START, hb(header=((43, "X"),)), Sync(), *LOGOUT),
    scenario("reject_data_format", "reason 6: order with OrderQty 38=abc",
             *START, order(drop=frozenset({38}), after_body=((38, "abc"),)), Sync(), *LOGOUT),
    scenario("reject_data_format_plus", "reason 6: order with OrderQty 38=+200.00 (14f)",
             *START, order(drop=frozenset({38}), after_body=((38, "+200.00"),)), Sync(), *LOGOUT),
    scenario("reject_bad_timestamp", "reason 6: order with TransactTime 60=yesterday",
             *START, order(drop=frozenset({60}), after_body=((60, "yesterday"),)), Sync(), *LOGOUT,
             versions=FROM_42),
    scenario("reject_comp_id_sender", "reason 9: SenderCompID WRONG in session",
             *START, hb(replace=((49, "WRONG"),)), *ANSWER_LOGOUT, fast=True),
    scenario("reject_comp_id_target", "reason 9: TargetCompID WRONG in session",
             *START, hb(replace=((56, "WRONG"),)), *ANSWER_LOGOUT),
    scenario("reject_sending_time", "reason 10: SendingTime 200 s old in session",
             *START, hb(replace=((52, "<NOW-200>"),)), *ANSWER_LOGOUT, fast=True),
    scenario("reject_sending_time_future", "reason 10: SendingTime 200 s ahead in session",
             *START, hb(replace=((52, "<NOW+200>"),)), *ANSWER_LOGOUT),
    scenario("reject_invalid_msg_type", "reason 11: MsgType *",
             *START, Send("*"), Sync(), *LOGOUT),
    scenario("reject_unknown_msg_type", "reason 11: MsgType ZZ",
             *START, Send("ZZ"), Sync(), *LOGOUT),
    scenario("reject_repeated_tag", "reason 13: OrdType (40) twice",
             *START, order(after_body=((40, "1"),)), Sync(), *LOGOUT),
    scenario("reject_header_after_body", "reason 14: MsgSeqNum after the body",
             *START, order(replace=((34, None),), after_body=((34, "<SEQ>"),)), Sync(), *LOGOUT),
    scenario("reject_group_count", "reason 16: Email with LinesOfText 33=2 and one line",
             *START, Send("C", ("email",), drop=frozenset({33, 58}), after_body=((33, "2"), (58, "one"))), Sync(),
             *LOGOUT, versions=ALL_BUT_40),
    scenario("reject_group_order", "reason 15: a LinesOfText entry that does not start with Text (58)",
             *START, Send("C", ("email",), drop=frozenset({33, 58}), after_body=((33, "1"), (354, "3"), (58, "abc"))),
             Sync(), *LOGOUT, versions=FROM_42),
    scenario("reject_body_length", "BodyLength 10 (wrong): garbled, ignored",
             *START, hb(body_length="10", next_seq=2), Sync(), *LOGOUT),
    scenario("reject_checksum", "CheckSum 000 (wrong): garbled, ignored",
             *START, hb((112, "CHK"), checksum="000", next_seq=2), Sync(), *LOGOUT),
    scenario("reject_msg_type_not_third", "MsgType (35) after MsgSeqNum: garbled, ignored",
             *START, hb(replace=((35, None),), after_body=((35, "0"),), next_seq=2), Sync(), *LOGOUT),
    scenario("reject_data_with_soh", "SecureData (91) holding SOH, with the right SecureDataLen: accepted",
             *START, hb(header=((90, "5"), (91, "ab\x01cd"))), Sync(), *LOGOUT),
    scenario("reject_data_length_short", "SecureDataLen 3 for 6 bytes of SecureData: garbled, ignored",
             *START, hb(header=((90, "3"), (91, "abcdef")), next_seq=2), Sync(), *LOGOUT),
    scenario("reject_received", "the client sends a Reject: no answer, number consumed",
             *START, Send("3", ((45, "1"), (58, "test"))), Sync(), *LOGOUT),

    # ---- Routing fields
    scenario("routing_reverse_reject", "Reject of a Heartbeat carrying OnBehalfOf/DeliverTo fields: reversed",
             *START, hb((55, "X"), header=("routing",)), Sync(), *LOGOUT, fast=True),
    scenario("routing_empty_values", "empty routing fields (ValidateFieldsHaveValues=Y)",
             *START, hb(header=((115, ""), (128, "DTC"))), Sync(), *LOGOUT),
    scenario("routing_echo", "an order with routing fields is echoed with them",
             *START, order(header=("routing",)), Until("D"), *LOGOUT),
    scenario("routing_business_reject", "an unsupported message with routing fields",
             *START, Send("F", ("cancel",), header=("routing",)), Sync(), *LOGOUT),
    scenario("routing_comp_id_problem", "CompID problem on a message with routing fields",
             *START, hb(header=("routing",), replace=((49, "WRONG"),)), *ANSWER_LOGOUT),

    # ---- Application messages
    scenario("app_order", "a valid NewOrderSingle is echoed",
             *START, order(), Until("D"), *LOGOUT, fast=True),
    scenario("app_email", "a valid Email is echoed",
             *START, Send("C", ("email",)), Until("C"), *LOGOUT),
    scenario("app_unsupported", "OrderCancelRequest: BusinessMessageReject (Reject before FIX.4.2)",
             *START, Send("F", ("cancel",)), Sync(), *LOGOUT, fast=True),
    scenario("app_poss_resend", "an order sent again with PossResend is not echoed, a new one is",
             *START, order(), Until("D"), order(header=((97, "Y"),)), Send("D", ("order2",), header=((97, "Y"),)),
             Until("D"), Sync(), *LOGOUT),
    scenario("app_appl_ver_id", "FIXT order naming the session's own ApplVerID (1128)",
             *START, order(header=((1128, "<APPLVERID>"),)), Until("D"), *LOGOUT, versions=FIXT),
    scenario("app_other_appl_ver_id", "FIXT order naming ApplVerID 1128=6 (FIX.4.4)",
             *START, order(header=((1128, "6"),)), Until("D"), Sync(), *LOGOUT, versions=FIXT),
    scenario("app_bad_appl_ver_id", "FIXT order with ApplVerID 1128=X (not an ApplVerID)",
             *START, order(header=((1128, "X"),)), Sync(), *LOGOUT, versions=FIXT),
    scenario("app_before_logon", "an order as the first message",
             Connect(), order(), ExpectClose()),

    # ---- Several messages read at once
    scenario("burst_logon_order", "Logon and an order in one write (QuickFIX's SocketAcceptor takes the order at "
             "its next read, so a Sync follows)",
             Connect(), Burst((logon(), order())), Until("A"), Sync(), *LOGOUT),
    scenario("burst_order_test_request", "an order and a TestRequest in one write: echo, then Heartbeat?",
             *START, Burst((order(), Send("1", ((112, "AFTER"),)))), Until("D"), Sync(), *LOGOUT, fast=True),
    scenario("burst_order_logout", "an order and a Logout in one write",
             *START, Burst((order(), Send("5"))), ExpectClose()),

    # ---- Logout
    scenario("logout_text", "Logout with a Text",
             *START, Send("5", ((58, "bye"),)), ExpectClose()),
    scenario("logout_seq_too_high", "Logout with a too-high MsgSeqNum",
             *START, Send("5", seq=5), ExpectClose()),
    scenario("logout_seq_too_low", "Logout with a too-low MsgSeqNum (no PossDup)",
             *START, hb(), Send("5", seq=2), ExpectClose()),
    scenario("logout_unanswered", "the acceptor's Logout (CompID problem) left unanswered: it disconnects",
             *START, hb(replace=((49, "WRONG"),)), Until("5"), ExpectClose(), timed=True),
    scenario("logout_answered_late", "the acceptor's Logout answered with a Heartbeat, then a Logout",
             *START, hb(replace=((49, "WRONG"),)), Until("5"), hb(), Send("5"), ExpectClose()),
)

SCENARIO_BY_NAME = {s.name: s for s in SCENARIOS}
if len(SCENARIO_BY_NAME) != len(SCENARIOS):
    raise AssertionError("scenario names must be unique: they name the sessions")
