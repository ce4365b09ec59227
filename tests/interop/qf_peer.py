"""A QuickFIX counterparty for the interop tests, run as its own process.

    python -m tests.interop.qf_peer --role initiator --port 5001 --sender QF --target FM \
        --work-dir /tmp/qf --send 10000 --rate 2000 --received-log /tmp/qf.received

The peer lives in a process of its own: the test talks to it only through
TCP, its received log and signals. It records every NewOrderSingle it
receives as ``<ClOrdID> <MsgSeqNum> <PossDupFlag>`` (the format of
``actors.sim.endpoint``), sends NewOrderSingle 1..N at a rate, and with
``--disconnect-after K`` drops the TCP connection once, after K orders have
arrived, without a Logout. QuickFIX's FileStore and FileLog live in
``--work-dir``. SIGTERM logs out, stops the engine and exits 0.

One thread does everything: QuickFIX's unthreaded engine (``SocketAcceptor``,
``SocketInitiator``) is polled by the loop that also sends the orders. With
the threaded engine and a Python thread sending, the peer could deadlock: the
bindings keep the GIL while ``sendToTarget`` waits for the session's lock, and
QuickFIX's own thread holds that lock while it calls the application (a
resend answer calls ``toApp`` per message), which needs the GIL.
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

#: The pause between two polls of QuickFIX's engine when no order is due (its ``poll`` does not wait).
POLL_S = 0.001
#: Orders sent in one turn of the loop at most, so the engine is polled between them.
SEND_PER_TURN = 50
#: How long the stop waits for the counterparty's Logout reply.
LOGOUT_WAIT_S = 5.0


class Recorder(fix.Application):
    """Records received orders; the engine calls it from ``poll``, on the loop's thread."""

    def __init__(self, received_log: Path) -> None:
        super().__init__()
        self.session_id: fix.SessionID | None = None
        self.logged_on = False
        self.logons = 0
        self.received = 0
        self._file: TextIO = received_log.open("a", encoding="ascii")

    def onCreate(self, session_id: fix.SessionID) -> None:
        self.session_id = session_id

    def onLogon(self, session_id: fix.SessionID) -> None:
        self.logons += 1
        log.info("logged on (%d)", self.logons)
        self.logged_on = True

    def onLogout(self, session_id: fix.SessionID) -> None:
        log.info("logged out")
        self.logged_on = False

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass  # pure virtual in QuickFIX: every callback must be given

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        header = message.getHeader()
        if header.getField(35) == "5":
            text = message.getField(58) if message.isSetField(58) else ""
            log.info("Logout received: %s", text)

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

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


class Sender:
    """Orders 1..N at ``--rate`` from the first Logon on; while offline QuickFIX stores them for the peer's resend."""

    def __init__(self, args: argparse.Namespace, app: Recorder) -> None:
        self.args = args
        self.app = app
        self.sent = 0
        self.started: float | None = None

    @property
    def done(self) -> bool:
        return self.sent >= self.args.send

    def send_due(self) -> bool:
        """Send the orders due by now, at most ``SEND_PER_TURN``; False when none was due."""
        if self.done or (self.started is None and not self.app.logged_on):
            return False
        if self.started is None:
            self.started = time.monotonic()
            log.info("sending orders 1..%d", self.args.send)
        due = self.args.send
        if self.args.rate > 0:
            due = min(due, int((time.monotonic() - self.started) * self.args.rate) + 1)
        before = self.sent
        for cl_ord_id in range(self.sent + 1, min(due, self.sent + SEND_PER_TURN) + 1):
            fix.Session.sendToTarget(new_order_single(self.args, cl_ord_id), self.app.session_id)
            self.sent = cl_ord_id
        if self.done:
            log.info("all %d orders sent", self.args.send)
        return self.sent > before


def run(args: argparse.Namespace) -> int:
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / "quickfix.cfg"
    config.write_text(settings_text(args, work_dir), encoding="ascii")
    settings = fix.SessionSettings(str(config))
    app = Recorder(Path(args.received_log))
    store_factory = fix.FileStoreFactory(settings)
    log_factory = fix.FileLogFactory(settings)
    kind = fix.SocketInitiator if args.role == "initiator" else fix.SocketAcceptor
    engine = kind(app, store_factory, settings, log_factory)
    stop = threading.Event()  # set by SIGTERM or SIGINT; the loop looks at it between polls
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    engine.poll()  # the first poll opens the listener or starts connecting
    log.info("%s started on %s:%d", args.role, args.host, args.port)
    sender = Sender(args, app)
    pending_drop = args.disconnect_after > 0
    try:
        while not stop.is_set():
            engine.poll()
            if pending_drop and app.received >= args.disconnect_after and app.session_id is not None:
                pending_drop = False
                log.info("forced disconnect after %d orders received", app.received)
                fix.Session.lookupSession(app.session_id).disconnect()
            if not sender.send_due():
                time.sleep(POLL_S)
    finally:
        log_out(engine, app)
        log.info("stopped: %d orders received, %d logons", app.received, app.logons)
        app.close()
    return 0


def log_out(engine: fix.SocketAcceptor | fix.SocketInitiator, app: Recorder) -> None:
    """Log out and wait for the reply (polling: nobody else runs the engine), then stop it."""
    if app.logged_on and app.session_id is not None:
        fix.Session.lookupSession(app.session_id).logout()
        deadline = time.monotonic() + LOGOUT_WAIT_S
        while app.logged_on and time.monotonic() < deadline:
            engine.poll()
            time.sleep(POLL_S)
    engine.stop(True)


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
