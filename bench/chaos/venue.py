"""A chaos run's venue: a FIX acceptor that logs every order it receives and answers each once.

    python -m bench.chaos.venue --host H --port P --sender VENUE1 --target GATEWAY \
        --store-dir D --received-log F

One session (one venue per Driven), a file store. Every application message
received is one line of the received log, ``<ClOrdID> <MsgSeqNum>
<PossDupFlag>``, flushed at once (the endpoint's format: the ledger reads both
the same way). A NewOrderSingle whose ClOrdID the venue has not seen before
is answered with one ExecutionReport (New, ExecID ``E<ClOrdID>``, sent from
within the delivery, so it leaves in the same write as the order's batch); a
repeat (a PossDup resend, or a duplicate the ledger will report) is logged
and not answered again, as a venue that knows its orders would do. The
orders seen are read back from the received log at start, so a restarted
venue does not answer twice. SIGTERM logs out and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TextIO

from actors.fix import tags as T
from actors.fix.config import Role, SessionConfig
from actors.fix.message import Message
from actors.fix.outputs import Output
from actors.fix.timefmt import TimestampFormatter
from actors.shell import clock
from actors.shell.driver import SessionDriver
from actors.shell.host import AcceptorSpec, HostSpec, SessionHost, SessionSpec, StoreSpec
from actors.shell.process import configure_logging
from actors.sim.endpoint import last_logged_seq, resume_target_seq, session_id_of
from bench.fixmsg import BEGIN_STRING, CL_ORD_ID, EXECUTION_REPORT, NEW_ORDER_SINGLE, execution_report

log = logging.getLogger("fixmesh.chaos.venue")


def seen_orders(path: Path) -> set[bytes]:
    """ClOrdIDs in a received log (complete lines): what a restarted venue has already answered."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return set()
    return {line.split()[0].encode() for line in data.decode("ascii", "replace").split("\n")[:-1] if line.split()}


class Venue:
    """The application: log each message, answer each new order once."""

    def __init__(self, received_log: Path) -> None:
        self.answered = seen_orders(received_log)
        self._log: TextIO = received_log.open("a", encoding="ascii")
        self._ts = TimestampFormatter(3)

    def on_message(self, driver: SessionDriver, message: Message) -> bool:
        cl_ord_id = message.get(CL_ORD_ID)
        possdup = "Y" if message.flag(T.POSS_DUP_FLAG) else "N"
        self._log.write(f"{cl_ord_id.decode('ascii', 'replace') if cl_ord_id else '-'} {message.seq_num} {possdup}\n")
        self._log.flush()
        if message.msg_type == NEW_ORDER_SINGLE and cl_ord_id is not None and cl_ord_id not in self.answered:
            self.answered.add(cl_ord_id)
            fields = {t: v for t, v in message.fields if t in (CL_ORD_ID, 38, 54, 55)}
            exec_id = int(cl_ord_id) if cl_ord_id.isdigit() else len(self.answered)
            driver.send(EXECUTION_REPORT, execution_report(fields, exec_id, clock.now().utc_ns, self._ts))
        return True

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        pass

    def close(self) -> None:
        self._log.close()


def run(args: argparse.Namespace) -> int:
    session_id = session_id_of(BEGIN_STRING, args.sender, args.target)
    received_log = Path(args.received_log)
    venue = Venue(received_log)
    host = SessionHost(HostSpec(listen=AcceptorSpec(args.host, args.port), stop_text="venue stopping"),
                       on_closed=venue.close)
    config = SessionConfig(begin_string=BEGIN_STRING, sender_comp_id=args.sender, target_comp_id=args.target,
                           role=Role.ACCEPTOR, heartbeat_interval_s=args.heartbeat)
    spec = SessionSpec(session_id, config, StoreSpec("file", Path(args.store_dir)))
    store = host.open_store(spec)
    resume_target_seq(store, last_logged_seq(received_log))  # a line logged but not yet counted by the store
    host.add_session(spec, venue, store=store)
    host.start()
    print(f"listening on {args.host}:{host.port}", flush=True)
    host.run(max_wait_s=1.0)
    log.info("stopped: %d orders answered", len(venue.answered))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.chaos.venue", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="where to listen")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sender", required=True, help="our SenderCompID (49)")
    p.add_argument("--target", default="GATEWAY", help="the Driven's CompID")
    p.add_argument("--store-dir", required=True)
    p.add_argument("--received-log", required=True)
    p.add_argument("--heartbeat", type=int, default=30, help="HeartBtInt (108) (the initiator's Logon decides)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    configure_logging(args.log_level)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
