"""The FIX session layer as a pure state machine.

Bytes and clock readings go in; bytes to send, application messages and
events come out as a list of outputs (``actors.fix.outputs``). The session
never touches a socket, a file or a clock, so every rule below can be tested
by feeding it bytes and stepping a fake clock.

The order of checks for each inbound message is the one counterparties and
the FIX session test cases expect:

1. framing (BodyLength, CheckSum) and parsing: garbled -> ignored (before
   Logon: disconnect);
2. BeginString must be ours: before Logon -> disconnect, after -> Logout
   "Incorrect BeginString";
3. data-dictionary validation -> session Reject (35=3);
4. per message type, ``_verify``: Logon state, SendingTime accuracy, CompIDs,
   MsgSeqNum too high (queue + ResendRequest) or too low (Logout, or ignore
   a PossDup with a sane OrigSendingTime).

Each inbound message is handled in turn: ``process`` returns after an
application message (``Deliver``), and the runner hands it to the application,
which may answer it, before it calls ``process`` again for the next message of
the same read (``more_input``). The replies therefore go out in the order of
the messages they answer, as with QuickFIX: an order's echo before the
Heartbeat that answers a TestRequest read with it.

A message whose MsgSeqNum is too high is queued and processed in order once
the gap is filled. The next expected incoming number advances only when a
message has been handled; the runner persists it after executing ``Deliver``
(store-and-forward: incoming is stored after it is processed).
"""

from __future__ import annotations

from collections.abc import Mapping
from heapq import heappop, heappush
from operator import itemgetter
from typing import Final

from actors.fix import tags as T
from actors.fix.codec import Frame, Framer, GarbledMessage, encode, parse
from actors.fix.config import Role, SessionConfig
from actors.fix.dictionary import DataDictionary
from actors.fix.hooks import LogonHold, SessionHooks
from actors.fix.message import Message
from actors.fix.outputs import (
    Deliver,
    Disconnect,
    Log,
    Output,
    PeerRejected,
    Resend,
    ResetStore,
    Send,
    SessionEvent,
    StateChanged,
    Withheld,
)
from actors.fix.secrets import mask_fields, mask_wire
from actors.fix.states import LOGGED_ON, LOGON_HELD_REASON, OFFLINE, SessionState, check_transition
from actors.fix.tags import MsgType
from actors.fix.timefmt import NS_PER_S, Instant, TimestampFormatter, parse_utc_timestamp
from actors.fix.validation import REJECT_TEXT, RejectReason, validate

S = SessionState
_by_tag = itemgetter(0)

#: BusinessRejectReason (380) values used by the session.
BUSINESS_REJECT_UNSUPPORTED_MESSAGE_TYPE = 3

#: ResendRequests remembered for storm detection (``resend_storm_interval_s``), at most this many ranges.
MAX_REMEMBERED_RESEND_REQUESTS: Final = 32

#: Too-high messages kept until their gap is filled, at most this many and this many bytes of values.
#: Past either bound a too-high message is not kept: our ResendRequest asks for everything from the
#: gap on (EndSeqNo 0, or 999999 before FIX.4.2), so the peer sends it again; and a message the peer
#: sends later shows the gap anew. Without a bound a peer that never fills a gap fills our memory
#: (about 2 KiB per small message).
MAX_QUEUED_MESSAGES: Final = 10_000
MAX_QUEUED_BYTES: Final = 32 << 20


class Session:
    """One FIX session: sequence numbers, state and the session protocol."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        next_sender: int = 1,
        next_target: int = 1,
        transport_dictionary: DataDictionary | None = None,
        app_dictionary: DataDictionary | None = None,
        hooks: SessionHooks | None = None,
        app_dictionaries: Mapping[str, DataDictionary] | None = None,
    ) -> None:
        self.config = config
        self.hooks = hooks or SessionHooks()
        self._transport_dd = transport_dictionary
        self._app_dd = app_dictionary if app_dictionary is not None else transport_dictionary
        # FIXT.1.1: application dictionaries by ApplVerID (1128) value; the
        # peer's DefaultApplVerID (1137) from its Logon picks one when a
        # message carries no ApplVerID.
        self._app_dds = dict(app_dictionaries or {})
        self._appl_ver_id = config.default_appl_ver_id
        self._validate = config.use_data_dictionary
        self._begin = config.begin_string.encode()
        self._sender = config.sender_comp_id.encode()
        self._target = config.target_comp_id.encode()
        self._rank = config.version_rank
        self._ts = TimestampFormatter(config.effective_timestamp_precision)
        self.state = S.DISCONNECTED
        self.next_sender = next_sender
        self.next_target = next_target
        self.heartbeat_interval_s = float(config.heartbeat_interval_s)
        self._framer = Framer()
        self._out: list[Output] = []
        self._now = Instant(0.0, 0)
        #: MsgSeqNum -> (too-high message, or None for a number to consume, its size in bytes).
        self._queue: dict[int, tuple[Message | None, int]] = {}
        #: The queued numbers as a heap, so that the next one to process is found without a scan.
        self._queue_seqs: list[int] = []
        self._queue_bytes = 0
        self._queue_full = False
        self._resend_range: tuple[int, int] | None = None
        #: Chunked ResendRequests (``resend_request_chunk_size``): the last number of the whole gap.
        self._resend_goal: int | None = None
        #: The answer to a ResendRequest given in parts (``answer_resend(..., through=)``), while it lasts.
        self._answering: _Answer | None = None
        #: (BeginSeqNo, EndSeqNo) -> when it was last answered, for storm detection.
        self._answered_requests: dict[tuple[int, int], _Answered] = {}
        #: ``process`` stopped after an application message; more input may wait (``more_input``).
        self._paused = False
        self._logon_deadline: float | None = None
        self._logout_deadline: float | None = None
        self._drop_reason: str | None = None
        #: An acceptor's Logon that the application holds (``LogonHold``) until ``answer_logon``.
        self._held_logon: Message | None = None
        self._held_why = ""
        self._reset_connection_state()

    # ------------------------------------------------------------------ status

    @property
    def app_dictionary(self) -> DataDictionary | None:
        return self._app_dd

    @property
    def is_logged_on(self) -> bool:
        return self.state in LOGGED_ON

    @property
    def more_input(self) -> bool:
        """``process`` stopped after an application message: call it again, once the application has it.

        The rest of the read (and queued messages whose turn has come) waits in the session until then.
        """
        return self._paused

    @property
    def logon_held(self) -> bool:
        """An acceptor holds its peer's Logon for the application's answer (``answer_logon``)."""
        return self._held_logon is not None

    def status(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "next_sender_seq": self.next_sender,
            "next_target_seq": self.next_target,
            "heartbeat_interval_s": self.heartbeat_interval_s,
            "queued": sorted(self._queue),
            "resend_range": list(self._resend_range) if self._resend_range else None,
        }

    # ----------------------------------------------------- connection lifecycle

    def start_connecting(self, now: Instant, reason: str = "connecting") -> list[Output]:
        """Initiator: the runner is opening the TCP connection."""
        self._begin_call(now)
        self._transition(S.CONNECTING, reason)
        return self._end_call()

    def start_reconnecting(self, now: Instant, reason: str) -> list[Output]:
        """Initiator: waiting for the next reconnect attempt."""
        self._begin_call(now)
        self._transition(S.RECONNECTING, reason)
        return self._end_call()

    def give_up(self, now: Instant, reason: str) -> list[Output]:
        """Initiator: no more reconnect attempts."""
        self._begin_call(now)
        if self.state is not S.DISCONNECTED:
            self._transition(S.DISCONNECTED, reason)
        return self._end_call()

    def connection_made(self, now: Instant, reset_seqnums: bool = False) -> list[Output]:
        """The TCP connection is up: an initiator sends Logon, an acceptor waits for one.

        ``reset_seqnums`` starts this connection with both numbers at 1 (a
        daily reset); an initiator then sends ResetSeqNumFlag=Y.
        """
        self._begin_call(now)
        self._reset_connection_state()
        self._last_received = self._last_sent = now.mono_s
        self._logon_deadline = now.mono_s + self.config.logon_timeout_s
        if self.config.role is Role.INITIATOR:
            if self.state is not S.CONNECTING:
                self._transition(S.CONNECTING, "connection established")
            if self.config.reset_on_logon or reset_seqnums:
                self._reset_seqnums("sequence numbers reset before Logon")
                self._sent_reset = True
            self._send_logon(reset=self._sent_reset)
        else:
            if reset_seqnums:
                self._reset_seqnums("sequence numbers reset before Logon")
            self._transition(S.WAITING_FOR_LOGON, "connection accepted")
        return self._end_call()

    def connection_failed(self, now: Instant, reason: str) -> list[Output]:
        """Initiator: the TCP connect did not succeed."""
        self._begin_call(now)
        self._transition(S.DISCONNECTED_ABNORMALLY, reason)
        return self._end_call()

    def connection_lost(self, now: Instant, reason: str = "connection closed") -> list[Output]:
        """The runner's socket is closed (by either side)."""
        self._begin_call(now)
        if self.state is S.WAITING_FOR_FORCED_DISCONNECT:
            self._transition(S.DISCONNECTED_ABNORMALLY, self._drop_reason or reason)
        elif self.state not in OFFLINE:
            if self.state is S.WAITING_FOR_LOGOFF:
                self._transition(S.DISCONNECTED, f"{reason} while waiting for the Logout reply")
            else:
                self._transition(S.DISCONNECTED_ABNORMALLY, reason)
            self._after_disconnect()
        self._framer.clear()
        return self._end_call()

    def shutdown(self, now: Instant, reason: str = "shut down") -> list[Output]:
        """The session will not be used again."""
        self._begin_call(now)
        if self.state is not S.DEAD:
            self._transition(S.DEAD, reason)
        return self._end_call()

    # ------------------------------------------------------------------ inbound

    def receive(self, data: bytes) -> None:
        """Buffer bytes from the socket; ``process`` acts on them."""
        self._framer.feed(data)

    def process(self, now: Instant) -> list[Output]:
        """Handle the buffered messages in turn, up to and including the next application message.

        After a ``Deliver`` it returns at once, so that the application sees the message, and may
        answer it, before the session handles the next one; ``more_input`` then says to call again.
        Without an application message in the buffer it handles everything that is complete.
        """
        self._begin_call(now)
        if self._paused:
            self._paused = False
            self._next_queued()
        framer = self._framer
        while not self._paused and self.state not in OFFLINE and self.state is not S.WAITING_FOR_FORCED_DISCONNECT:
            frame = framer.next_frame()
            if frame is None:
                break
            self._on_frame(frame)
        if self.state in OFFLINE or self.state is S.WAITING_FOR_FORCED_DISCONNECT:
            framer.clear()
        return self._end_call()

    def on_timer(self, now: Instant) -> list[Output]:
        """Heartbeats, TestRequests and the logon/logout/heartbeat timeouts."""
        self._begin_call(now)
        t = now.mono_s
        st = self.state
        if st in (S.CONNECTING, S.WAITING_FOR_LOGON, S.LOGON_RECEIVED):
            if self._logon_deadline is not None and t >= self._logon_deadline:
                if self._held_logon is not None:
                    # The application never answered: the peer learns why in the Logout, not by a silent drop.
                    self._held_logon = None
                    self._refuse_logon(f"{self._held_why} within {self.config.logon_timeout_s:g} s")
                else:
                    self._drop(f"no Logon within {self.config.logon_timeout_s:g} s")
        elif st in (S.WAITING_FOR_LOGOFF, S.WAITING_FOR_FORCED_LOGOFF) and (
            self._logout_deadline is not None and t >= self._logout_deadline
        ):
            text = f"no Logout reply within {self.config.logout_timeout_s:g} s"
            if st is S.WAITING_FOR_LOGOFF:
                self._disconnect_clean(text)
            else:
                self._drop(text)
        elif st in LOGGED_ON and self.heartbeat_interval_s > 0:
            self._heartbeat_duties(t)
        return self._end_call()

    def next_deadline(self) -> float | None:
        """Monotonic time at which ``on_timer`` has something to do, or None."""
        st = self.state
        if st in (S.CONNECTING, S.WAITING_FOR_LOGON, S.LOGON_RECEIVED):
            return self._logon_deadline
        deadlines: list[float] = []
        if st in (S.WAITING_FOR_LOGOFF, S.WAITING_FOR_FORCED_LOGOFF) and self._logout_deadline is not None:
            deadlines.append(self._logout_deadline)
        if st in LOGGED_ON and self.heartbeat_interval_s > 0:
            hbi = self.heartbeat_interval_s
            factor = self.config.test_request_factor
            if self._test_requests == 0:
                deadlines.append(self._last_sent + hbi)
            deadlines.append(self._last_received + factor * (self._test_requests + 1) * hbi)
            deadlines.append(self._last_received + 2 * factor * hbi)
        return min(deadlines) if deadlines else None

    # ----------------------------------------------------------------- outbound

    def send(
        self,
        msg_type: str,
        body: list[tuple[int, bytes]],
        now: Instant,
        header: list[tuple[int, bytes]] | None = None,
    ) -> list[Output]:
        """Send an application message.

        It gets the next MsgSeqNum and is always stored; it is written only
        while the session is CONNECTED. Otherwise the counterparty receives it
        through its ResendRequest after the next Logon (late delivery).
        """
        self._begin_call(now)
        self._send(msg_type, body, header=header, transmit=self.state is S.CONNECTED)
        return self._end_call()

    def logout(self, now: Instant, text: str | None = None) -> list[Output]:
        """Start a clean logout: send Logout and wait a bounded time for the reply."""
        self._begin_call(now)
        if self.state is S.CONNECTED:
            self._send_logout(text)
            self._transition(S.WAITING_FOR_LOGOFF, text or "logout requested")
        elif self.state in (S.CONNECTING, S.WAITING_FOR_LOGON, S.LOGON_RECEIVED):
            if self.state is not S.WAITING_FOR_LOGON:
                self._send_logout(text)
            self._drop(text or "logout requested before logon completed")
        return self._end_call()

    def disconnect(self, now: Instant, reason: str) -> list[Output]:
        """Drop the connection without a Logout."""
        self._begin_call(now)
        if self.state not in OFFLINE and self.state is not S.WAITING_FOR_FORCED_DISCONNECT:
            self._drop(reason)
        return self._end_call()

    def answer_logon(self, now: Instant, refusal: str | None = None) -> list[Output]:
        """Answer a held Logon: accept it (Logon reply, CONNECTED) or refuse it (Logout with ``refusal``).

        Accepting takes the same path as an immediate accept: HeartBtInt,
        ResetSeqNumFlag and NextExpectedMsgSeqNum of the held Logon apply now.
        Without a held Logon (it timed out, or the peer left) nothing happens
        but a log line: the answer came too late.
        """
        self._begin_call(now)
        msg = self._held_logon
        if msg is None or self.state is not S.LOGON_RECEIVED:
            self._log("info", f"no Logon waits for an answer (state {self.state.value}); answer ignored")
            return self._end_call()
        self._held_logon = None
        if refusal is not None:
            self._refuse_logon(refusal)
        else:
            # The peer could not send anything while it waited for our reply: its silence is not a timeout.
            self._last_received = now.mono_s
            self._accept_logon(msg)
            self._next_queued()
        return self._end_call()

    def answer_resend(
        self, begin: int, end: int, stored: list[tuple[int, bytes]], now: Instant, as_new: bool = False,
        *, through: int | None = None,
    ) -> list[Output]:
        """Answer a ``Resend`` output with the stored messages of ``begin``..``end``.

        Application messages go out again with PossDupFlag=Y, OrigSendingTime
        and their original MsgSeqNum; session messages, missing numbers and
        messages the ``on_resend`` hook vetoes become SequenceReset-GapFill,
        one per run. No new sequence number is used.

        A long range is answered in parts, so that no layer holds all of it:
        ``through`` ends a part (None: the range's end), ``stored`` holds that
        part's stored messages, and the parts of one range come in order, each
        from the number after the previous ``through``. A run of GapFill at the
        end of a part is carried into the next, so the answer is the same,
        message for message, however the range is cut.
        """
        self._begin_call(now)
        last = end if through is None else min(through, end)
        if as_new:
            for seq, data in stored:
                if begin <= seq <= last:
                    self._last_sent = now.mono_s
                    self._out.append(Send(data, seq, "", store=False))
            return self._end_call()
        part = self._answering
        if part is None or part.begin != begin or part.end != end:
            part = _Answer(begin, end)
        gap_start = part.gap_start
        cursor = part.cursor
        resent = 0
        for seq, data in stored:
            if seq < cursor or seq > last:
                continue
            if seq > cursor and gap_start is None:
                gap_start = cursor
            message = self._parse_stored(seq, data)
            withheld: str | None = None
            if message is not None and message.msg_type not in T.ADMIN_MSG_TYPES:
                withheld = self.hooks.on_resend(message, now)
                if withheld is not None:
                    self._out.append(Withheld(message, seq, withheld))
            if message is None or message.msg_type in T.ADMIN_MSG_TYPES or withheld is not None:
                if gap_start is None:
                    gap_start = seq
            else:
                if gap_start is not None:
                    self._send_gap_fill(gap_start, seq)
                    gap_start = None
                self._send_possdup(message, seq)
                resent += 1
            cursor = seq + 1
        if cursor <= last and gap_start is None:
            gap_start = cursor
        part.resent += resent
        if last < end:
            part.cursor = last + 1
            part.gap_start = gap_start
            self._answering = part
            return self._end_call()
        self._answering = None
        if gap_start is not None:
            self._send_gap_fill(gap_start, end + 1)
        self._event("resend", f"resent {part.resent} application message(s) of {begin}..{end}")
        return self._end_call()

    def reset_sequence_numbers(self, now: Instant, reason: str) -> list[Output]:
        """Both sequence numbers back to 1 (end of day, schedule, operator)."""
        self._begin_call(now)
        self._reset_seqnums(reason)
        return self._end_call()

    def set_sequence_numbers(
        self, now: Instant, next_sender: int | None, next_target: int | None
    ) -> list[Output]:
        """Operator override of the next outgoing / expected incoming numbers."""
        self._begin_call(now)
        if next_sender is not None:
            self.next_sender = next_sender
        if next_target is not None:
            self.next_target = next_target
        self._event("seqreset", f"sequence numbers set to sender={self.next_sender} target={self.next_target}")
        return self._end_call()

    # ============================================================== internals

    def _begin_call(self, now: Instant) -> None:
        self._now = now
        self._out = []

    def _end_call(self) -> list[Output]:
        out = self._out
        self._out = []
        return out

    def _reset_connection_state(self) -> None:
        self._clear_queue()
        self._forget_resends()
        self._paused = False
        self._sent_logon = False
        self._received_logon = False
        self._sent_logout = False
        self._held_from: int | None = None
        self._sent_reset = False
        self._received_reset = False
        self._test_requests = 0
        self._last_sent = 0.0
        self._last_received = 0.0
        self._logon_deadline = None
        self._logout_deadline = None
        self._drop_reason = None
        self._held_logon = None
        self._held_why = ""
        self._reset_on_accept: str | None = None

    def _forget_resends(self) -> None:
        """Resends asked for and answers in progress belong to one connection and one sequence."""
        self._resend_range = None
        self._resend_goal = None
        self._answering = None
        self._answered_requests.clear()

    def _transition(self, new: SessionState, reason: str) -> None:
        old = self.state
        check_transition(old, new)
        self.state = new
        self._out.append(
            StateChanged(old, new, reason, self.next_sender, self.next_target, self._now.utc_ns)
        )

    def _event(self, kind: str, text: str) -> None:
        self._out.append(SessionEvent(kind, text, self.next_sender, self.next_target, self._now.utc_ns))

    def _log(self, level: str, text: str) -> None:
        self._out.append(Log(level, text))

    # ---------------------------------------------------------------- frames

    def _on_frame(self, frame: Frame) -> None:
        if frame.error is not None:
            self._garbled(frame.error, frame.data)
            return
        try:
            message = parse(frame.data)
        except GarbledMessage as exc:
            self._garbled(str(exc), frame.data)
            return
        self._next(message, queued=False)
        self._continue_chunked_resend()

    def _garbled(self, reason: str, data: bytes) -> None:
        shown = mask_wire(data[:200]).replace(b"\x01", b"|").decode("latin-1")
        if not self._received_logon:
            self._log("warning", f"garbled message before Logon, disconnecting: {reason}: {shown}")
            self._drop(f"garbled message before Logon: {reason}")
            return
        self._log("warning", f"garbled message ignored: {reason}: {shown}")
        self._event("garbled", reason)

    # -------------------------------------------------------- message dispatch

    def _next(self, msg: Message, queued: bool) -> None:
        mt = msg.msg_type
        if not msg.has(T.SENDER_COMP_ID) or not msg.has(T.TARGET_COMP_ID):
            if mt == MsgType.LOGON or not self._received_logon:
                self._drop("message without SenderCompID or TargetCompID before Logon")
            else:
                missing = T.SENDER_COMP_ID if not msg.has(T.SENDER_COMP_ID) else T.TARGET_COMP_ID
                self._reject(msg, RejectReason.REQUIRED_TAG_MISSING, missing)
            return
        if msg.get(T.BEGIN_STRING) != self._begin:
            self._wrong_begin_string(msg, mt)
            return
        raw_seq = msg.get(T.MSG_SEQ_NUM)
        if raw_seq is not None and _ref_seq(raw_seq) is None and not (
                mt == MsgType.SEQUENCE_RESET and not msg.flag(T.GAP_FILL_FLAG)):
            self._unreadable_seq_num(raw_seq)
            return
        if self._validate:
            app_dd = self._app_dd
            if self._app_dds and mt not in T.ADMIN_MSG_TYPES:
                version = msg.get_str(T.APPL_VER_ID) or self._appl_ver_id or ""
                app_dd = self._app_dds.get(version)
                if app_dd is None:
                    self._reject(msg, RejectReason.INVALID_UNSUPPORTED_APPL_VERSION,
                                 T.APPL_VER_ID if msg.has(T.APPL_VER_ID) else None)
                    if not queued:
                        self._next_queued()
                    return
            rejection = validate(msg, self._transport_dd, app_dd, self.config.validation)
            if rejection is not None:
                if mt == MsgType.LOGON or not self._received_logon:
                    self._drop(f"invalid {_name(mt)} before Logon completed: {rejection.text} (tag {rejection.tag})")
                else:
                    self._reject(msg, rejection.reason, rejection.tag, rejection.text)
                    if not queued:
                        self._next_queued()
                return
        if self._held_logon is not None:
            self._while_logon_held(msg)
            return
        if mt == MsgType.LOGON and self.state in (S.WAITING_FOR_LOGOFF, S.WAITING_FOR_FORCED_LOGOFF):
            # Our Logout waits for its answer: a Logon cannot start anything now. Taking it in would
            # move to CONNECTED, which is no legal next state (that raised out of the session), and a
            # ResetSeqNumFlag=Y would first reset both numbers and the store for a Logon then refused.
            self._drop("unexpected Logon while our Logout waits for its answer")
            return
        handler = _HANDLERS.get(mt)
        if handler is not None:
            handler(self, msg)
        else:
            self._next_app(msg)
        if not queued and not self._paused:
            self._next_queued()

    def _unreadable_seq_num(self, raw_seq: bytes) -> None:
        """A MsgSeqNum that is empty or no number (``34=abc``, ``34=-5``, 19 digits) counts as missing.

        FIX answers a missing MsgSeqNum with a Logout and a disconnect; a Reject would need a
        RefSeqNum (45) it cannot have. Only a SequenceReset-Reset, whose MsgSeqNum FIX ignores,
        goes on to the usual checks. Before Logon nothing is sent (an invalid Logon).
        """
        text = f"MsgSeqNum (34) is not a number: {ascii(_shown(raw_seq))}"
        self._log("warning", text)
        if not self._received_logon:
            self._drop(f"{text}, before Logon")
        else:
            self._force_logout(text, then_drop=True)

    def _while_logon_held(self, msg: Message) -> None:
        """A message from a peer whose Logon we have not answered yet.

        A FIX initiator sends nothing but its Logon until the reply comes, so
        anything else is ignored with a log line and its MsgSeqNum is not
        consumed: after the Logon the gap makes us ask for it again, and a
        business message arrives once, as a PossDup resend. A Logout means the
        peer gave up waiting: it gets its Logout reply and the connection ends.
        """
        mt = msg.msg_type
        if mt == MsgType.LOGOUT:
            text = msg.get_str(T.TEXT, "") or ""
            self._held_logon = None
            self._event("logout", "Logout received while its Logon waited" + (f": {text}" if text else ""))
            self._refuse_logon("Logout received while the Logon waited for its answer")
            return
        self._log("warning", f"{_name(mt)} {msg.get_str(T.MSG_SEQ_NUM, '?')} ignored: the Logon is not answered yet")

    def _wrong_begin_string(self, msg: Message, mt: str) -> None:
        got = msg.begin_string
        if not self._received_logon:
            self._drop(f"BeginString {got} does not match {self.config.begin_string}")
        elif mt == MsgType.LOGOUT:
            self._next_logout(msg)
        else:
            self._log("warning", f"BeginString {got} does not match {self.config.begin_string}")
            self._force_logout("Incorrect BeginString")
            self._advance_if_expected(msg)

    # ---------------------------------------------------------- verification

    def _verify(self, msg: Message, check_too_high: bool, check_too_low: bool) -> bool:
        """The checks every message type shares (FIX session-level rules)."""
        mt = msg.msg_type
        seq = msg.seq_num
        if (check_too_high or check_too_low) and seq is None:
            self._force_logout("MsgSeqNum (34) missing", then_drop=True)
            return False
        if not self._valid_logon_state(mt):
            self._drop(f"{_name(mt)} is not valid before Logon" if not self._received_logon
                       else f"unexpected {_name(mt)} while logged on")
            return False
        raw_time = msg.get(T.SENDING_TIME)
        sending_ns = parse_utc_timestamp(raw_time) if raw_time is not None else None
        if sending_ns is None:
            missing = raw_time is None
            reason = RejectReason.REQUIRED_TAG_MISSING if missing else RejectReason.INCORRECT_DATA_FORMAT_FOR_VALUE
            self._reject(msg, reason, T.SENDING_TIME)
            return False
        if self.config.check_latency and abs(self._now.utc_ns - sending_ns) > self.config.max_latency_s * NS_PER_S:
            self._reject(msg, RejectReason.SENDING_TIME_ACCURACY_PROBLEM, None)
            self._force_logout(None)
            return False
        if self.config.check_comp_id and (
            msg.get(T.SENDER_COMP_ID) != self._target or msg.get(T.TARGET_COMP_ID) != self._sender
        ):
            self._reject(msg, RejectReason.COMPID_PROBLEM, None)
            self._force_logout(None)
            return False
        if seq is not None:
            if check_too_high and seq > self.next_target:
                self._target_too_high(msg, seq)
                return False
            if check_too_low and seq < self.next_target:
                self._target_too_low(msg, seq, sending_ns)
                return False
            rr = self._resend_range
            if (check_too_high or check_too_low) and rr is not None and seq >= rr[1]:
                self._event("resend", f"ResendRequest {rr[0]}..{rr[1]} satisfied")
                self._resend_range = None
        self._last_received = self._now.mono_s
        self._test_requests = 0
        return True

    def _valid_logon_state(self, mt: str) -> bool:
        if (mt == MsgType.LOGON and self._sent_reset) or self._received_reset:
            return True
        if (mt == MsgType.LOGON) != self._received_logon:
            return True
        if mt == MsgType.LOGOUT and self._sent_logon:
            return True
        if mt != MsgType.LOGOUT and self._sent_logout:
            return True
        return mt in (MsgType.SEQUENCE_RESET, MsgType.REJECT)

    def _target_too_high(self, msg: Message | None, seq: int) -> None:
        self._event("gap", f"MsgSeqNum too high, expecting {self.next_target} but received {seq}")
        self._keep_queued(msg, seq)
        rr = self._resend_range
        if rr is not None and self.next_target > rr[1]:
            # The last gap is filled, though perhaps by a GapFill or a queued Logon, which do not
            # pass through the check that clears the range: this is a new gap and must be asked for.
            self._event("resend", f"ResendRequest {rr[0]}..{rr[1]} satisfied")
            self._resend_range = None
        if (
            self._resend_range is not None
            and not self.config.send_redundant_resend_requests
            and seq >= self._resend_range[0]
        ):
            return
        begin = self.next_target
        chunk = self.config.resend_request_chunk_size
        if chunk and seq - begin > chunk:
            self._resend_goal = seq - 1
            self._ask_resend(begin, begin + chunk - 1)
            return
        self._resend_goal = None
        self._send(MsgType.RESEND_REQUEST, [(T.BEGIN_SEQ_NO, b"%d" % begin),
                                            (T.END_SEQ_NO, b"0" if self._rank >= 42 else b"999999")])
        self._resend_range = (begin, seq - 1)
        self._event("resend_request", f"sent ResendRequest for {begin}..{seq - 1}")

    def _ask_resend(self, begin: int, end: int) -> None:
        """One ResendRequest of a gap asked for in chunks: its EndSeqNo is explicit."""
        self._send(MsgType.RESEND_REQUEST, [(T.BEGIN_SEQ_NO, b"%d" % begin), (T.END_SEQ_NO, b"%d" % end)])
        self._resend_range = (begin, end)
        self._event("resend_request", f"sent ResendRequest for {begin}..{end} (a chunk of the gap up to "
                                      f"{self._resend_goal})")

    def _continue_chunked_resend(self) -> None:
        """A gap asked for in chunks: once one chunk is filled (or gap-filled past), ask for the next."""
        goal = self._resend_goal
        if goal is None:
            return
        if self.state not in LOGGED_ON:
            self._resend_goal = None
            return
        rr = self._resend_range
        if rr is not None and self.next_target <= rr[1]:
            return  # the current chunk is still being filled
        if self.next_target > goal:
            self._resend_goal = None
            return
        if rr is not None:
            self._event("resend", f"ResendRequest {rr[0]}..{rr[1]} satisfied")
        self._ask_resend(self.next_target, min(goal, self.next_target + self.config.resend_request_chunk_size - 1))

    def _target_too_low(self, msg: Message, seq: int, sending_ns: int) -> None:
        mt = msg.msg_type
        if not msg.flag(T.POSS_DUP_FLAG):
            self._force_logout(f"MsgSeqNum too low, expecting {self.next_target} but received {seq}", then_drop=True)
            return
        if mt != MsgType.SEQUENCE_RESET:
            raw_orig = msg.get(T.ORIG_SENDING_TIME)
            if raw_orig is None:
                self._reject(msg, RejectReason.REQUIRED_TAG_MISSING, T.ORIG_SENDING_TIME)
                return
            orig_ns = parse_utc_timestamp(raw_orig)
            if orig_ns is None:
                self._reject(msg, RejectReason.INCORRECT_DATA_FORMAT_FOR_VALUE, T.ORIG_SENDING_TIME)
                return
            if orig_ns > sending_ns:
                self._reject(msg, RejectReason.SENDING_TIME_ACCURACY_PROBLEM, None)
                self._force_logout(None)
                return
        self._log("debug", f"duplicate {_name(mt)} {seq} ignored (PossDupFlag=Y, expecting {self.next_target})")

    def _keep_queued(self, msg: Message | None, seq: int) -> None:
        """Queue a too-high message for when its gap is filled, within ``MAX_QUEUED_*``."""
        size = 0 if msg is None else sum(len(value) + 8 for _, value in msg.fields)
        queue = self._queue
        old = queue.get(seq)
        if old is not None:
            self._queue_bytes -= old[1]
        elif len(queue) >= MAX_QUEUED_MESSAGES or self._queue_bytes + size > MAX_QUEUED_BYTES:
            if not self._queue_full:
                self._queue_full = True
                self._log("warning", f"{len(queue)} messages ({self._queue_bytes} bytes) wait for the gap at "
                                     f"{self.next_target}: later too-high messages are not kept, the peer resends them")
            return
        else:
            heappush(self._queue_seqs, seq)
        queue[seq] = (msg, size)
        self._queue_bytes += size

    def _clear_queue(self) -> None:
        # Emptied in place: ``_next_queued`` holds them while a queued message may reset the session.
        self._queue.clear()
        self._queue_seqs.clear()
        self._queue_bytes = 0
        self._queue_full = False

    def _next_queued(self) -> None:
        """Process the queued messages whose turn has come, in MsgSeqNum order; forget those passed over."""
        queue = self._queue
        seqs = self._queue_seqs
        while seqs and self.state in LOGGED_ON and not self._paused:
            seq = seqs[0]
            if seq > self.next_target:
                return
            heappop(seqs)
            msg, size = queue.pop(seq)
            self._queue_bytes -= size
            self._queue_full = False
            if seq < self.next_target:
                continue  # a SequenceReset or a GapFill moved past it
            if msg is None or msg.msg_type in (MsgType.LOGON, MsgType.RESEND_REQUEST):
                self.next_target += 1
                continue
            self._log("debug", f"processing queued message {self.next_target}")
            self._next(msg, queued=True)
            self._continue_chunked_resend()

    # ------------------------------------------------------- message handlers

    def _next_logon(self, msg: Message) -> None:
        reset_flag = msg.flag(T.RESET_SEQ_NUM_FLAG)
        self._received_reset = reset_flag
        first_logon = not self._received_logon
        acceptor = self.config.role is Role.ACCEPTOR
        reset_why: str | None = None
        if reset_flag:
            if not self._sent_reset:
                reset_why = "Logon with ResetSeqNumFlag=Y"
        elif acceptor and self.config.reset_on_logon and first_logon:
            reset_why = "ResetOnLogon"
        # The reset happens only once the Logon is accepted (``_accept_logon``): a Logon that is refused
        # (bad credentials, CompIDs or SendingTime, held until it times out) must not wipe the numbers
        # and the store of the real user's session, neither at the first Logon nor in the middle of one.
        self._reset_on_accept = reset_why
        if not self._verify(msg, check_too_high=False, check_too_low=reset_why is None):
            return
        heartbeat = msg.get_int(T.HEART_BT_INT)
        if heartbeat is None or heartbeat < 0:
            self._drop("Logon without a valid HeartBtInt (108)")
            return
        if self.config.is_fixt and acceptor:
            peer_version = msg.get_str(T.DEFAULT_APPL_VER_ID)
            if peer_version is None:
                self._drop("FIXT.1.1 Logon without DefaultApplVerID (1137)")
                return
            self._appl_ver_id = peer_version
        if acceptor and first_logon:
            decision = self.hooks.on_logon_request(msg, self._now)
            if isinstance(decision, LogonHold):
                self._transition(S.LOGON_RECEIVED, LOGON_HELD_REASON)
                self._held_logon = msg
                self._held_why = decision.why
                # The bound counts from the Logon: the peer waits at most logon_timeout_s for our answer.
                self._logon_deadline = self._now.mono_s + self.config.logon_timeout_s
                self._event("logon_held", f"Logon held for the application's answer, HeartBtInt={heartbeat}")
                return
            self._transition(S.LOGON_RECEIVED, "Logon received")
            if decision is not None:
                self._refuse_logon(decision)
                return
        self._accept_logon(msg)

    def _refuse_logon(self, refusal: str) -> None:
        """Answer the peer's Logon with a Logout carrying ``refusal``, then drop the connection."""
        self._sent_logon = True
        self._send_logout(refusal)
        # The application's text often says "Logon refused" itself; the log line says it once.
        self._drop(refusal if refusal.startswith("Logon refused") else f"Logon refused: {refusal}")

    def _accept_logon(self, msg: Message) -> None:
        """The rest of a verified Logon: our reply (acceptor), CONNECTED, and the peer's MsgSeqNum."""
        heartbeat = msg.get_int(T.HEART_BT_INT) or 0
        reset_flag = msg.flag(T.RESET_SEQ_NUM_FLAG)
        acceptor = self.config.role is Role.ACCEPTOR
        if self._reset_on_accept is not None:
            self._reset_seqnums(self._reset_on_accept)
            self._reset_on_accept = None
        self._received_logon = True
        if acceptor or (self._received_reset and not self._sent_reset):
            self.heartbeat_interval_s = float(heartbeat)
            self._send_logon(reset=self._received_reset)
        self._sent_reset = False
        self._received_reset = False
        if self.state is not S.CONNECTED:
            self._transition(S.CONNECTED, "Logon accepted" if acceptor else "Logon reply received")
            if self._held_from is not None:
                self._out.append(Resend(self._held_from, self.next_sender - 1, as_new=True))
                self._held_from = None
        self._event("logon", f"logged on, HeartBtInt={heartbeat}" + (", sequence reset" if reset_flag else ""))
        seq = msg.seq_num or 0
        if seq > self.next_target and not reset_flag:
            self._target_too_high(msg, seq)
        else:
            self.next_target += 1
        self._next_expected_from_logon(msg)

    def _next_expected_from_logon(self, msg: Message) -> None:
        """NextExpectedMsgSeqNum (789): the peer tells us what it has from us."""
        expected = msg.get_int(T.NEXT_EXPECTED_MSG_SEQ_NUM)
        if expected is None or self.state is not S.CONNECTED:
            return
        if expected > self.next_sender:
            self._force_logout(
                f"NextExpectedMsgSeqNum {expected} is higher than our next MsgSeqNum {self.next_sender}",
                then_drop=True,
            )
        elif expected < self.next_sender:
            self._out.append(Resend(expected, self.next_sender - 1))

    def _next_heartbeat(self, msg: Message) -> None:
        if self._verify(msg, True, True):
            self.next_target += 1

    def _next_test_request(self, msg: Message) -> None:
        if not self._verify(msg, True, True):
            return
        test_id = msg.get(T.TEST_REQ_ID)
        self._send(MsgType.HEARTBEAT, [(T.TEST_REQ_ID, test_id)] if test_id is not None else [])
        self.next_target += 1

    def _next_reject(self, msg: Message) -> None:
        if self._verify(msg, True, True):
            self._event("reject", f"peer rejected our message {msg.get_str(T.REF_SEQ_NUM)}: {msg.get_str(T.TEXT, '')}")
            ref_seq = msg.get_int(T.REF_SEQ_NUM)
            if ref_seq is not None:
                self._out.append(PeerRejected(ref_seq, msg.get_str(T.TEXT, "") or "",
                                              msg.get_int(T.SESSION_REJECT_REASON), msg.get_int(T.REF_TAG_ID)))
            self.next_target += 1

    def _next_sequence_reset(self, msg: Message) -> None:
        gap_fill = msg.flag(T.GAP_FILL_FLAG)
        if not self._verify(msg, gap_fill, gap_fill):
            return
        new_seq = msg.get_int(T.NEW_SEQ_NO)
        if new_seq is None:
            self._reject_int_field(msg, T.NEW_SEQ_NO)
            return
        mode = "GapFill" if gap_fill else "Reset"
        self._event("seqreset", f"SequenceReset-{mode} from {self.next_target} to {new_seq}")
        if new_seq > self.next_target:
            self.next_target = new_seq
        elif new_seq < self.next_target:
            self._reject(msg, RejectReason.VALUE_IS_INCORRECT, None)

    def _next_resend_request(self, msg: Message) -> None:
        if not self._verify(msg, False, False):
            return
        begin = msg.get_int(T.BEGIN_SEQ_NO)
        end = msg.get_int(T.END_SEQ_NO)
        if begin is None or end is None:
            self._reject_int_field(msg, T.BEGIN_SEQ_NO if begin is None else T.END_SEQ_NO)
            return
        if begin < 1 or end < 0:
            # Sequence numbers start at 1 (EndSeqNo 0 means "all"): answering 0 would send MsgSeqNum 0.
            bad = T.BEGIN_SEQ_NO if begin < 1 else T.END_SEQ_NO
            self._reject(msg, RejectReason.VALUE_IS_INCORRECT, bad, f"{'BeginSeqNo' if begin < 1 else 'EndSeqNo'} "
                         f"{begin if begin < 1 else end} is out of range")
            return
        if self._storm(begin, end):
            self._consume_resend_request_seq(msg)
            return
        self._event("resend_request", f"peer asked for {begin}..{end}")
        last_sent = self.next_sender - 1
        if (self._rank >= 42 and end == 0) or (self._rank <= 42 and end == 999999) or end > last_sent:
            end = last_sent
        if begin <= end:
            if self.config.persist_messages:
                self._out.append(Resend(begin, end))
            else:
                self._send_gap_fill(begin, self.next_sender)
        else:
            self._log("warning", f"ResendRequest from {begin} asks for nothing we have sent (last {last_sent})")
        self._consume_resend_request_seq(msg)

    def _consume_resend_request_seq(self, msg: Message) -> None:
        seq = msg.seq_num
        if seq is not None:
            if seq == self.next_target:
                self.next_target += 1
            elif seq > self.next_target:
                # Answered now; its number is consumed once the gap before it is filled.
                self._target_too_high(None, seq)

    def _storm(self, begin: int, end: int) -> bool:
        """A ResendRequest for the range answered less than ``resend_storm_interval_s`` ago: not answered again.

        A counterparty that asks for the same range again and again (a loop in its recovery) would
        have us read and send the range each time; once per interval is enough, since the first
        answer is on its way. The repeats are reported: one event and log line per range and interval.
        """
        interval = self.config.resend_storm_interval_s
        if interval <= 0:
            return False
        t = self._now.mono_s
        recent = self._answered_requests
        seen = recent.get((begin, end))
        if seen is None or t - seen.answered_s >= interval:
            if seen is None and len(recent) >= MAX_REMEMBERED_RESEND_REQUESTS:
                for key in [k for k, v in recent.items() if t - v.answered_s >= interval]:
                    del recent[key]
                if len(recent) >= MAX_REMEMBERED_RESEND_REQUESTS:
                    del recent[min(recent, key=lambda k: recent[k].answered_s)]
            if seen is None:
                recent[(begin, end)] = _Answered(t)
            else:
                seen.answered_s = t
                seen.repeats = 0
            return False
        seen.repeats += 1
        if seen.reported_s is None or t - seen.reported_s >= interval:
            seen.reported_s = t
            text = (f"ResendRequest {begin}..{end} repeated {seen.repeats} time(s) within {interval:g} s of its "
                    f"answer: answered once per {interval:g} s")
            self._log("warning", text)
            self._event("resend_storm", text)
        return True

    def _advance_if_expected(self, msg: Message) -> None:
        if msg.seq_num == self.next_target:
            self.next_target += 1

    def _next_logout(self, msg: Message) -> None:
        if not self._verify(msg, False, False):
            return
        text = msg.get_str(T.TEXT, "") or ""
        if self._sent_logout:
            self._event("logout", "Logout reply received" + (f": {text}" if text else ""))
        else:
            self._event("logout", "Logout received" + (f": {text}" if text else ""))
            self._send_logout(None)
        # Logout is accepted whatever its MsgSeqNum; it advances the expected
        # number only when it is the expected one, so that a gap before it is
        # still asked for after the next Logon.
        self._advance_if_expected(msg)
        if self.config.reset_on_logout:
            self._reset_seqnums("ResetOnLogout")
        if self.state is S.CONNECTING:
            self._drop(f"Logon refused by the counterparty: {text}" if text else "Logon refused by the counterparty")
        else:
            self._disconnect_clean("Logout exchange complete" + (f": {text}" if text else ""))

    def _next_app(self, msg: Message) -> None:
        if not self._verify(msg, True, True):
            return
        mt = msg.msg_type
        allowed = self.config.app_msg_types
        if allowed is not None and mt not in allowed and mt != MsgType.BUSINESS_MESSAGE_REJECT:
            self._business_reject(msg, BUSINESS_REJECT_UNSUPPORTED_MESSAGE_TYPE, "Unsupported Message Type")
            return
        seq = self.next_target
        self.next_target += 1
        self._out.append(Deliver(msg, seq))
        self._paused = True  # the application answers it before the next message is handled

    # --------------------------------------------------------------- sending

    def _header(self, seq: int, extra: list[tuple[int, bytes]] | None) -> list[tuple[int, bytes]]:
        header = [
            (T.MSG_SEQ_NUM, b"%d" % seq),
            (T.SENDER_COMP_ID, self._sender),
            (T.SENDING_TIME, self._ts.format(self._now.utc_ns)),
            (T.TARGET_COMP_ID, self._target),
        ]
        if extra:
            skip = (T.MSG_SEQ_NUM, T.SENDER_COMP_ID, T.SENDING_TIME, T.TARGET_COMP_ID,
                    T.BEGIN_STRING, T.BODY_LENGTH, T.MSG_TYPE, T.CHECKSUM)
            header += [f for f in extra if f[0] not in skip]
            header.sort(key=_by_tag)
        return header

    def _send(
        self,
        msg_type: str,
        body: list[tuple[int, bytes]],
        header: list[tuple[int, bytes]] | None = None,
        transmit: bool = True,
        stored_body: list[tuple[int, bytes]] | None = None,
    ) -> None:
        """Number, encode and send; ``stored_body``: the body the store keeps instead (secrets masked)."""
        seq = self.next_sender
        full_header = self._header(seq, header)
        data = encode(self._begin, msg_type.encode(), full_header, body)
        stored = None if stored_body is None else encode(self._begin, msg_type.encode(), full_header, stored_body)
        self.next_sender = seq + 1
        if transmit:
            self._last_sent = self._now.mono_s
        elif self._sent_logon and self._held_from is None:
            self._held_from = seq
        self._out.append(Send(data, seq, msg_type, store=True, transmit=transmit, stored=stored))

    def _send_logon(self, reset: bool) -> None:
        cfg = self.config
        body: list[tuple[int, bytes]] = [
            (T.ENCRYPT_METHOD, b"0"),
            (T.HEART_BT_INT, b"%d" % int(self.heartbeat_interval_s)),
        ]
        if reset:
            body.append((T.RESET_SEQ_NUM_FLAG, b"Y"))
        if cfg.role is Role.INITIATOR:
            if cfg.username is not None:
                body.append((T.USERNAME, cfg.username.encode()))
            if cfg.password is not None:
                body.append((T.PASSWORD, cfg.password.encode()))
            if cfg.session_qualifier is not None:
                body.append((cfg.qualifier_tag, cfg.session_qualifier.encode()))
        if cfg.send_next_expected_msg_seq_num:
            body.append((T.NEXT_EXPECTED_MSG_SEQ_NUM, b"%d" % self.next_target))
        if cfg.is_fixt and cfg.default_appl_ver_id:
            body.append((T.DEFAULT_APPL_VER_ID, cfg.default_appl_ver_id.encode()))
        body.sort(key=_by_tag)
        masked = mask_fields(body) if cfg.password is not None and cfg.role is Role.INITIATOR else None
        self._send(MsgType.LOGON, body, stored_body=masked)
        self._sent_logon = True

    def _send_logout(self, text: str | None) -> None:
        self._send(MsgType.LOGOUT, [(T.TEXT, text.encode("latin-1", "replace"))] if text else [])
        self._sent_logout = True
        self._logout_deadline = self._now.mono_s + self.config.logout_timeout_s

    def _force_logout(self, text: str | None, then_drop: bool = False) -> None:
        """Logout because of a protocol error; wait for the reply or drop at once.

        Not after the connection was dropped (a Reject before Logon drops it): a Logout then would be
        numbered and stored but never sent, and the peer would see a gap in our numbers.
        """
        if self.state in OFFLINE or self.state is S.WAITING_FOR_FORCED_DISCONNECT:
            return
        self._send_logout(text)
        self._event("logout", f"Logout sent: {text}" if text else "Logout sent")
        if then_drop:
            self._drop(text or "protocol error")
        elif self.state is S.CONNECTED:
            self._transition(S.WAITING_FOR_FORCED_LOGOFF, text or "protocol error")

    def _send_gap_fill(self, seq: int, new_seq: int) -> None:
        now_ts = self._ts.format(self._now.utc_ns)
        header = [
            (T.MSG_SEQ_NUM, b"%d" % seq),
            (T.POSS_DUP_FLAG, b"Y"),
            (T.SENDER_COMP_ID, self._sender),
            (T.SENDING_TIME, now_ts),
            (T.TARGET_COMP_ID, self._target),
            (T.ORIG_SENDING_TIME, now_ts),
        ]
        body = [(T.NEW_SEQ_NO, b"%d" % new_seq), (T.GAP_FILL_FLAG, b"Y")]
        data = encode(self._begin, b"4", header, body)
        self._last_sent = self._now.mono_s
        self._out.append(Send(data, seq, MsgType.SEQUENCE_RESET, store=False))

    def _send_possdup(self, message: Message, seq: int) -> None:
        orig = message.get(T.SENDING_TIME)
        header: list[tuple[int, bytes]] = [(T.POSS_DUP_FLAG, b"Y"), (T.SENDING_TIME, self._ts.format(self._now.utc_ns))]
        if orig is not None:
            header.append((T.ORIG_SENDING_TIME, orig))
        body: list[tuple[int, bytes]] = []
        for tag, value in message.fields[3:-1]:
            if tag in (T.POSS_DUP_FLAG, T.SENDING_TIME, T.ORIG_SENDING_TIME):
                continue
            (header if tag in T.HEADER_TAGS else body).append((tag, value))
        header.sort(key=_by_tag)
        data = encode(self._begin, message.msg_type.encode(), header, body)
        self._last_sent = self._now.mono_s
        self._out.append(Send(data, seq, message.msg_type, store=False))

    def _parse_stored(self, seq: int, data: bytes) -> Message | None:
        try:
            return parse(data)
        except GarbledMessage as exc:
            self._log("error", f"stored message {seq} is unreadable ({exc}); gap-filling it")
            return None

    def _reject(self, msg: Message, reason: RejectReason, tag: int | None, text: str | None = None) -> None:
        """Session-level Reject (35=3), in the field layout of the session's FIX version."""
        if not self._received_logon:
            self._drop(f"{_name(msg.msg_type)} rejected before Logon: {REJECT_TEXT[reason]}")
            return
        text = text or REJECT_TEXT[reason]
        mt = msg.get(T.MSG_TYPE) or b""
        raw_seq = msg.get(T.MSG_SEQ_NUM)
        header = [(to, value) for frm, to in T.REVERSE_ROUTE if (value := msg.get(frm))]
        body: list[tuple[int, bytes]] = []
        ref_seq = _ref_seq(raw_seq)
        if ref_seq is not None:
            body.append((T.REF_SEQ_NUM, ref_seq))
        if self._rank >= 42:
            body.append((T.TEXT, text.encode()))
            if tag is not None:
                body.append((T.REF_TAG_ID, b"%d" % tag))
            if mt:
                body.append((T.REF_MSG_TYPE, mt))
            if self._rank > 42 or reason <= RejectReason.INVALID_MSG_TYPE:
                body.append((T.SESSION_REJECT_REASON, b"%d" % reason))
        else:
            body.append((T.TEXT, (f"{text} ({tag})" if tag is not None else text).encode()))
        if mt not in (b"A", b"4") and msg.seq_num == self.next_target:
            self.next_target += 1
        self._send(MsgType.REJECT, body, header=header)
        self._event("reject", f"rejected {mt.decode('latin-1')} {_shown(raw_seq)}: {text}"
                    + (f" (tag {tag})" if tag is not None else ""))

    def _reject_int_field(self, msg: Message, tag: int) -> None:
        """Reject a message whose integer field ``tag`` is absent, empty, not a number, or too long to be one.

        Only an absent field is "Required tag missing"; a present one says what is wrong with its value.
        """
        value = msg.get(tag)
        if value is None:
            self._reject(msg, RejectReason.REQUIRED_TAG_MISSING, tag)
        elif not value:
            self._reject(msg, RejectReason.TAG_SPECIFIED_WITHOUT_A_VALUE, tag)
        elif value.lstrip(b"-").isdigit():
            self._reject(msg, RejectReason.VALUE_IS_INCORRECT, tag,
                         f"Value is incorrect (out of range) for this tag: {len(value)} digits")
        else:
            self._reject(msg, RejectReason.INCORRECT_DATA_FORMAT_FOR_VALUE, tag)

    def _business_reject(self, msg: Message, reason: int, text: str) -> None:
        mt = msg.get(T.MSG_TYPE) or b""
        raw_seq = msg.get(T.MSG_SEQ_NUM) or b""
        self.next_target += 1
        if self._rank < 42:
            # Before FIX.4.2 it is a session Reject, routed back like every other Reject.
            header = [(to, value) for frm, to in T.REVERSE_ROUTE if (value := msg.get(frm))]
            self._send(MsgType.REJECT, [(T.REF_SEQ_NUM, raw_seq), (T.TEXT, b"Unsupported message type")],
                       header=header)
        else:
            body = [(T.REF_SEQ_NUM, raw_seq), (T.TEXT, text.encode()), (T.REF_MSG_TYPE, mt),
                    (T.BUSINESS_REJECT_REASON, b"%d" % reason)]
            self._send(MsgType.BUSINESS_MESSAGE_REJECT, body)
        self._event("business_reject", f"rejected {mt.decode('latin-1')} {_shown(raw_seq)}: {text}")

    # -------------------------------------------------- timers and disconnects

    def _heartbeat_duties(self, t: float) -> None:
        hbi = self.heartbeat_interval_s
        factor = self.config.test_request_factor
        since_in = t - self._last_received
        if since_in >= 2 * factor * hbi:
            self._event("heartbeat_timeout", f"nothing received for {since_in:.1f} s")
            self._drop(f"nothing received for {since_in:.1f} s (HeartBtInt {hbi:g} s)")
        elif since_in >= factor * (self._test_requests + 1) * hbi:
            self._send(MsgType.TEST_REQUEST, [(T.TEST_REQ_ID, b"TEST")])
            self._test_requests += 1
            self._event("test_request", f"TestRequest sent after {since_in:.1f} s of silence")
        elif t - self._last_sent >= hbi and self._test_requests == 0:
            self._send(MsgType.HEARTBEAT, [])

    def _drop(self, reason: str) -> None:
        """Close the connection because of an error or timeout."""
        if self.state in OFFLINE or self.state is S.WAITING_FOR_FORCED_DISCONNECT:
            return
        self._drop_reason = reason
        self._transition(S.WAITING_FOR_FORCED_DISCONNECT, reason)
        self._out.append(Disconnect(reason))
        self._after_disconnect()

    def _disconnect_clean(self, reason: str) -> None:
        self._transition(S.DISCONNECTED, reason)
        self._out.append(Disconnect(reason))
        self._after_disconnect()

    def _after_disconnect(self) -> None:
        self._logon_deadline = None
        self._logout_deadline = None
        self._framer.clear()
        self._clear_queue()
        self._forget_resends()
        self._paused = False
        self._received_logon = False
        self._sent_logon = False
        self._sent_logout = False
        self._held_logon = None
        if self.config.reset_on_disconnect:
            self._reset_seqnums("ResetOnDisconnect")

    def _reset_seqnums(self, reason: str) -> None:
        self.next_sender = 1
        self.next_target = 1
        self._clear_queue()
        self._forget_resends()
        self._out.append(ResetStore(1, 1, self._now.utc_ns))
        self._event("seqreset", f"sequence numbers reset to 1: {reason}")


class _Answer:
    """Where a ResendRequest answered in parts stands: the next number, a GapFill run still open, the count."""

    def __init__(self, begin: int, end: int) -> None:
        self.begin = begin
        self.end = end
        self.cursor = begin
        self.gap_start: int | None = None
        self.resent = 0


class _Answered:
    """A ResendRequest range answered at ``answered_s``; repeats since, and when they were last reported."""

    def __init__(self, answered_s: float) -> None:
        self.answered_s = answered_s
        self.repeats = 0
        self.reported_s: float | None = None


def _name(msg_type: str) -> str:
    return _MSG_NAMES.get(msg_type, f"message 35={msg_type}")


def _ref_seq(raw_seq: bytes | None) -> bytes | None:
    """RefSeqNum (45) for a Reject: the rejected message's MsgSeqNum when it is a number, else nothing.

    45 is a SeqNum: echoing ``34=abc`` or ``34=-5`` would make our own Reject invalid. (Such a
    message is logged out before any Reject, ``_unreadable_seq_num``; this keeps every path safe.)
    """
    if raw_seq and raw_seq.isdigit() and len(raw_seq) <= T.MAX_INT_DIGITS:
        return raw_seq
    return None


def _shown(raw: bytes | None) -> str:
    """Peer bytes for a log line: any byte value decodes (latin-1); at most 40 of them."""
    if not raw:
        return "?"
    return raw[:40].decode("latin-1") + ("..." if len(raw) > 40 else "")


_MSG_NAMES = {
    MsgType.HEARTBEAT: "Heartbeat",
    MsgType.TEST_REQUEST: "TestRequest",
    MsgType.RESEND_REQUEST: "ResendRequest",
    MsgType.REJECT: "Reject",
    MsgType.SEQUENCE_RESET: "SequenceReset",
    MsgType.LOGOUT: "Logout",
    MsgType.LOGON: "Logon",
}

_HANDLERS = {
    MsgType.LOGON: Session._next_logon,
    MsgType.HEARTBEAT: Session._next_heartbeat,
    MsgType.TEST_REQUEST: Session._next_test_request,
    MsgType.RESEND_REQUEST: Session._next_resend_request,
    MsgType.REJECT: Session._next_reject,
    MsgType.SEQUENCE_RESET: Session._next_sequence_reset,
    MsgType.LOGOUT: Session._next_logout,
}
