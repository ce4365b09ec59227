"""A QuickFIX counterparty for the interop tests, run as its own process.

    python -m tests.interop.qf_peer --role initiator --port 5001 --sender QF --target FM \
        --work-dir /tmp/qf --send 10000 --rate 2000 --received-log /tmp/qf.received

QuickFIX's Python bindings run the engine on C++ threads, so the peer lives
in a process of its own: the test talks to it only through TCP, its received
log and signals. It records every NewOrderSingle it receives as
``<ClOrdID> <MsgSeqNum> <PossDupFlag>`` (the format of ``actors.sim.endpoint``),
sends NewOrderSingle 1..N at a rate, and with ``--disconnect-after K`` drops
the TCP connection once, after K orders have arrived, without a Logout.
QuickFIX's FileStore and FileLog live in ``--work-dir``. SIGTERM stops the
engine (QuickFIX logs out) and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

import quickfix as fix

from bench.qf_settings import one_session_settings

log = logging.getLogger("qf_peer")

#: How often the main thread looks at the stop flag and the disconnect trigger.
POLL_S = 0.05
#: Orders sent between two looks at the clock when pacing.
PACE_EVERY = 50
#: Longest pause of the sender while QuickFIX answers a ResendRequest (see ``Recorder.may_send``).
RESEND_PAUSE_S = 2.0


class Recorder(fix.Application):
    """Records received orders; QuickFIX calls it on its own session thread."""

    def __init__(self, received_log: Path) -> None:
        super().__init__()
        self.session_id: fix.SessionID | None = None
        self.logged_on = threading.Event()
        self.logons = 0
        self.received = 0
        #: Clear while QuickFIX answers a ResendRequest. QuickFIX resends holding its session lock and
        #: calls ``toApp`` for each message, which needs the GIL; a Python thread blocked in
        #: ``sendToTarget`` on that lock while holding the GIL would deadlock the peer. So the sender
        #: waits until the resent range is out (or ``RESEND_PAUSE_S``).
        self.may_send = threading.Event()
        self.may_send.set()
        self._resend_to = 0
        self._file: TextIO = received_log.open("a", encoding="ascii")

    def onCreate(self, session_id: fix.SessionID) -> None:
        self.session_id = session_id

    def onLogon(self, session_id: fix.SessionID) -> None:
        self.logons += 1
        log.info("logged on (%d)", self.logons)
        self.logged_on.set()

    def onLogout(self, session_id: fix.SessionID) -> None:
        log.info("logged out")
        self.logged_on.clear()

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        if message.getHeader().getField(35) == "4" and int(message.getField(36)) > self._resend_to:
            self.may_send.set()  # a gap fill reaching past the range ends the resend

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        header = message.getHeader()
        if header.getField(35) == "2":
            self._resend_to = fix.Session.lookupSession(session_id).getExpectedSenderNum() - 1
            self.may_send.clear()
        if header.getField(35) == "5":
            text = message.getField(58) if message.isSetField(58) else ""
            log.info("Logout received: %s", text)

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        if not self.may_send.is_set() and int(message.getHeader().getField(34)) >= self._resend_to:
            self.may_send.set()

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        header = message.getHeader()
        if header.getField(35) != "D":
            return
        possdup = header.getField(43) if header.isSetField(43) else "N"
        self._file.write(f"{message.getField(11)} {header.getField(34)} {possdup}\n")
        self._file.flush()
        self.received += 1

    def close(self) -> None:
        self._file.close()


def settings_text(args: argparse.Namespace, work_dir: Path) -> str:
    """QuickFIX settings for one always-on session; a data dictionary only when given."""
    return one_session_settings(
        role=args.role, begin_string=args.begin_string, sender=args.sender, target=args.target, host=args.host,
        port=args.port, store_dir=work_dir / "store", log_dir=work_dir / "log", heartbeat_s=args.heartbeat,
        dictionary=args.data_dictionary, transport_dictionary=args.transport_dictionary,
        default_appl_ver_id=args.default_appl_ver_id)


def new_order_single(args: argparse.Namespace, cl_ord_id: int) -> fix.Message:
    message = fix.Message()
    header = message.getHeader()
    header.setField(8, args.begin_string)
    header.setField(35, "D")
    for tag, value in ((11, str(cl_ord_id)), (21, "1"), (38, "100"), (40, "2"), (44, "10.5"), (54, "1"), (55, "QFX")):
        message.setField(tag, value)
    if args.begin_string not in ("FIX.4.0", "FIX.4.1"):
        message.setField(60, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()))
    return message


def send_orders(args: argparse.Namespace, app: Recorder, stop: threading.Event) -> None:
    """Orders 1..N at ``--rate`` once logged on; while offline QuickFIX stores them for the peer's resend."""
    while not app.logged_on.wait(POLL_S):
        if stop.is_set():
            return
    log.info("sending orders 1..%d", args.send)
    started = time.monotonic()
    for cl_ord_id in range(1, args.send + 1):
        if stop.is_set():
            return
        app.may_send.wait(RESEND_PAUSE_S)
        fix.Session.sendToTarget(new_order_single(args, cl_ord_id), app.session_id)
        if args.rate > 0 and cl_ord_id % PACE_EVERY == 0:
            ahead_s = started + cl_ord_id / args.rate - time.monotonic()
            if ahead_s > 0:
                stop.wait(ahead_s)
    log.info("all %d orders sent", args.send)


def run(args: argparse.Namespace) -> int:
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / "quickfix.cfg"
    config.write_text(settings_text(args, work_dir), encoding="ascii")
    settings = fix.SessionSettings(str(config))
    app = Recorder(Path(args.received_log))
    store_factory = fix.FileStoreFactory(settings)
    log_factory = fix.FileLogFactory(settings)
    kind = fix.ThreadedSocketInitiator if args.role == "initiator" else fix.ThreadedSocketAcceptor
    engine = kind(app, store_factory, settings, log_factory)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    engine.start()
    log.info("%s started on %s:%d", args.role, args.host, args.port)
    sender = threading.Thread(target=send_orders, args=(args, app, stop), daemon=True)
    sender.start()
    try:
        watch(args, app, stop)
    finally:
        stop.set()
        sender.join(timeout=5)
        engine.stop()
        log.info("stopped: %d orders received, %d logons", app.received, app.logons)
        app.close()
    return 0


def watch(args: argparse.Namespace, app: Recorder, stop: threading.Event) -> None:
    """Until SIGTERM: drop the connection once when ``--disconnect-after`` orders have arrived."""
    pending_drop = args.disconnect_after > 0
    while not stop.wait(POLL_S):
        if pending_drop and app.received >= args.disconnect_after and app.session_id is not None:
            pending_drop = False
            log.info("forced disconnect after %d orders received", app.received)
            fix.Session.lookupSession(app.session_id).disconnect()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.interop.qf_peer", description=__doc__.split("\n\n")[0])
    p.add_argument("--role", required=True, choices=("initiator", "acceptor"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sender", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--begin-string", default="FIX.4.4")
    p.add_argument("--default-appl-ver-id", default="9")
    p.add_argument("--heartbeat", type=int, default=30)
    p.add_argument("--data-dictionary")
    p.add_argument("--transport-dictionary")
    p.add_argument("--work-dir", required=True, help="QuickFIX FileStore, FileLog and settings go here")
    p.add_argument("--received-log", required=True)
    p.add_argument("--send", type=int, default=0, metavar="N")
    p.add_argument("--rate", type=float, default=0.0, help="orders per second (0 = unthrottled)")
    p.add_argument("--disconnect-after", type=int, default=0, metavar="K", help="drop the connection after K orders")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
