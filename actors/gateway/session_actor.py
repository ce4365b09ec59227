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
  before acknowledging;
* obeys commands (``connect``, ``disconnect``, ``logout``, ``reset_seqnums``,
  ``set_seqnums``, ``status``) from the bus.

Crash-only: an unexpected exception is logged and the process exits non-zero
for supervisord to restart it; SIGTERM logs out and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import deque
from typing import Any

from actors.fix import tags as T
from actors.fix.config import Role
from actors.fix.hooks import SessionHooks
from actors.fix.message import Message
from actors.fix.outputs import Output, SessionEvent, StateChanged
from actors.fix.session import Session
from actors.fix.states import OFFLINE
from actors.fix.timefmt import parse_utc_timestamp
from actors.gateway.bus import BusClient, Outcome
from actors.gateway.forwarding import Chain, Forward, Journal, Origin, Verdict
from actors.gateway.topology import ConfigError, SessionSettings, Topology, load_topology_or_report
from actors.shell import clock
from actors.shell.acceptor import Acceptor, DriverTarget, SessionKey
from actors.shell.dictionaries import load_dictionary
from actors.shell.driver import SessionDriver
from actors.shell.handoff import HandoffReceiver, handoff_path
from actors.shell.initiator import Initiator, Phase
from actors.shell.loop import Loop
from actors.shell.process import configure_logging, run_until_signalled
from actors.shell.schedule import Schedule
from actors.store import Durability, MessageStore, open_store
from broker import protocol
from broker.protocol import Envelope

log = logging.getLogger("fixmesh.actor")

#: Header fields the peer sets itself; every other header field travels with the message.
_RESTAMPED = frozenset({8, 9, 35, 34, 43, 49, 52, 56, 122, 10})
#: How long an ack to the peer waits for a forward going back to carry it (see ``actors.gateway.bus``):
#: an order's ack rides on its ExecutionReport, which in a gateway comes back within this time.
ACK_DELAY_S = 0.002
#: BusinessRejectReason 4: Application not available.
_APPLICATION_NOT_AVAILABLE = 4


class ActorHooks(SessionHooks):
    """The application decisions a session actor makes for its session core.

    * An acceptor refuses a Logon outside its schedule, with a Logout that
      says when it is open.
    * With message rejecting enabled, a stored application message older
      than its time-to-live is not resent when the counterparty asks for it:
      the session gap-fills it and the actor sends it back to its origin as
      rejected.
    """

    def __init__(self, actor: SessionActor) -> None:
        self.actor = actor

    def on_logon_request(self, logon: Message) -> str | None:
        schedule = self.actor.settings.schedule
        if schedule.is_open(clock.now().utc_ns):
            return None
        return f"Logon refused: outside the session schedule ({schedule.describe()})"

    def on_resend(self, message: Message) -> bool:
        settings = self.actor.settings
        if not settings.enable_message_rejecting:
            return True
        sent = parse_utc_timestamp(message.get(T.SENDING_TIME) or b"")
        age_s = (clock.now().utc_ns - sent) / 1e9 if sent is not None else 0.0
        if age_s <= settings.message_ttl_s:
            return True
        self.actor.on_message_rejected(message, age_s)
        return False


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
    def __init__(self, topology: Topology, settings: SessionSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.loop = Loop()
        self.store = self._open_store()
        settings.sequence.start_numbers(self.store)
        self.journal = Journal(settings.store.path / f"{self.name}.forwarded",
                               fsync=settings.store.durability is not Durability.OS_BUFFER)
        self.acceptance = self.journal.load(self.store.next_sender_seq)
        self.chain = Chain()
        self.reject_chain = Chain()
        #: Tells this process from the one before it (the coordinator notices restarts by it).
        self.incarnation = f"{os.getpid()}-{clock.now().utc_ns}"
        self.last_reason = "session process started"
        #: StateChanged outputs so far; state events and status replies carry it so that the
        #: coordinator can tell a stale report from a newer one (actors/gateway/pair_policy.py).
        self.state_changes = 0
        self._switch_after_disconnect: str | None = None
        #: Forward ids awaiting the peer's ack -> incoming MsgSeqNum.
        self.awaiting: dict[str, int] = {}
        self._acked: list[int] = []
        self._batched_sends = 0
        #: Forwards the bus could not take yet (its outbox is bounded), oldest first.
        self.backlog: deque[tuple[str, str, dict[str, Any]]] = deque()
        self._backlog_warned = False
        self.driver = SessionDriver(self._session(), self.store, self, name=self.name, policy=settings.sequence,
                                    schedule=settings.schedule)
        self.loop.add_timer_source(self.driver)
        if not settings.schedule.non_stop:
            self.loop.add_timer_source(ScheduleGuard(self.driver, settings.schedule))
        broker = topology.broker
        self.bus = BusClient(self.name, broker.router, broker.xsub, xpub_endpoint=broker.xpub, on_ack=self._on_ack,
                             ack_delay_s=ACK_DELAY_S, watch=[settings.peer] if settings.peer else [])
        for sock in self.bus.sockets:
            self.loop.add_reader(sock, self._on_bus)
        self.loop.add_timer_source(self.bus)
        self.acceptor: Acceptor | None = None
        self.initiator: Initiator | None = None
        self.handoff: HandoffReceiver | None = None
        if settings.config.role is Role.ACCEPTOR and topology.port_is_shared(self.name):
            # The topology's listener owns the shared port and hands this session its connections.
            self.handoff = HandoffReceiver(self.loop, handoff_path(topology.runtime_dir, self.name),
                                           DriverTarget(self.loop, self.driver))
        elif settings.config.role is Role.ACCEPTOR:
            self.acceptor = Acceptor(self.loop, settings.host, settings.port, self._lookup,
                                     qualifier_tag=settings.config.qualifier_tag,
                                     logon_timeout_s=settings.config.logon_timeout_s)
        log.info("%s: %s %s->%s on %s:%d, next out %d, next in %d", self.name, settings.role,
                 settings.config.sender_comp_id, settings.config.target_comp_id, settings.host, settings.port,
                 self.store.next_sender_seq, self.store.next_target_seq)

    # ---------------------------------------------------------------- set-up

    def _open_store(self) -> MessageStore:
        s = self.settings.store
        return open_store(s.type, s.path, self.name, now_ns=clock.now().utc_ns,
                          durability=s.durability, keep_incoming=s.keep_incoming)

    def _session(self) -> Session:
        s = self.settings
        app_dd = load_dictionary(str(s.data_dictionary)) if s.data_dictionary else None
        transport_dd = load_dictionary(str(s.transport_dictionary)) if s.transport_dictionary else app_dd
        return Session(s.config, next_sender=self.store.next_sender_seq, next_target=self.store.next_target_seq,
                       transport_dictionary=transport_dd, app_dictionary=app_dd,
                       hooks=ActorHooks(self))

    def _lookup(self, key: SessionKey) -> DriverTarget | None:
        c = self.settings.config
        wanted = SessionKey(c.begin_string, c.sender_comp_id, c.target_comp_id, c.session_qualifier)
        return DriverTarget(self.loop, self.driver) if key == wanted else None

    def connect(self) -> None:
        """Initiator: start connecting (and reconnecting) to the counterparty."""
        if self.initiator is not None:
            if self.initiator.phase is not Phase.STOPPED:
                return
            self.loop.remove_timer_source(self.initiator)
        s = self.settings
        self.initiator = Initiator(self.loop, self.driver, s.host, s.port, connect_timeout_s=s.connect_timeout_s,
                                   reconnect_interval_s=s.reconnect_interval_s, max_tries=s.reconnect_max_tries,
                                   backup=s.backup, auto_switch_to_backup=s.auto_switch_to_backup,
                                   cyclic_switch=s.cyclic_switch_backup, on_switch=self._on_switch)
        self.loop.add_timer_source(self.initiator)
        self.initiator.start()

    # ------------------------------------------------ the driver's application

    def on_message(self, driver: SessionDriver, message: Message) -> bool | None:
        """An application message from our counterparty: forward it to the peer."""
        seq = message.seq_num or 0
        peer = self.settings.peer
        if peer is None:
            log.warning("%s: no peer to forward %s %d to", self.name, message.msg_type, seq)
            return True
        header = [(t, v) for t, v in message.header_fields() if t not in _RESTAMPED]
        epoch = self.store.creation_time_ns  # a sequence reset starts a new epoch
        origin = Origin(self.name, epoch)
        forward = Forward(origin, seq, self.chain.link(epoch, seq), message.msg_type, header,
                          message.body_fields())
        forward_id = origin.message_id(seq)
        self.awaiting[forward_id] = seq
        self.backlog.append((peer, forward_id, forward.to_wire()))
        self._drain_backlog()
        return False

    def on_message_rejected(self, message: Message, age_s: float) -> None:
        """Send a message that outlived its time-to-live back to its origin as rejected."""
        seq = message.seq_num or 0
        text = (f"not delivered: {self.settings.config.target_comp_id} was not reachable within the message "
                f"time-to-live ({self.settings.message_ttl_s:g} s; the message waited {age_s:.1f} s)")
        log.warning("%s: %s %d %s", self.name, message.msg_type, seq, text)
        self.bus.publish(protocol.session_topic(self.name, "rejected"), {
            "kind": "rejected", "msg_type": message.msg_type, "seq": seq, "text": text,
            "cl_ord_id": message.get_str(11) or ""})
        peer = self.settings.peer
        if peer is None:
            return
        msg_type, body = rejection_for(message, text, self.incarnation)
        epoch = self.store.creation_time_ns
        origin = Origin(f"{self.name}.rejected", epoch)
        forward = Forward(origin, seq, self.reject_chain.link(epoch, seq), msg_type, [], body)
        self.backlog.append((peer, origin.message_id(seq), forward.to_wire()))
        self._drain_backlog()

    def _drain_backlog(self) -> None:
        """Hand waiting forwards to the bus, in order, while its outbox has room."""
        while self.backlog:
            peer, forward_id, body = self.backlog[0]
            if self.bus.deliver(peer, forward_id, body) is Outcome.FULL:
                if not self._backlog_warned:
                    log.warning("%s: bus outbox full (peer %s not acknowledging); %d forward(s) wait in order",
                                self.name, peer, len(self.backlog))
                    self._backlog_warned = True
                return
            self.backlog.popleft()
        self._backlog_warned = False

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        if isinstance(output, StateChanged):
            self.last_reason = output.reason
            self.state_changes += 1
            if output.new in OFFLINE and self._switch_after_disconnect is not None:
                why, self._switch_after_disconnect = self._switch_after_disconnect, None
                self.loop.call_soon(lambda: self._switch_now(why))
            self.bus.publish(protocol.session_topic(self.name, "state"), {
                "old": output.old.value, "new": output.new.value, "reason": output.reason,
                "next_sender": output.next_sender, "next_target": output.next_target, "time_ns": output.utc_ns,
                "incarnation": self.incarnation, "state_changes": self.state_changes})
        elif isinstance(output, SessionEvent):
            self.bus.publish(protocol.session_topic(self.name, output.kind), {
                "kind": output.kind, "text": output.text, "next_sender": output.next_sender,
                "next_target": output.next_target, "time_ns": output.utc_ns})

    # ------------------------------------------------------------------- bus

    def _on_bus(self) -> None:
        """One bus batch: forwards are stored and synced together, then acknowledged (group commit)."""
        acks: list[Envelope] = []
        self._batched_sends = 0
        with self.driver.batch():
            for env in self.bus.handle_readable():
                try:
                    if env.kind == protocol.DELIVER:
                        if self._on_forward(env):
                            acks.append(env)
                    elif env.kind == protocol.COMMAND:
                        self.bus.reply(env, self._on_command(env.body))
                    elif env.kind == protocol.REPLY:
                        log.debug("%s: reply %s ignored", self.name, env.corr)
                except (ValueError, TypeError) as exc:
                    log.warning("%s: dropped %s from %s: %s", self.name, env.kind, env.src, exc)
            if acks:
                self.journal.sync()  # the journal before the store: see actors.gateway.forwarding
        for env in acks:
            self.bus.ack(env)
        self._process_acked()
        self._drain_backlog()

    def _on_forward(self, env: Envelope) -> bool:
        """Judge one forward; True when it is to be acknowledged (accepted or a duplicate)."""
        forward = Forward.from_wire(env.body)
        verdict = self.acceptance.judge(forward)
        if verdict is Verdict.OUT_OF_ORDER:
            log.debug("%s: %s arrived before its predecessor %s; left for the sender to repeat",
                      self.name, env.id, forward.prev)
            return False
        if verdict is Verdict.ACCEPT:
            # Sends in a batch are numbered in order when it ends; nothing else is numbered meanwhile.
            out_seq = self.driver.session.next_sender + self._batched_sends
            self._batched_sends += 1
            self.journal.record(forward, out_seq)
            self.driver.send(forward.msg_type, forward.body, forward.header)
            self.acceptance.accept(forward)
        return True

    def _on_ack(self, forward_id: str) -> None:
        seq = self.awaiting.pop(forward_id, None)
        if seq is not None:
            self._acked.append(seq)

    def _process_acked(self) -> None:
        """Forwards the peer acknowledged are processed: the store may move past them."""
        acked, self._acked = self._acked, []
        if acked:
            self.driver.processed(*acked)

    def _on_command(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("cmd"), str):
            return {"ok": False, "error": "a command is a map with 'cmd'"}
        cmd = body["cmd"]
        now = clock.now()
        session = self.driver.session
        if cmd == "status":
            pass
        elif cmd == "connect":
            if self.settings.config.role is not Role.INITIATOR:
                return {"ok": False, "error": f"{self.name} is an acceptor; it cannot connect"}
            self.connect()
        elif cmd == "logout":
            self._stop_reconnecting()
            self.driver.logout(body.get("text"))
        elif cmd == "disconnect":
            self._stop_reconnecting()
            if session.is_logged_on:
                self.driver.logout(body.get("text"))
            else:
                self.driver.disconnect(str(body.get("text") or "disconnect command"))
        elif cmd == "switch_connection":
            return self.switch_connection(str(body.get("text") or "switch_connection command"))
        elif cmd == "reset_seqnums":
            if session.state not in OFFLINE:
                return {"ok": False, "error": "disconnect the session before resetting its sequence numbers"}
            self.driver.run(session.reset_sequence_numbers(now, "reset_seqnums command"))
        elif cmd == "set_seqnums":
            sender, target = body.get("next_sender"), body.get("next_target")
            if not all(v is None or (isinstance(v, int) and v > 0) for v in (sender, target)):
                return {"ok": False, "error": "next_sender / next_target must be positive integers"}
            self.driver.run(session.set_sequence_numbers(now, sender, target))
        else:
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        return {"ok": True, "status": self.status()}

    def switch_connection(self, why: str) -> dict[str, Any]:
        """Move an initiator to its other connection now: log out first when logged on."""
        if self.initiator is None or len(self.initiator.addresses) < 2:
            return {"ok": False, "error": f"{self.name} has no backup connection configured"}
        if self.driver.connected:
            self._switch_after_disconnect = why
            self.driver.logout(f"switching connection: {why}")
        else:
            self._switch_now(why)
        return {"ok": True, "status": self.status()}

    def _switch_now(self, why: str) -> None:
        assert self.initiator is not None
        self.initiator.switch(why)
        self.initiator.reconnect_now()

    def _on_switch(self, old: str, new: str, why: str) -> None:
        """Every switch is an event; without KeepConnectionState the new connection starts afresh."""
        self.bus.publish(protocol.session_topic(self.name, "switch"), {"from": old, "to": new, "why": why})
        if not self.settings.keep_connection_state:
            self.driver.run(self.driver.session.reset_sequence_numbers(
                clock.now(), f"switch to {new} without KeepConnectionState"))

    def _stop_reconnecting(self) -> None:
        if self.initiator is not None:
            self.initiator.stop()

    def status(self) -> dict[str, Any]:
        status = self.driver.session.status()
        status.update(name=self.name, role=self.settings.role, pid=os.getpid(), connected=self.driver.connected,
                      awaiting_ack=len(self.awaiting), incarnation=self.incarnation, reason=self.last_reason,
                      state_changes=self.state_changes)
        return status

    # --------------------------------------------------------------- running

    def run(self) -> int:
        if self.settings.config.role is Role.INITIATOR and self.settings.connect_on_start:
            self.connect()
        run_until_signalled(self.loop)
        self._shutdown()
        return 0

    def _shutdown(self) -> None:
        log.info("%s: stopping", self.name)
        self._stop_reconnecting()
        if self.driver.session.is_logged_on:
            self.driver.logout("session stopping")
            deadline = clock.now().mono_s + self.settings.config.logout_timeout_s
            while self.driver.connected and clock.now().mono_s < deadline:
                self.loop.run_once(0.1)
        if self.driver.connected:
            self.driver.disconnect("session stopping")
        if self.acceptor is not None:
            self.acceptor.close()
        if self.handoff is not None:
            self.handoff.close()
        self.bus.close()
        self.journal.close()
        self.store.close()


def rejection_for(message: Message, text: str, exec_prefix: str) -> tuple[str, list[tuple[int, bytes]]]:
    """What the end user receives for an application message that was not delivered.

    An order (NewOrderSingle) gets an ExecutionReport with OrdStatus=Rejected,
    as order-management systems expect; anything else a BusinessMessageReject
    (reason 4, application not available).
    """
    reason = text.encode("latin-1", "replace")
    if message.msg_type == "D":
        fields = [(37, b"NONE"), (17, f"{exec_prefix}-{message.seq_num}".encode()), (150, b"8"), (39, b"8")]
        fields += [(tag, value) for tag in (11, 55, 54, 38) if (value := message.get(tag)) is not None]
        fields += [(151, b"0"), (14, b"0"), (6, b"0"), (58, reason), (103, b"99")]
        return "8", sorted(fields)
    fields = [(58, reason), (372, message.msg_type.encode()), (380, b"%d" % _APPLICATION_NOT_AVAILABLE)]
    ref = message.get(11)
    if ref is not None:
        fields.append((379, ref))
    return "j", sorted(fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fixmesh session", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the topology YAML file")
    parser.add_argument("--session", required=True, help="the name of this session in the topology")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    topology = load_topology_or_report(args.config, "fixmesh session")
    if topology is None:
        return 2
    try:
        settings = topology.session(args.session)
    except ConfigError as exc:
        print(f"fixmesh session: {exc}", file=sys.stderr)
        return 2
    try:
        actor = SessionActor(topology, settings)
    except OSError as exc:
        log.error("%s: cannot start: %s (is another process using %s:%d?)", args.session,
                  exc.strerror or exc, settings.host, settings.port)
        return 1
    try:
        return actor.run()
    except Exception:
        log.exception("%s: unexpected error; exiting for the supervisor to restart the session", args.session)
        return 1


if __name__ == "__main__":
    sys.exit(main())
