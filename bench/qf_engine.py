"""Session-engine throughput, QuickFIX side (QuickFIX's Python bindings), same shape as ``bench.fm_engine``.

    python -m bench.qf_engine --role receiver --port P --store memory --work-dir D --count N
    python -m bench.qf_engine --role sender --port P --store file --work-dir D --count N

One session per process, FIX.4.4, ``ThreadedSocketInitiator`` /
``ThreadedSocketAcceptor``, a ``MemoryStoreFactory`` or ``FileStoreFactory``
and no message log (fixmesh's engine processes log no messages either). The
sender sends ``count`` NewOrderSingle with ``Session.sendToTarget`` from a
Python thread once logged on; the receiver counts them in ``fromApp`` and
prints ``{"event": "done", "first": t, "last": t}`` (monotonic seconds).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

import quickfix as fix

from bench.procs import emit
from bench.qf_app import BenchApplication
from bench.qf_settings import one_session_settings

SENDER_ID, RECEIVER_ID = "QFI", "QFA"


def settings_text(role: str, port: int, work_dir: Path, dictionary: str | None, sender: str, target: str) -> str:
    """One FIX.4.4 session on the loopback, its store in ``work_dir``, no file log (it would be timed too)."""
    return one_session_settings(role=role, begin_string="FIX.4.4", sender=sender, target=target, host="127.0.0.1",
                                port=port, store_dir=work_dir / "store", dictionary=dictionary)


def engine(role: str, app: fix.Application, settings_path: Path, store: str) -> fix.Initiator | fix.Acceptor:
    settings = fix.SessionSettings(str(settings_path))
    factory = fix.FileStoreFactory(settings) if store == "file" else fix.MemoryStoreFactory()
    kind = fix.ThreadedSocketInitiator if role == "initiator" else fix.ThreadedSocketAcceptor
    return kind(app, factory, settings)


class App(BenchApplication):
    logon_event = "connected"

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.received = 0
        self.first = 0.0

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self.received += 1
        if self.received == 1:
            self.first = time.monotonic()
        if self.received == self.count:
            emit("done", count=self.count, first=self.first, last=time.monotonic())


def new_order_single(cl_ord_id: int) -> fix.Message:
    message = fix.Message()
    header = message.getHeader()
    header.setField(8, "FIX.4.4")
    header.setField(35, "D")
    for tag, value in ((11, str(cl_ord_id)), (21, "1"), (38, "100"), (40, "2"), (44, "10.5"), (54, "1"),
                       (55, "FMX")):
        message.setField(tag, value)
    message.setField(60, time.strftime("%Y%m%d-%H:%M:%S.000", time.gmtime()))
    return message


def send_all(app: App, stop: threading.Event) -> None:
    while not app.logged_on.wait(0.01):
        if stop.is_set():
            return
    emit("sending", t=time.monotonic())
    for cl_ord_id in range(1, app.count + 1):
        if stop.is_set():
            return
        fix.Session.sendToTarget(new_order_single(cl_ord_id), app.session_id)
    emit("sent", t=time.monotonic(), count=app.count)


def run(args: argparse.Namespace) -> int:
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    sender = args.role == "sender"
    role = "initiator" if sender else "acceptor"
    ours, theirs = (SENDER_ID, RECEIVER_ID) if sender else (RECEIVER_ID, SENDER_ID)
    config = work_dir / f"{role}.cfg"
    config.write_text(settings_text(role, args.port, work_dir, args.data_dictionary, ours, theirs), encoding="ascii")
    app = App(args.count)
    eng = engine(role, app, config, args.store)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    eng.start()
    if not sender:
        emit("listening", port=args.port)
    thread = threading.Thread(target=send_all, args=(app, stop), daemon=True) if sender else None
    if thread is not None:
        thread.start()
    try:
        while not stop.wait(0.05):
            pass
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=5)
        eng.stop(True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.qf_engine", description=__doc__.split("\n\n")[0])
    p.add_argument("--role", required=True, choices=("sender", "receiver"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--store", default="memory", choices=("memory", "file"))
    p.add_argument("--work-dir", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--data-dictionary")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
