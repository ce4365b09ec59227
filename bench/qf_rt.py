"""Round trip between two QuickFIX engines (QuickFIX's Python bindings): the unrouted reference.

    python -m bench.qf_rt --role responder --port P --work-dir D
    python -m bench.qf_rt --role client --port P --work-dir D --out-dir O --phase r1000=paced:1000:10
    [--sender ID --target ID]   (QuickFIX ends around a gateway: TRADER -> GATEWAY, VENUE -> GATEWAY)

The responder answers each NewOrderSingle with one ExecutionReport from
``fromApp``; the client sends paced orders from a Python thread and records
each round trip like ``bench.rt_client`` (same phases, events and ``.lat``
files). Memory stores, no message logs, the same data dictionary as the
fixmesh processes.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

import quickfix as fix

from bench.latency import Phase, PhaseSpec
from bench.procs import emit
from bench.qf_app import BenchApplication
from bench.qf_engine import settings_text

CLIENT_ID, RESPONDER_ID = "QFTRADER", "QFVENUE"
DRAIN_S = 60.0


class App(BenchApplication):
    def __init__(self, responder: bool) -> None:
        super().__init__()
        self.responder = responder
        self.phase: Phase | None = None
        self.exec_id = 0

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        if self.responder:
            self._answer(message, session_id)
            return
        phase = self.phase
        if phase is not None:
            phase.reply(int(message.getField(11)), time.monotonic_ns())

    def _answer(self, order: fix.Message, session_id: fix.SessionID) -> None:
        self.exec_id += 1
        report = fix.Message()
        header = report.getHeader()
        header.setField(8, "FIX.4.4")
        header.setField(35, "8")
        for tag, value in ((6, "0"), (11, order.getField(11)), (14, "0"), (17, f"E{self.exec_id}"),
                           (37, f"O{self.exec_id}"), (38, order.getField(38)), (39, "0"), (54, order.getField(54)),
                           (55, order.getField(55)), (60, time.strftime("%Y%m%d-%H:%M:%S.000", time.gmtime())),
                           (150, "0"), (151, order.getField(38))):
            report.setField(tag, value)
        fix.Session.sendToTarget(report, session_id)


def order(cl_ord_id: int) -> fix.Message:
    message = fix.Message()
    header = message.getHeader()
    header.setField(8, "FIX.4.4")
    header.setField(35, "D")
    for tag, value in ((11, str(cl_ord_id)), (21, "1"), (38, "100"), (40, "2"), (44, "10.5"), (54, "1"),
                       (55, "FMX")):
        message.setField(tag, value)
    message.setField(60, time.strftime("%Y%m%d-%H:%M:%S.000", time.gmtime()))
    return message


def run_phases(app: App, args: argparse.Namespace, stop: threading.Event) -> None:
    if not app.logged_on.wait(20.0):
        emit("error", text="no logon")
        stop.set()
        return
    base = 0
    for text in args.phase:
        spec = PhaseSpec.parse(text)
        phase = Phase(spec, base)
        base += spec.count
        app.phase = phase
        emit("phase_start", name=spec.name, t=time.monotonic())
        phase.begin()
        while not phase.all_sent and not stop.is_set():
            now_ns = time.monotonic_ns()
            if phase.may_send(now_ns):
                cl_ord_id = phase.take(now_ns)
                fix.Session.sendToTarget(order(cl_ord_id), app.session_id)
                continue
            due = phase.next_due_s()
            if spec.kind == "paced" and due is not None and due > 0:
                time.sleep(due)
            elif spec.kind == "closed":
                time.sleep(0.00005)
        limit = time.monotonic() + DRAIN_S
        while phase.received < phase.next and time.monotonic() < limit:
            time.sleep(0.01)
        app.phase = None
        emit("phase", **phase.finish(Path(args.out_dir)))
    emit("finished", t=time.monotonic())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.qf_rt", description=__doc__.split("\n\n")[0])
    p.add_argument("--role", required=True, choices=("client", "responder"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--work-dir", required=True)
    p.add_argument("--out-dir", default=".")
    p.add_argument("--phase", action="append", default=[])
    p.add_argument("--data-dictionary")
    p.add_argument("--sender", help=f"SenderCompID (default: {CLIENT_ID} as client, {RESPONDER_ID} as responder)")
    p.add_argument("--target", help=f"TargetCompID (default: {RESPONDER_ID} as client, {CLIENT_ID} as responder); "
                                    "a gateway between the two: GATEWAY")
    args = p.parse_args(argv)
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    client = args.role == "client"
    role = "initiator" if client else "acceptor"
    ours, theirs = (CLIENT_ID, RESPONDER_ID) if client else (RESPONDER_ID, CLIENT_ID)
    ours, theirs = args.sender or ours, args.target or theirs
    config = work_dir / f"{args.role}.cfg"
    config.write_text(settings_text(role, args.port, work_dir, args.data_dictionary, ours, theirs), encoding="ascii")
    app = App(responder=not client)
    settings = fix.SessionSettings(str(config))
    kind = fix.ThreadedSocketInitiator if client else fix.ThreadedSocketAcceptor
    engine = kind(app, fix.MemoryStoreFactory(), settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    engine.start()
    if not client:
        emit("listening", port=args.port)
    worker = threading.Thread(target=run_phases, args=(app, args, stop), daemon=True) if client else None
    if worker is not None:
        worker.start()
    try:
        while not stop.wait(0.05):
            if worker is not None and not worker.is_alive():
                break
    finally:
        stop.set()
        if worker is not None:
            worker.join(timeout=DRAIN_S + 5)
        engine.stop(True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
