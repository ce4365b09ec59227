"""One fixmesh FIX session as a process, for tests and demos.

    fixmesh endpoint --role initiator --port 5001 --sender BUY --target SELL \
        --store-dir /tmp/buy --send 1000 --rate 500 --received-log /tmp/buy.received

Either role, FIX.4.0-FIX.4.4 or FIXT.1.1, plain TCP or TLS (``--tls-*``). ``--send N`` sends NewOrderSingle
(35=D) with ClOrdID (11) 1..N once the session has logged on; a restarted
process on the same store continues the numbering where the previous one
stopped. ``--received-log`` appends one line per received application
message, ``<ClOrdID> <MsgSeqNum> <PossDupFlag>``, flushed at once so that a
parent process can follow it. SIGTERM (or SIGINT) logs out and exits 0. An
initiator also exits when it stops connecting: 0 after the counterparty's
Logout, 1 after ``--max-tries`` failed attempts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from actors.fix import tags as T
from actors.fix.codec import GarbledMessage, parse
from actors.fix.config import BEGIN_STRINGS, Role, SessionConfig
from actors.fix.message import Message
from actors.fix.outputs import Output, StateChanged
from actors.fix.states import SessionState
from actors.fix.timefmt import Instant, TimestampFormatter
from actors.shell import clock
from actors.shell.driver import SessionDriver
from actors.shell.host import AcceptorSpec, HostSpec, InitiatorSpec, SessionHost, SessionSpec, StoreSpec
from actors.shell.process import configure_logging
from actors.shell.seqpolicy import SequencePolicy
from actors.sim.tls_options import add_tls_arguments, tls_settings
from actors.store import Durability, MessageStore, read_outgoing_parts
from actors.store.layout import session_dir_name

log = logging.getLogger("fixmesh.endpoint")

CL_ORD_ID = 11
NEW_ORDER_SINGLE = "D"
#: At most this many orders per timer call, so reads and heartbeats interleave with a backlog.
SEND_BURST = 100


def session_id_of(begin_string: str, sender: str, target: str) -> str:
    """The store's session id; tests use it to inspect the store."""
    return f"{begin_string}:{sender}->{target}"


def counter_path(store_dir: str | os.PathLike[str], session_id: str) -> Path:
    return Path(store_dir) / f"{session_dir_name(session_id)}.next-clordid"


# --------------------------------------------------------------- ClOrdIDs


class ClOrdIdCounter:
    """The next ClOrdID to send, kept beside the store.

    The file is rewritten only after ``driver.send`` returned, so a kill -9
    between the two leaves the file one order behind the store. On start the
    orders stored after the file's MsgSeqNum are read back, because the
    counterparty will receive them (by resend if need be) and their ClOrdIDs
    must not be used again.
    """

    RECORD = "%20d %20d\n"

    def __init__(self, path: Path | None, next_id: int = 1, last_seq: int = 0) -> None:
        self.path = path
        self.next_id = next_id
        self.last_seq = last_seq
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644) if path is not None else -1

    @classmethod
    def load(cls, path: Path | None, store: MessageStore) -> ClOrdIdCounter:
        if path is None:
            return cls(None)
        next_id, last_seq = _read_counter(path)
        scanned = _highest_stored_order(store, last_seq + 1)
        if scanned is not None and scanned >= next_id:
            log.info("ClOrdID %d is in the store but not in %s; continuing after it", scanned, path.name)
            next_id = scanned + 1
        return cls(path, next_id, last_seq)

    def record(self, cl_ord_id: int, seq: int) -> None:
        """``cl_ord_id`` went out (or into the store) as MsgSeqNum ``seq``."""
        self.next_id = cl_ord_id + 1
        self.last_seq = seq
        if self._fd >= 0:
            os.pwrite(self._fd, (self.RECORD % (self.next_id, seq)).encode(), 0)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read_counter(path: Path) -> tuple[int, int]:
    """(next ClOrdID, MsgSeqNum of the last order); (1, 0) when unknown, which rescans the whole store."""
    try:
        fields = path.read_text(encoding="ascii").split()
        return int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        return 1, 0


def _highest_stored_order(store: MessageStore, first_seq: int) -> int | None:
    highest: int | None = None
    stored = read_outgoing_parts(store, first_seq, store.next_sender_seq - 1, 1000)  # a part in memory at a time
    for seq, data in (message for part in stored for message in part):
        try:
            message = parse(data)
        except GarbledMessage:
            log.warning("stored message %d is unreadable; its ClOrdID is not known", seq)
            continue
        value = message.get_int(CL_ORD_ID) if message.msg_type == NEW_ORDER_SINGLE else None
        if value is not None and (highest is None or value > highest):
            highest = value
    return highest


def new_order_single(cl_ord_id: int, version_rank: int, transact_time: bytes) -> list[tuple[int, bytes]]:
    """A NewOrderSingle body valid in every FIX version's dictionary (required fields differ)."""
    body = [(CL_ORD_ID, b"%d" % cl_ord_id), (21, b"1"), (38, b"100"), (40, b"2"), (44, b"10.5"), (54, b"1")]
    body.append((55, b"FMX"))
    if version_rank >= 42:
        body.append((60, transact_time))
    return body


class OrderSender:
    """Sends orders 1..total at ``rate_per_s`` (0 = as fast as the loop allows) once logged on.

    Orders keep flowing while the session is briefly offline: the session
    stores them and the counterparty gets them through its ResendRequest
    after the next Logon, which is exactly what the interop tests exercise.
    """

    def __init__(
        self,
        driver: SessionDriver,
        counter: ClOrdIdCounter,
        total: int,
        rate_per_s: float,
        now: Callable[[], Instant] = clock.now,
    ) -> None:
        self.driver = driver
        self.counter = counter
        self.total = total
        self.rate_per_s = rate_per_s
        self._now = now
        self._active = False
        self._due = 0.0
        self._ts = TimestampFormatter(driver.session.config.effective_timestamp_precision)

    @property
    def done(self) -> bool:
        return self.counter.next_id > self.total

    def start(self) -> None:
        if not self._active and not self.done:
            log.info("sending orders %d..%d", self.counter.next_id, self.total)
            self._active = True
            self._due = self._now().mono_s

    def stop(self) -> None:
        self._active = False

    def next_deadline(self) -> float | None:
        return self._due if self._active else None

    def on_timer(self) -> None:
        for _ in range(self._due_count(self._now().mono_s)):
            if self.done:
                log.info("all %d orders sent", self.total)
                self._active = False
                return
            self._send_one()

    def _due_count(self, now: float) -> int:
        if self.rate_per_s <= 0:
            self._due = now
            return SEND_BURST
        if now - self._due > SEND_BURST / self.rate_per_s:
            self._due = now  # far behind (a busy loop): no catch-up flood
        count = min(SEND_BURST, 1 + int((now - self._due) * self.rate_per_s))
        self._due += count / self.rate_per_s
        return count

    def _send_one(self) -> None:
        cl_ord_id = self.counter.next_id
        rank = self.driver.session.config.version_rank
        body = new_order_single(cl_ord_id, rank, self._ts.format(self._now().utc_ns))
        seq = self.driver.send(NEW_ORDER_SINGLE, body)
        self.counter.record(cl_ord_id, seq)


# -------------------------------------------------------- received messages


class ReceivedLog:
    """The endpoint's application: one flushed line per received application message."""

    def __init__(self, path: Path | None, on_logon: Callable[[], None]) -> None:
        self.path = path
        self._file: TextIO | None = path.open("a", encoding="ascii") if path is not None else None
        self._on_logon = on_logon
        self.received = 0

    def on_message(self, driver: SessionDriver, message: Message) -> None:
        self.received += 1
        if self._file is None:
            return
        possdup = "Y" if message.flag(T.POSS_DUP_FLAG) else "N"
        self._file.write(f"{message.get_str(CL_ORD_ID, '-')} {message.seq_num} {possdup}\n")
        self._file.flush()

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        if isinstance(output, StateChanged) and output.new is SessionState.CONNECTED:
            self._on_logon()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def last_logged_seq(path: Path | None) -> int | None:
    """MsgSeqNum on the last complete line of a received log, or None."""
    if path is None or not path.exists():
        return None
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - 4096))
        lines = file.read().split(b"\n")[:-1]
    try:
        return int(lines[-1].split()[1]) if lines else None
    except (IndexError, ValueError):
        return None


def resume_target_seq(store: MessageStore, logged_seq: int | None) -> int:
    """The next incoming MsgSeqNum, counting a message the log holds but the store does not.

    The store's number is saved after the application handled the message
    (``driver.py``); a kill -9 between the log line and that save leaves the
    store exactly one behind. Taking the log's word for that one message keeps
    the application from seeing it twice when the peer resends it. Any other
    disagreement is left alone so that a store bug shows as a duplicate.
    """
    stored = store.next_target_seq
    if logged_seq is not None and logged_seq == stored:
        log.info("the received log already holds MsgSeqNum %d; next incoming is %d", logged_seq, stored + 1)
        store.set_next_target_seq(stored + 1)
        return stored + 1
    return stored


# ----------------------------------------------------------------- process


class Endpoint:
    """The session on a ``SessionHost``, with the order sender and the received log; runs until SIGTERM."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.session_id = session_id_of(args.begin_string, args.sender, args.target)
        self.host = SessionHost(_host_spec(args), on_stopping=self._on_stopping, on_closed=self._on_closed,
                                on_initiator_done=self._on_initiator_done)
        self.loop = self.host.loop
        spec = _session_spec(args, self.session_id)
        self.store = self.host.open_store(spec)
        self.counter = ClOrdIdCounter.load(
            counter_path(args.store_dir, self.session_id) if args.store_dir else None, self.store
        )
        received_log = Path(args.received_log) if args.received_log else None
        # A memory store starts at 1 every run: an old log says nothing about it.
        logged_seq = last_logged_seq(received_log) if args.store_dir else None
        resume_target_seq(self.store, logged_seq)  # before the session reads the store's numbers
        self.app = ReceivedLog(received_log, self._on_logon)
        self.driver = self.host.add_session(spec, self.app, store=self.store)
        self.sender = OrderSender(self.driver, self.counter, args.send, args.rate)
        self.loop.add_timer_source(self.sender)
        self._exit_code = 0

    def run(self) -> int:
        self.host.start()
        if self.host.port is not None:
            print(f"listening on {self.args.host}:{self.host.port}", flush=True)
        self.host.run(max_wait_s=1.0)
        log.info("stopped: %d application messages received, next ClOrdID %d", self.app.received, self.counter.next_id)
        return self._exit_code

    def _on_logon(self) -> None:
        if not self.host.stopping:
            self.sender.start()

    def _on_stopping(self, reason: str) -> None:
        self.sender.stop()

    def _on_initiator_done(self, gave_up: bool) -> None:
        """An initiator ends the process when it stops connecting: 1 after giving up, 0 after a Logout."""
        self._exit_code = 1 if gave_up else 0
        log.info("the initiator %s; exiting", "gave up" if gave_up else "will not reconnect")
        self.host.stop("the initiator stopped")

    def _on_closed(self) -> None:
        self.counter.close()
        self.app.close()


def _host_spec(args: argparse.Namespace) -> HostSpec:
    if args.role == Role.INITIATOR.value:
        connect = InitiatorSpec(args.host, args.port, connect_timeout_s=args.connect_timeout,
                          reconnect_interval_s=args.reconnect_interval, max_tries=args.max_tries,
                          reconnect_after_logout=args.reconnect_after_logout, tls=args.tls_settings)
        return HostSpec(connect=connect, stop_text="endpoint stopping")
    return HostSpec(listen=AcceptorSpec(args.host, args.port, tls=args.tls_settings), stop_text="endpoint stopping")


def _session_spec(args: argparse.Namespace, session_id: str) -> SessionSpec:
    config = SessionConfig(
        begin_string=args.begin_string,
        sender_comp_id=args.sender,
        target_comp_id=args.target,
        role=Role(args.role),
        heartbeat_interval_s=args.heartbeat,
        default_appl_ver_id=args.default_appl_ver_id,
        use_data_dictionary=args.data_dictionary is not None,
        session_qualifier=args.session_qualifier,
        username=args.username,
        # From the environment, never argv: ``ps`` shows every process's command line.
        password=os.environ.get(args.password_env) if args.password_env else None,
    )
    store = StoreSpec("file" if args.store_dir else "memory", Path(args.store_dir) if args.store_dir else None,
                      Durability(args.durability))
    return SessionSpec(
        session_id, config, store,
        policy=SequencePolicy(args.next_sender, args.next_target, args.reset_after_24h),
        app_dictionary=args.data_dictionary, transport_dictionary=args.transport_dictionary,
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fixmesh endpoint", description=__doc__.split("\n\n")[0])
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--begin-string", default="FIX.4.4", choices=BEGIN_STRINGS)
    p.add_argument("--default-appl-ver-id", help="FIXT.1.1 only: DefaultApplVerID (1137), e.g. 9 for FIX.5.0SP2")
    p.add_argument("--host", default="127.0.0.1", help="initiator: where to connect; acceptor: where to listen")
    p.add_argument("--port", type=int, required=True, help="acceptor: 0 = any free port, printed at start")
    p.add_argument("--sender", required=True, help="our SenderCompID (49)")
    p.add_argument("--target", required=True, help="their CompID: TargetCompID (56) of what we send")
    p.add_argument("--store-dir", help="FileStore directory (default: a memory store, lost at exit)")
    p.add_argument("--durability", default=Durability.BATCH.value, choices=[d.value for d in Durability])
    p.add_argument("--heartbeat", type=int, default=30, help="HeartBtInt (108) in seconds (default 30)")
    p.add_argument("--data-dictionary", help="QuickFIX XML dictionary to validate with (default: no validation)")
    p.add_argument("--transport-dictionary", help="FIXT.1.1: the FIXT11.xml transport dictionary")
    p.add_argument("--send", type=int, default=0, metavar="N", help="send NewOrderSingle with ClOrdID 1..N")
    p.add_argument("--rate", type=float, default=0.0, help="orders per second (default 0 = unthrottled)")
    p.add_argument("--received-log", help="append '<ClOrdID> <MsgSeqNum> <PossDup>' per received message")
    p.add_argument("--connect-timeout", type=float, default=5.0, help="initiator: seconds per TCP connect")
    p.add_argument("--reconnect-interval", type=float, default=5.0, help="initiator: seconds between tries")
    p.add_argument("--max-tries", type=int, default=0, help="initiator: tries before giving up (0 = unlimited)")
    p.add_argument("--reconnect-after-logout", action="store_true", help="initiator: reconnect after a Logout too")
    p.add_argument("--next-sender", type=int, default=0, help="next outgoing MsgSeqNum (0 = restore from the store)")
    p.add_argument("--next-target", type=int, default=0, help="next expected MsgSeqNum (0 = restore from the store)")
    p.add_argument("--reset-after-24h", action="store_true",
                   help="ResetSeqNumAfter24hours: reset both numbers at the first Logon a day after the last reset")
    p.add_argument("--session-qualifier", help="SessionQualifier sent in the Logon (tag 9012) / expected in it")
    p.add_argument("--username", help="initiator: Username (553) sent in the Logon")
    p.add_argument("--password-env", metavar="VARIABLE",
                   help="initiator: send the value of this environment variable as Password (554) in the Logon")
    p.add_argument("--log-level", default="INFO")
    add_tls_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    args.tls_settings = tls_settings(args, p, acceptor=args.role == Role.ACCEPTOR.value)
    configure_logging(args.log_level)
    try:
        return Endpoint(args).run()
    except Exception:
        session_id = session_id_of(args.begin_string, args.sender, args.target)
        log.exception("endpoint %s stopped by an unexpected error", session_id)
        return 1


if __name__ == "__main__":
    sys.exit(main())
