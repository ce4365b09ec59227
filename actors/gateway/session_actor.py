"""One FIX session as one OS process: ``fixmesh session --config T.yaml --session NAME``.

The actor owns everything with side effects for its session: the FIX TCP
connection (listening as an acceptor, connecting and reconnecting as an
initiator), the store, the timers and its end of the bus. It makes no
protocol decision: the session core does. It:

* publishes every state change and session event on ``session.<name>.*``;
* forwards each application message from its counterparty to its paired
  peer (``actors.gateway.forwarding``) and counts it processed only when the peer
  acknowledges, so a crash of either side neither loses nor repeats it;
* sends what its peer forwards, re-stamped with its own header, storing it
  before acknowledging; an initiator (a Driven) does so only while its
  session is logged on, and holds forwards unacknowledged until then, so
  each goes on the wire as a new message after the Logon
  (``actors.gateway.forwarding.Waiting``);
* with a ``throttle:``, limits the application messages of either direction:
  rejects or delays what its counterparty sends over the limit, and sends
  what its peer forwards no faster than the limit, acknowledging each only
  once sent (``actors.gateway.throttling``);
* obeys commands (``connect``, ``disconnect``, ``logout``, ``reset_seqnums``,
  ``set_seqnums``, ``switch_connection``, ``answer_logon``, ``status``) from
  the bus.

Crash-only: an unexpected exception is logged and the process exits non-zero
for supervisord to restart it; SIGTERM logs out and exits 0.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, assert_never

from actors.fix import tags as T
from actors.fix.codec import GarbledMessage, parse
from actors.fix.config import Role
from actors.fix.hooks import LogonHold, SessionHooks
from actors.fix.message import Message
from actors.fix.orders import BUSINESS_MESSAGE_REJECT, CL_ORD_ID
from actors.fix.outputs import Output, PeerRejected, SessionEvent, StateChanged, Withheld
from actors.fix.states import OFFLINE, SessionState
from actors.fix.timefmt import Instant, parse_utc_timestamp
from actors.gateway.bus import BusClient, Outcome
from actors.gateway.credentials import REFUSAL_TEXT, Credentials, Failure
from actors.gateway.forwarding import (
    Acceptance,
    Chain,
    Early,
    Forward,
    Journal,
    Origin,
    Verdict,
    Waiting,
    forward_sent_as,
    refer_to_origin,
)
from actors.gateway.program import start, topology_parser
from actors.gateway.rejection import refused_text, rejection_for
from actors.gateway.stats import STATS_INTERVAL_S, Every, SessionCounters
from actors.gateway.throttling import Delayed, Rejected, SessionThrottles
from actors.gateway.throttling import Verdict as Throttled
from actors.gateway.topology import ConfigError, SessionSettings, Topology, resolve_credentials
from actors.gateway.trace import OrderTrace
from actors.gateway.vocabulary import (
    REJECTED,
    AnswerLogon,
    Connect,
    Disconnect,
    LogonRefusedEvent,
    Logout,
    Malformed,
    Refused,
    RejectedEvent,
    ResetSeqNums,
    SessionEventBody,
    SessionStats,
    SetSeqNums,
    StateEvent,
    Status,
    StatusReply,
    SwitchConnection,
    SwitchEvent,
    logon_refused_topic,
    parse_command,
    rejected_topic,
    session_event_topic,
    state_topic,
    stats_topic,
    switch_topic,
)
from actors.shell import clock
from actors.shell.admission import Admission
from actors.shell.disk_wait import open_when_writable
from actors.shell.driver import SessionDriver
from actors.shell.handoff import handoff_path
from actors.shell.host import AcceptorSpec, HostSpec, InitiatorSpec, SessionHost, SessionSpec
from actors.shell.initiator import Initiator
from actors.shell.schedule import Schedule
from actors.shell.throttle import Admission as ThrottleAdmission
from actors.shell.tls_settings import TlsConfigError
from actors.store import Durability, MessageStore, StoreError, StoreWriteError
from broker import protocol
from broker.protocol import Envelope

if TYPE_CHECKING:
    import zmq

log = logging.getLogger("fixmesh.actor")

#: Header fields the peer sets itself; every other header field travels with the message.
_RESTAMPED = frozenset({T.BEGIN_STRING, T.BODY_LENGTH, T.MSG_TYPE, T.MSG_SEQ_NUM, T.POSS_DUP_FLAG,
                        T.SENDER_COMP_ID, T.SENDING_TIME, T.TARGET_COMP_ID, T.ORIG_SENDING_TIME, T.CHECKSUM})
#: How long an ack to the peer waits for a forward going back to carry it (see ``actors.gateway.bus``):
#: an order's ack rides on its ExecutionReport, the report's on the pair's next order. An ack that
#: travels alone costs this actor a turn, the broker a hop and the peer a wake-up: at a few orders a
#: second per pair that was about 14% of an order's CPU (docs/performance.md). The wait only delays the
#: moment the sender may forget a deliver; a quarter of its first retransmit (2 s), it never causes one.
ACK_DELAY_S = 0.5
#: How often the forwarding journal's file is synced and checkpointed (``Journal.checkpoint``): a restart
#: reads the store's notes of at most about this long.
JOURNAL_CHECKPOINT_S = 5.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """A Logon refused for its credentials: which check failed, when, and from which address (if known)."""

    failure: Failure
    at: Instant
    address: str | None


class ActorHooks(SessionHooks):
    """The application decisions a session actor makes for its session core.

    * An acceptor with ``credentials`` refuses a Logon without the configured
      Username(553) or with a Password(554) that does not match the hash,
      first of all and with the same text whatever failed (``REFUSAL_TEXT``):
      a stranger learns nothing, not even the schedule. Which check failed is
      counted (``logon_failures``) and kept for the actor to log and publish
      (``take_refusals``): a hook decides, it does not act.
    * An acceptor refuses a Logon outside its schedule, with a Logout that
      says when it is open.
    * A Handler with ``logon_waits_for_venue`` holds every Logon the
      schedule lets in: the coordinator connects the Driven and answers it
      (``answer_logon``) once the venue session is up or has failed; the
      session's logon timeout bounds the wait.
    * With message rejecting enabled, a stored application message older
      than its time-to-live is withheld when the counterparty asks for it:
      the session gap-fills it and reports it (``Withheld``), and the actor
      sends it back to its origin as rejected (``SessionActor.on_output``).
    """

    def __init__(self, settings: SessionSettings, credentials: Credentials | None = None,
                 peer_ip: Callable[[], str | None] = lambda: None) -> None:
        self.settings = settings
        self.credentials = credentials
        self._peer_ip = peer_ip
        #: Logons refused for their credentials since the process started.
        self.logon_failures = 0
        self._refusals: list[Refusal] = []

    def take_refusals(self) -> list[Refusal]:
        """The credential refusals since the last call, oldest first."""
        refusals, self._refusals = self._refusals, []
        return refusals

    def on_logon_request(self, logon: Message, now: Instant) -> str | LogonHold | None:
        if self.credentials is not None:
            failure = self.credentials.check(logon.get(T.USERNAME), logon.get(T.PASSWORD))
            if failure is not None:
                self.logon_failures += 1
                self._refusals.append(Refusal(failure, now, self._peer_ip()))
                return REFUSAL_TEXT
        schedule = self.settings.schedule
        if not schedule.is_open(now.utc_ns):
            return f"Logon refused: outside the session schedule ({schedule.describe()})"
        if self.settings.logon_waits_for_venue:
            return VENUE_HOLD
        return None

    def on_resend(self, message: Message, now: Instant) -> str | None:
        settings = self.settings
        if not settings.enable_message_rejecting:
            return None
        sent = parse_utc_timestamp(message.get(T.SENDING_TIME) or b"")
        age_s = (now.utc_ns - sent) / 1e9 if sent is not None else 0.0
        if age_s <= settings.message_ttl_s:
            return None
        return expired_text(settings, age_s)


#: The hold of a Handler with ``logon_waits_for_venue``; unanswered, the user reads
#: "venue session unavailable: no answer from the venue within N s" (N: the Handler's logon_timeout).
VENUE_HOLD = LogonHold("venue session unavailable: no answer from the venue")


def expired_text(settings: SessionSettings, waited_s: float | None) -> str:
    """What the user reads about a message that outlived its time-to-live (``waited_s`` when known)."""
    waited = "" if waited_s is None else f"; the message waited {waited_s:.1f} s"
    return (f"not delivered: {settings.config.target_comp_id} was not reachable within the message "
            f"time-to-live ({settings.message_ttl_s:g} s{waited})")


class ScheduleGuard:
    """Logs the session out when its window closes (a timer source of the loop).

    It computes the next change of the schedule once per wake-up, not on
    every turn of the loop: the loop asks every timer source for its
    deadline each time round.
    """

    def __init__(self, driver: SessionDriver, schedule: Schedule) -> None:
        self.driver = driver
        self.schedule = schedule
        self._deadline = clock.now().mono_s

    def next_deadline(self) -> float | None:
        return self._deadline

    def on_timer(self) -> None:
        now = clock.now()
        if self.driver.session.is_logged_on and not self.schedule.is_open(now.utc_ns):
            self.driver.logout(f"end of the session window ({self.schedule.describe()})")
        change = self.schedule.next_change(now.utc_ns)
        wait_s = 60.0 if change is None else min(60.0, max(0.05, (change - now.utc_ns) / 1e9))
        self._deadline = now.mono_s + wait_s


class SessionActor:
    """The gateway's application around one hosted session (``actors.shell.host``): bus, forwarding, commands."""

    def __init__(self, topology: Topology, settings: SessionSettings) -> None:
        self.settings = settings
        self.name = settings.name
        # First: a missing password variable or file stops the start before any port is bound.
        credentials = resolve_credentials(topology, settings)
        # So does a missing or unreadable bus key (a bus with keys: the key named after the session).
        bus_keys = topology.bus_keys(self.name)
        self.host = SessionHost(host_spec(topology, settings), on_closed=self._on_closed, on_switch=self._on_switch)
        self.loop = self.host.loop
        spec = session_spec(settings)
        # A store whose file system is full or read-only: wait here until it takes writes (docs/operations.md).
        self.store, self.journal, self.acceptance = open_when_writable(
            functools.partial(self._open_durable, spec), settings.journal_path.parent, self.name)
        #: The store sequence the journal's lines were written in; a reset of it rebases the journal.
        self._journal_epoch = self.store.creation_time_ns
        self.chain = Chain()
        self.reject_chain = Chain()
        #: Tells this process from the one before it (the coordinator notices restarts by it).
        self.incarnation = f"{os.getpid()}-{clock.now().utc_ns}"
        self.last_reason = "session process started"
        #: StateChanged outputs so far; state events and status replies carry it so that the
        #: coordinator can tell a stale report from a newer one (actors/gateway/pair_policy.py).
        self.state_changes = 0
        #: Logons, logouts, events, rejects, forward latency (``actors.gateway.stats``); the driver counts messages.
        self.counters = SessionCounters()
        #: Receipt times (UTC ns) of the forwards this bus batch sends, observed once it is written.
        self._forwarded: list[int] = []
        #: Opt-in timestamps of each order's steps (``FIXMESH_TRACE_DIR``); the batch's forwards, traced once written.
        self.trace = OrderTrace.from_environment(self.name)
        self._traced: list[str | None] = []
        self._switch_after_disconnect: str | None = None
        #: Forward ids awaiting the peer's ack -> incoming MsgSeqNum.
        self.awaiting: dict[str, int] = {}
        self._acked: list[int] = []
        #: Forwards the bus could not take yet (its outbox is bounded), oldest first.
        self.backlog: deque[tuple[str, str, dict[str, Any]]] = deque()
        self._backlog_warned = False
        #: An initiator (a Driven) sends forwards only while logged on; until then they wait here.
        self._holds = settings.config.role is Role.INITIATOR
        self.waiting: Waiting[Envelope] = Waiting(
            settings.message_ttl_s if settings.enable_message_rejecting and settings.message_ttl_s > 0 else None)
        self._waiting_warned = False
        #: Forwards that came before their predecessor (lost frames come back in any order): accepted as a run
        #: as soon as it is; ``_unblocked`` holds the next of that run while a batch is being judged.
        self.early: Early[Envelope] = Early()
        self._unblocked: list[tuple[Envelope, Forward]] = []
        self.expired_chain = Chain()
        #: The chain of the rejections of forwards the counterparty refused (``_return_refused``).
        self.refused_chain = Chain()
        #: Forwards of this batch judged past their time-to-live: journalled, rejected once the journal is synced.
        self._expired: list[tuple[Envelope, Forward, float]] = []
        #: Rejections of expired forwards awaiting their origin's ack -> the forward's envelope, acked then.
        self.rejecting: dict[str, Envelope] = {}
        #: Who may connect (allow_from) and who is locked out after refused Logons; acceptors only.
        self.admission = Admission(settings.admission) if settings.admission is not None else None
        self.hooks = ActorHooks(settings, credentials, peer_ip=self._peer_ip)
        self.driver = self.host.add_session(spec, self, hooks=self.hooks, store=self.store,
                                            admit=self._admit if self.admission is not None else None)
        if self.trace is not None:
            self.driver.before_write = self._trace_sent
        if not settings.schedule.non_stop:
            self.loop.add_timer_source(ScheduleGuard(self.driver, settings.schedule))
        broker = topology.broker
        self.bus = BusClient(self.name, broker.router, broker.xsub, xpub_endpoint=broker.xpub, on_ack=self._on_ack,
                             ack_delay_s=ACK_DELAY_S, watch=[settings.peer] if settings.peer else [], curve=bus_keys,
                             backup=broker.backup_address)
        for sock in self.bus.sockets:
            self.loop.add_reader(sock, functools.partial(self._on_bus, sock))
        self.loop.add_timer_source(self.bus)
        # The turn's forwards leave at its end, or before a store sync would make them wait on the disk.
        self.loop.at_turn_end(self.bus.send_gathered)
        self.driver.before_sync = self.bus.send_gathered
        self.loop.add_timer_source(Every(STATS_INTERVAL_S, self._publish_stats))
        self.loop.add_timer_source(Every(JOURNAL_CHECKPOINT_S, self._checkpoint_journal))
        #: Rate limits on application messages (``throttle:``, ``actors.gateway.throttling``); None: none.
        self.throttles: SessionThrottles[tuple[Envelope, Forward]] | None = None
        if settings.throttle is not None:
            self.throttles = SessionThrottles(
                self.name, settings.throttle, settings.config, publish=self.bus.publish,
                count_event=self.counters.count_event, on_delayed=self._forward_delayed,
                on_released=self._send_throttled, on_expired=self._expire_throttled, on_paused=self._hold_throttled,
                out_paused=self._holding)
            self.loop.add_timer_source(self.throttles)
        if self._holds:
            self.loop.add_timer_source(_ExpiryTimer(self.waiting, self._expire_waiting))
        log.info("%s: %s %s->%s on %s:%d, next out %d, next in %d", self.name, settings.role,
                 settings.config.sender_comp_id, settings.config.target_comp_id, settings.host, settings.port,
                 self.store.next_sender_seq, self.store.next_target_seq)
        # Binds the acceptor (an OSError here means the port is taken) or, with connect_on_start, connects.
        self.host.start()

    # ---------------------------------------------------------------- set-up

    def _open_durable(self, spec: SessionSpec) -> tuple[MessageStore, Journal, Acceptance]:
        """The store, the forwarding journal beside it, and what the two say was accepted; none left open on failure.

        The journal is read against the store's own numbers, before the policy's start numbers may move them
        back (a line counts only below the store's next outgoing number: ``Journal.load``)."""
        store = self.host.open_store(spec, start_numbers=False)
        journal = None
        try:
            journal = Journal(self.settings.journal_path,
                              fsync=self.settings.store.durability is not Durability.OS_BUFFER)
            acceptance = journal.load(store)
            self.host.apply_start_numbers(spec, store)
            return store, journal, acceptance
        except BaseException:
            if journal is not None:
                journal.close()  # without a checkpoint: nothing to write
            with contextlib.suppress(StoreError):
                store.close()
            raise

    @property
    def initiator(self) -> Initiator | None:
        """The connector of an initiator session, once it has been told to connect."""
        return self.host.initiator

    def connect(self) -> None:
        """Initiator: start connecting (and reconnecting) to the counterparty."""
        self.host.connect()

    def _on_closed(self) -> None:
        """The session is down (its last state published): close the bus and the journal."""
        self.bus.close()
        try:
            self.journal.close(self.store.creation_time_ns, self.store.next_sender_seq - 1)
        except StoreWriteError as exc:  # the store's notes hold what the journal could not write
            log.warning("%s: the forwarding journal was not closed cleanly (%s); the next start recovers its "
                        "lines from the store", self.name, exc)
        if self.trace is not None:
            self.trace.close()

    # ------------------------------------------------ the driver's application

    def on_message(self, driver: SessionDriver, message: Message) -> bool | None:
        """An application message from our counterparty: forward it to the peer (throttle permitting)."""
        if self.trace is not None:
            self.trace.mark("fix_in", message.get(CL_ORD_ID))
        if self.throttles is None:
            return self._forward(message, clock.now().utc_ns)
        now = clock.now()
        throttled = self.throttles.inbound(message, now, self.store.creation_time_ns)
        if isinstance(throttled, Rejected):
            driver.send(throttled.msg_type, throttled.body)
            return True  # processed: its MsgSeqNum is consumed, nothing goes to the peer
        if throttled is Throttled.DELAYED:
            return False  # unprocessed until ``_forward_delayed`` forwards it and the peer acknowledges
        return self._forward(message, now.utc_ns)

    def _forward_delayed(self, delayed: list[Delayed]) -> None:
        """Inbound messages whose throttle wait is over go to the peer now, in the order received."""
        for d in delayed:
            if self._forward(d.message, d.received_ns, d.epoch):
                self.driver.processed(d.message.seq_num or 0)

    def _forward(self, message: Message, received_ns: int, epoch: int | None = None) -> bool:
        """Forward ``message`` to the peer; False: processed once the peer acknowledges it.

        ``epoch``: the store's sequence epoch when it arrived, if not now's (``_forward_delayed``).
        """
        seq = message.seq_num or 0
        peer = self.settings.peer
        if peer is None:
            log.warning("%s: no peer to forward %s %d to", self.name, message.msg_type, seq)
            return True
        header = [(t, v) for t, v in message.header_fields() if t not in _RESTAMPED]
        if epoch is None:
            epoch = self.store.creation_time_ns  # a sequence reset starts a new epoch
        origin = Origin(self.name, epoch)
        body = message.body_fields()
        if message.msg_type == BUSINESS_MESSAGE_REJECT:
            body = refer_to_origin(self.store, body)
        forward = Forward(origin, seq, self.chain.link(epoch, seq), message.msg_type, header, body,
                          received_ns=received_ns)
        forward_id = origin.message_id(seq)
        self.awaiting[forward_id] = seq
        self.backlog.append((peer, forward_id, forward.to_wire()))
        if self.trace is not None:
            self.trace.mark("bus_out", message.get(CL_ORD_ID))  # before: the peer may read it before the send returns
        self._drain_backlog()
        return False

    def on_message_rejected(self, message: Message, text: str) -> None:
        """Send a message the session withheld (it outlived its time-to-live) back to its origin as rejected."""
        seq = message.seq_num or 0
        self._announce_rejection(message, seq, text)
        peer = self.settings.peer
        if peer is None:
            return
        epoch = self.store.creation_time_ns
        self._forward_rejection(peer, message, seq, text, Origin(f"{self.name}.rejected", epoch),
                                self.reject_chain.link(epoch, seq))

    def _announce_rejection(self, message: Message, seq: int, text: str) -> None:
        """Log and publish (``session.<name>.rejected``) a message that goes back to its origin as rejected."""
        log.warning("%s: %s %d %s", self.name, message.msg_type, seq, text)
        self.counters.count_event(REJECTED)
        self.bus.publish(rejected_topic(self.name),
                         RejectedEvent(message.msg_type, seq, text, message.get_str(CL_ORD_ID) or "").to_body())

    def _forward_rejection(self, peer: str, message: Message, seq: int, text: str, origin: Origin,
                           prev: int | None) -> str:
        """Deliver the user's rejection of ``message`` to ``peer`` as a forward of ``origin``; returns its id."""
        msg_type, body = rejection_for(message, text, self.incarnation)
        rejection_id = origin.message_id(seq)
        self.backlog.append((peer, rejection_id, Forward(origin, seq, prev, msg_type, [], body).to_wire()))
        self._drain_backlog()
        return rejection_id

    def _return_refused(self, refused: PeerRejected) -> None:
        """The venue refused a message this Driven forwarded (a session-level Reject): the user whose order it was
        gets a rejection (an ExecutionReport, OrdStatus=Rejected, for an order), as for one that outlived its
        time-to-live, instead of waiting for an answer the venue will never send.

        The store's note of the refused message names the forward (``forward_sent_as``); a message of the
        session's own (no note) or one gone from the store is only logged, as before.
        """
        peer = self.settings.peer
        noted = forward_sent_as(self.store, refused.ref_seq)
        stored = self.store.get_outgoing(refused.ref_seq, refused.ref_seq)
        if peer is None or noted is None or not stored:
            return
        try:
            message = parse(stored[0][1])
        except GarbledMessage:
            return
        origin, seq = noted
        text = refused_text(self.settings.config.target_comp_id, refused.text, refused.ref_tag, refused.reason)
        self._announce_rejection(message, seq, text)
        self._forward_rejection(peer, message, seq, text, Origin(f"{self.name}.refused", origin.epoch),
                                self.refused_chain.link(origin.epoch, seq))

    def _peer_ip(self) -> str | None:
        address = self.driver.remote_address
        return address[0] if address is not None else None

    def _admit(self, ip: str) -> str | None:
        """The acceptor's check of a new connection's address: the allowlist, then the lock-out."""
        assert self.admission is not None
        return self.admission.refusal(ip, clock.monotonic_s())

    def _report_refusals(self) -> None:
        """Log and publish the Logons the hook refused for their credentials, so a monitor sees guessing.

        Each counts against its address (``actors.shell.admission``); the one that
        reaches the limit locks the address out, and the log and the event say so.
        """
        refusals = self.hooks.take_refusals()
        for n, refusal in enumerate(refusals, self.hooks.logon_failures - len(refusals) + 1):
            address = refusal.address or ""
            locked_s = 0.0
            if self.admission is not None and refusal.address is not None \
                    and self.admission.failed(refusal.address, refusal.at.mono_s):
                locked_s = self.admission.rules.lockout_s
            # The reason, never the password (nor the offered username: users type passwords into it).
            log.warning("%s: Logon refused: %s from %s (%d refused so far)%s", self.name, refusal.failure.value,
                        address or "an unknown address", n,
                        f"; {address} locked out for {locked_s:g} s" if locked_s else "")
            self.bus.publish(logon_refused_topic(self.name),
                             LogonRefusedEvent(refusal.failure.name.lower(), n, refusal.at.utc_ns, address,
                                               locked_s).to_body())

    def _drain_backlog(self) -> None:
        """Hand waiting forwards to the bus, in order, while its outbox has room."""
        while self.backlog:
            peer, forward_id, body = self.backlog[0]
            if self.bus.gather(peer, forward_id, body) is Outcome.FULL:
                if not self._backlog_warned:
                    log.warning("%s: bus outbox full (peer %s not acknowledging); %d forward(s) wait in order",
                                self.name, peer, len(self.backlog))
                    self._backlog_warned = True
                return
            self.backlog.popleft()
        self._backlog_warned = False

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        if isinstance(output, StateChanged):
            self.counters.on_state(output)
            self._report_refusals()  # a refused Logon ends in a state change: report it first, as it came first
            self.last_reason = output.reason
            self.state_changes += 1
            if output.new in OFFLINE and self._switch_after_disconnect is not None:
                why, self._switch_after_disconnect = self._switch_after_disconnect, None
                self.loop.call_soon(lambda: self._switch_now(why))
            self.bus.publish(state_topic(self.name),
                             StateEvent.of(output, self.incarnation, self.state_changes).to_body())
            if output.new is SessionState.CONNECTED and self.admission is not None \
                    and (ip := self._peer_ip()) is not None:
                self.admission.succeeded(ip)
            if output.new is SessionState.CONNECTED and self.waiting:
                # After the batch that logged on (the Logon reply and whatever came with it).
                self.loop.call_soon(self._release_waiting)
        elif isinstance(output, SessionEvent):
            if output.kind == "seqreset" and self.store.creation_time_ns != self._journal_epoch:
                self._rebase_journal()  # the store's sequence was reset (the event follows the reset)
            self.counters.on_event(output)
            self.bus.publish(session_event_topic(self.name, output.kind), SessionEventBody.of(output).to_body())
        elif isinstance(output, Withheld):
            self.on_message_rejected(output.message, output.reason)
        elif isinstance(output, PeerRejected) and self._holds:
            self._return_refused(output)

    # ------------------------------------------------------------------- bus

    def _on_bus(self, sock: zmq.Socket[bytes]) -> None:
        """One bus batch from ``sock``: forwards are stored and synced together, then acknowledged (group commit)."""
        if self.waiting and not self._holding():
            self._release_waiting()  # what waited goes before what arrives now
        acks: list[Envelope] = []
        with self.driver.batch():
            for env in self.bus.handle_readable(sock):
                try:
                    if env.kind == protocol.DELIVER:
                        if self._holding():
                            self._hold(env)
                        elif self._on_forward(env, Forward.from_wire(env.body)):
                            acks.append(env)
                    elif env.kind == protocol.COMMAND:
                        self.bus.reply(env, self._on_command(env.body))
                    elif env.kind == protocol.REPLY:
                        log.debug("%s: reply %s ignored", self.name, env.corr)
                except (ValueError, TypeError) as exc:
                    log.warning("%s: dropped %s from %s: %s", self.name, env.kind, env.src, exc)
            self._accept_unblocked(acks)
        if self._forwarded:
            self._observe_forwarded()
        for env in acks:
            self.bus.ack(env)
        self._flush_expired()
        self._process_acked()
        self._drain_backlog()

    def _on_forward(self, env: Envelope, forward: Forward, *, admitted: bool = False) -> bool:
        """Judge one forward; True when it is to be acknowledged (accepted or a duplicate).

        ``admitted``: the outbound throttle has let it through already (it waited in its queue). Like
        ``Waiting``, the throttle's queue keeps forwards in arrival order without judging their chain (each
        one's predecessor may still be waiting in it); they are judged when they leave it.
        """
        if self.trace is not None and not admitted:
            self.trace.mark("bus_in", _cl_ord_id(forward))
        verdict = self.acceptance.judge(forward)
        if verdict is Verdict.OUT_OF_ORDER and env.id in self.early:
            return False  # a repeat of one kept: it goes when its predecessor comes
        if self.throttles is not None and not admitted and verdict is not Verdict.DUPLICATE:
            now = clock.now()
            admission = self.throttles.outbound(env.id, forward.msg_type, (env, forward), now,
                                                self._expires_s(forward, now))
            if admission is not ThrottleAdmission.PASS:
                return False  # waits for the throttle, or stays with its sender: acknowledged once sent
        if verdict is Verdict.OUT_OF_ORDER:
            log.debug("%s: %s arrived before its predecessor %s; kept until it comes", self.name, env.id,
                      forward.prev)
            self.early.keep(env.id, forward, env)
            return False
        if verdict is Verdict.DUPLICATE and self.acceptance.was_rejected(forward):
            self._send_rejection(env, forward, expired_text(self.settings, None), repeat=True)
            return False  # acknowledged when its origin has the rejection
        if verdict is Verdict.ACCEPT:
            waited_s = self._outlived(forward)
            if waited_s is not None:
                self._reject_expired(env, forward, waited_s)
                return False  # acknowledged when its origin has the rejection
            # The message is stored with a note naming the forward: the batch's one store sync makes
            # both durable before the message is written (actors.gateway.forwarding, ``Journal``).
            out_seq = self.driver.send(forward.msg_type, forward.body, forward.header, note=Journal.note(forward))
            self.journal.record(forward, out_seq)
            self.acceptance.accept(forward)
            if self.early and (follower := self.early.after(forward.origin, forward.seq)) is not None:
                self._unblocked.append(follower)
            if forward.received_ns is not None:
                self._forwarded.append(forward.received_ns)
            if self.trace is not None:
                self._traced.append(_cl_ord_id(forward))
        return True

    def _waited_s(self, forward: Forward, now: Instant) -> float | None:
        """How long ``forward`` has waited since its origin received it; None when it can never be late
        (the callers apply the time-to-live, when there is one).

        A Driven's only (the venue must not get a late order): held for the Logon, queued by a throttle
        on either side, or slowed on the bus, the count is the same. A Handler delivers what the venue
        sent, however late; rejections carry no receipt time and are never late.
        """
        if not self._holds or forward.received_ns is None:
            return None
        return (now.utc_ns - forward.received_ns) / 1e9

    def _outlived(self, forward: Forward) -> float | None:
        """How long ``forward`` has waited, when that is past the time-to-live."""
        ttl_s, waited_s = self.waiting.ttl_s, self._waited_s(forward, clock.now())
        return waited_s if ttl_s is not None and waited_s is not None and waited_s > ttl_s else None

    def _expires_s(self, forward: Forward, now: Instant) -> float | None:
        """The monotonic time at which ``forward`` outlives its time-to-live (None: it never does)."""
        ttl_s, waited_s = self.waiting.ttl_s, self._waited_s(forward, now)
        return None if ttl_s is None or waited_s is None else now.mono_s + ttl_s - waited_s

    def _reject_expired(self, env: Envelope, forward: Forward, waited_s: float) -> None:
        """Decide, in the journal, that ``forward`` is rejected, never sent; ``_flush_expired`` tells its origin."""
        self.journal.record_rejected(forward)
        self.acceptance.reject(forward)
        self._expired.append((env, forward, waited_s))

    def _flush_expired(self) -> None:
        """The rejections decided in this batch go to their origins, once the decisions are durable."""
        if not self._expired:
            return
        self.journal.sync()
        expired, self._expired = self._expired, []
        for env, forward, waited_s in expired:
            self._send_rejection(env, forward, expired_text(self.settings, waited_s), repeat=False)

    def _send_throttled(self, items: list[tuple[Envelope, Forward]]) -> None:
        """Forwards whose outbound throttle wait is over: sent in one batch, then acknowledged."""
        self._send_batch(items, admitted=True)

    def _send_batch(self, items: list[tuple[Envelope, Forward]], admitted: bool = False) -> None:
        """Forwards sent in one batch (one store sync, one write), journalled, then acknowledged (as ``_on_bus``)."""
        acks: list[Envelope] = []
        with self.driver.batch():
            for env, forward in items:
                if self._on_forward(env, forward, admitted=admitted):
                    acks.append(env)
            self._accept_unblocked(acks)
        if self._forwarded:
            self._observe_forwarded()
        for env in acks:
            self.bus.ack(env)
        self._flush_expired()

    def _accept_unblocked(self, acks: list[Envelope]) -> None:
        """The forwards kept ahead of a predecessor this batch accepted: judged now, in the same batch, each
        freeing the next. They passed the outbound throttle before they were kept."""
        while self._unblocked:
            env, forward = self._unblocked.pop()
            if self._on_forward(env, forward, admitted=True):
                acks.append(env)

    def _hold_throttled(self, items: list[tuple[Envelope, Forward]]) -> None:
        """The session went offline while forwards waited for the throttle: they wait for the Logon instead."""
        for env, _ in items:
            self._hold(env)

    # ----------------------------------------------------- waiting for the Logon

    def _holding(self) -> bool:
        """True while forwards must wait: an initiator whose session is not logged on (CONNECTED)."""
        return self._holds and self.driver.session.state is not SessionState.CONNECTED

    def _hold(self, env: Envelope) -> None:
        """Keep a forward, unacknowledged, until the Logon; its sender's repeats cost a lookup."""
        if env.id in self.waiting:
            return
        forward = Forward.from_wire(env.body)
        if self.acceptance.judge(forward) is Verdict.DUPLICATE:
            # Settled before (sent or rejected): answer now, as when logged on, so the sender moves on.
            if self._on_forward(env, forward):
                self.bus.ack(env)
            return
        if not self.waiting.hold(env.id, forward, env, clock.now()):
            if not self._waiting_warned:
                log.warning("%s: %d forwards wait for the Logon, the most held; later ones stay with %s",
                            self.name, len(self.waiting), env.src)
                self._waiting_warned = True
            return
        if len(self.waiting) == 1:
            log.info("%s: not logged on (%s); forwards wait for the Logon", self.name,
                     self.driver.session.state.value)

    def _release_waiting(self) -> None:
        """Logged on: what waited goes out now as new messages, in order, in one batch (as ``_on_bus``)."""
        if not self.waiting or self._holding():
            return
        self._expire_waiting()  # a forward that outlived its time-to-live meanwhile is rejected, not sent
        held = self.waiting.release()
        self._waiting_warned = False
        self._send_batch([(h.item, h.forward) for h in held])
        if held:
            log.info("%s: logged on; %d forward(s) that waited sent as new messages", self.name, len(held))

    def _expire_waiting(self) -> None:
        """Held forwards that outlived the time-to-live go back to their origin as rejected, never sent."""
        now = clock.now()
        for h in self.waiting.expired(now):
            self._expire(h.item, h.forward, h.age_s(now))
        self._flush_expired()  # the decisions are durable before a rejection can reach the user

    def _expire_throttled(self, items: list[tuple[Envelope, Forward]]) -> None:
        """Forwards that outlived the time-to-live in the outbound throttle's queue: rejected when they
        expire, not when their turn would have come, and without using a slot of the throttle."""
        now = clock.now()
        for env, forward in items:
            self._expire(env, forward, self._waited_s(forward, now) or 0.0)
        self._flush_expired()

    def _expire(self, env: Envelope, forward: Forward, waited_s: float) -> None:
        """A waiting forward's time-to-live is over: rejected if it is new, answered if it is a duplicate."""
        verdict = self.acceptance.judge(forward)
        if verdict is Verdict.ACCEPT:
            self._reject_expired(env, forward, waited_s)
        elif verdict is Verdict.DUPLICATE and self._on_forward(env, forward):
            self.bus.ack(env)
        # OUT_OF_ORDER: dropped unacknowledged; its repeat waits again and expires at once.

    def _send_rejection(self, env: Envelope, forward: Forward, text: str, *, repeat: bool) -> None:
        """Send an expired forward back to its origin as rejected; the forward is acked once the origin has it.

        The rejection's origin is ``<name>.expired`` in the forward's own epoch and number, so its
        origin dedupes it like any forward. A repeat (the first rejection may have died with an
        earlier process) goes without ``prev`` and outside the chain: it may be one the origin has.
        """
        peer = self.settings.peer
        fields = [(T.MSG_TYPE, forward.msg_type.encode()), (T.MSG_SEQ_NUM, str(forward.seq).encode()),
                  *forward.body]
        message = Message(fields)
        if not repeat:
            self._announce_rejection(message, forward.seq, text)
        if peer is None or peer != env.src:
            self.bus.ack(env)  # nobody to tell (a misconfigured sender): settled by the journal line alone
            return
        epoch = forward.origin.epoch
        prev = None if repeat else self.expired_chain.link(epoch, forward.seq)
        rejection_id = self._forward_rejection(peer, message, forward.seq, text, Origin(f"{self.name}.expired", epoch),
                                               prev)
        self.rejecting[rejection_id] = env

    def _checkpoint_journal(self) -> None:
        """Sync the forwarding journal's file now and then, so a restart reads few of the store's notes."""
        self.journal.checkpoint(self.store.creation_time_ns, self.store.next_sender_seq - 1)

    def _on_ack(self, forward_id: str) -> None:
        seq = self.awaiting.pop(forward_id, None)
        if seq is not None:
            self._acked.append(seq)
            return
        original = self.rejecting.pop(forward_id, None)
        if original is not None:
            self.bus.ack(original)  # the origin has the rejection: the expired forward is settled

    def _process_acked(self) -> None:
        """Forwards the peer acknowledged are processed: the store may move past them."""
        acked, self._acked = self._acked, []
        if acked:
            self.driver.processed(*acked)

    def _on_command(self, body: Any) -> dict[str, Any]:
        """Carry out one command; the reply is the session's status after it, or why it was refused."""
        command = parse_command(body)
        session = self.driver.session
        match command:
            case Malformed(error=error):
                return Refused(error).to_body()
            case Status():
                pass
            case Connect():
                if self.settings.config.role is not Role.INITIATOR:
                    return Refused(f"{self.name} is an acceptor; it cannot connect").to_body()
                self.connect()
            case Logout(text=text):
                self._stop_reconnecting()
                self.driver.logout(text or None)
            case Disconnect(text=text):
                self._stop_reconnecting()
                if session.is_logged_on:
                    self.driver.logout(text or None)
                else:
                    self.driver.disconnect(text or "disconnect command")
            case SwitchConnection(text=text):
                return self.switch_connection(text or "switch_connection command").to_body()
            case AnswerLogon(text=text):
                if not session.logon_held:
                    return Refused(f"{self.name} holds no Logon (state {session.state.value})").to_body()
                self.driver.answer_logon(text or None)
            case ResetSeqNums():
                if session.state not in OFFLINE:
                    return Refused("disconnect the session before resetting its sequence numbers").to_body()
                self.driver.reset_sequence_numbers("reset_seqnums command")
            case SetSeqNums(next_sender=sender, next_target=target):
                refusal = self._seqnums_refusal(sender, target)
                if refusal is not None:
                    return Refused(refusal).to_body()
                lowered = sender is not None and sender < self.store.next_sender_seq
                self.driver.set_sequence_numbers(sender, target)
                if lowered:
                    self._rebase_journal()
            case _:
                assert_never(command)
        return self.status().to_body()

    def _rebase_journal(self) -> None:
        """The store's outgoing numbers moved back: the journal keeps what was accepted (``Journal.rebase``)."""
        self.journal.rebase(self.acceptance, self.store.creation_time_ns, self.store.next_sender_seq - 1)
        self._journal_epoch = self.store.creation_time_ns

    def _seqnums_refusal(self, sender: int | None, target: int | None) -> str | None:
        """Why ``set_seqnums`` may not change these numbers now; None when it may.

        Offline, any number goes: it is agreed with the counterparty for the next Logon. While connected,
        only a higher next outgoing number: the peer asks for the gap and is answered with a gap fill. A
        lower one would send numbers the peer has had (it logs out, "MsgSeqNum too low"), and a changed
        expected number makes the peer's next message a gap or "too low" in the middle of the session.
        """
        session = self.driver.session
        if session.state in OFFLINE:
            return None
        if target is not None:
            return (f"{self.name} is {session.state.value}: the next expected number (--next-target) is set only "
                    f"while the session is disconnected; disconnect it first")
        if sender is not None and sender < session.next_sender:
            return (f"{self.name} is {session.state.value}: next sender {sender} is below the next number it "
                    f"would send ({session.next_sender}), which would send numbers the peer has had; while "
                    f"connected it may only go up (the peer asks for the gap and gets a gap fill); disconnect "
                    f"the session first to lower it")
        return None

    def switch_connection(self, why: str) -> StatusReply | Refused:
        """Move an initiator to its other connection now: log out first when logged on."""
        if self.initiator is None or len(self.initiator.addresses) < 2:
            return Refused(f"{self.name} has no backup connection configured")
        if self.driver.connected:
            self._switch_after_disconnect = why
            self.driver.logout(f"switching connection: {why}")
        else:
            self._switch_now(why)
        return self.status()

    def _switch_now(self, why: str) -> None:
        assert self.initiator is not None
        self.initiator.switch(why)
        self.initiator.reconnect_now()

    def _on_switch(self, old: str, new: str, why: str) -> None:
        """Every switch is an event; without KeepConnectionState the new connection starts afresh."""
        self.bus.publish(switch_topic(self.name), SwitchEvent(old, new, why).to_body())
        if not self.settings.keep_connection_state:
            self.driver.reset_sequence_numbers(f"switch to {new} without KeepConnectionState")

    def _stop_reconnecting(self) -> None:
        self.host.stop_connecting()

    def status(self) -> StatusReply:
        """Where the session stands: its core's own report and what this actor adds to it."""
        session = self.driver.session
        return StatusReply(session.state, self.name, self.settings.role, os.getpid(), self.driver.connected,
                           len(self.awaiting), self.incarnation, self.last_reason, self.state_changes,
                           session.status(), logon_failures=self.hooks.logon_failures, stats=self.stats())

    def stats(self) -> SessionStats:
        """The session's counters now (``actors.gateway.stats``)."""
        return self.counters.reading(
            clock.now(), self.driver, role=self.settings.role, peer=self.settings.peer or "",
            incarnation=self.incarnation, pid=os.getpid(), logon_failures=self.hooks.logon_failures,
            queues={"outbox": self.bus.pending, "backlog": len(self.backlog), "held": len(self.waiting),
                    **(self.throttles.depths() if self.throttles is not None else {})},
            tls_expires_s=self.host.certificates.earliest_s if self.host.certificates is not None else None)

    def _publish_stats(self) -> None:
        self.bus.publish(stats_topic(self.name), self.stats().to_body())

    def _trace_sent(self) -> None:
        """The forwards of the batch are durable and about to be written: ``fix_out`` (the driver calls it)."""
        assert self.trace is not None
        for cl_ord_id in self._traced:
            self.trace.mark("fix_out", cl_ord_id)
        self._traced.clear()

    def _observe_forwarded(self) -> None:
        """The forwards of the batch just written: their latency from the peer's receipt (one clock read)."""
        self.counters.forwarded(self._forwarded, clock.now().utc_ns)
        self._forwarded.clear()

    # --------------------------------------------------------------- running

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT, then the host's graceful stop (Logout, then close); exit code 0."""
        self.host.run()
        return 0


class _ExpiryTimer:
    """A timer source of the loop: the next held forward to outlive its time-to-live."""

    def __init__(self, waiting: Waiting[Envelope], on_expiry: Callable[[], None]) -> None:
        self.waiting = waiting
        self.on_expiry = on_expiry

    def next_deadline(self) -> float | None:
        return self.waiting.next_expiry_s()

    def on_timer(self) -> None:
        self.on_expiry()


def _cl_ord_id(forward: Forward) -> str | None:
    """The ClOrdID of a forwarded message, for the trace."""
    for tag, value in forward.body:
        if tag == CL_ORD_ID:
            return value.decode("ascii", "replace")
    return None


def host_spec(topology: Topology, settings: SessionSettings) -> HostSpec:
    """How the actor meets its counterparty: its own port, a shared one's hand-off, or by connecting.

    A Driven reconnects after a venue Logout too: to its user any end of the
    venue session is a loss to recover from within the reconnect budget, not
    a reason to log the user out at once (docs/coordinator.md).
    """
    s = settings
    if s.config.role is Role.ACCEPTOR:
        # A shared port belongs to the topology's listener, which hands this session its connections.
        handoff = handoff_path(topology.runtime_dir, s.name) if topology.port_is_shared(s.name) else None
        return HostSpec(listen=AcceptorSpec(s.host, s.port, handoff, tls=s.tls,
                                            max_pending_connections=s.max_pending_connections),
                        stop_text="session stopping")
    connect = InitiatorSpec(s.host, s.port, connect_timeout_s=s.connect_timeout_s,
                            reconnect_interval_s=s.reconnect_interval_s, max_tries=s.reconnect_max_tries or 0,
                            reconnect_after_logout=s.role == "driven",
                            backup=s.backup, auto_switch_to_backup=s.auto_switch_to_backup,
                            cyclic_switch=s.cyclic_switch_backup, on_start=s.connect_on_start, tls=s.tls)
    return HostSpec(connect=connect, stop_text="session stopping")


def session_spec(settings: SessionSettings) -> SessionSpec:
    """The session as the topology describes it."""
    s = settings
    return SessionSpec(s.name, s.config, s.store, policy=s.sequence, schedule=s.schedule,
                       app_dictionary=s.data_dictionary, transport_dictionary=s.transport_dictionary)


def main(argv: list[str] | None = None) -> int:
    parser = topology_parser("fixmesh session", __doc__)
    parser.add_argument("--session", required=True, help="the name of this session in the topology")
    started = start(parser, argv)
    if started is None:
        return 2
    args, topology = started
    try:
        settings = topology.session(args.session)
    except ConfigError as exc:
        print(f"fixmesh session: {exc}", file=sys.stderr)
        return 2
    try:
        actor = SessionActor(topology, settings)
    except ConfigError as exc:
        print(f"fixmesh session: {exc}", file=sys.stderr)
        return 2
    except TlsConfigError as exc:  # a certificate, key or CA file that cannot be used, read at start
        print(f"fixmesh session: {topology.path}: sessions.{args.session}.{exc}", file=sys.stderr)
        return 2
    except StoreError as exc:  # locked by another process, damaged, another session's, not a folder
        print(f"fixmesh session: {topology.path}: sessions.{args.session}.store: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        log.error("%s: cannot start: %s (is another process using %s:%d?)", args.session,
                  exc.strerror or exc, settings.host, settings.port)
        return 1
    # What start-up built (modules, the data dictionary, the topology) lives as long as the process: out
    # of the collector's sight, a full collection walks only what trading allocates (6-13 ms less each).
    gc.freeze()
    try:
        return actor.run()
    except StoreWriteError as exc:
        log.error("%s: stopping: %s. Nothing that was not stored was sent; supervisord starts the session "
                  "again, and it waits at start until the file system takes writes", args.session, exc)
        return 1
    except Exception:
        log.exception("%s: unexpected error; exiting for the supervisor to restart the session", args.session)
        return 1


if __name__ == "__main__":
    sys.exit(main())
