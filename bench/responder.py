"""A minimal venue: a fixmesh acceptor that answers each NewOrderSingle with one ExecutionReport.

    python -m bench.responder --port P [--sender VENUE] [--target GATEWAY ...] [--next-target N] [--data-dictionary F]

The benchmark's stand-in for the venue simulator (``actors/sim/venue_sim.py``,
written separately): memory store, no logs of messages, the ExecutionReport
sent from within the delivery of the order, so it leaves in the same socket
write as anything else the order's batch produced. Prints
``{"event": "logon", "t": ..., "session": ...}`` (monotonic seconds) each
time a session becomes CONNECTED and ``{"event": "disconnected"}`` when its
connection ends: the recovery benchmark times a restarting counterparty by
the former. ``--target`` repeated makes one session per counterparty on the
same port (one process for the scale section's N Driven sessions, not N).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from actors.fix.config import Role
from actors.fix.message import Message
from actors.fix.outputs import Output, StateChanged
from actors.fix.states import OFFLINE, SessionState
from actors.fix.timefmt import TimestampFormatter
from actors.gateway.trace import OrderTrace
from actors.shell import clock
from actors.shell.acceptor import Acceptor, SessionKey
from actors.shell.driver import SessionDriver
from actors.shell.loop import Loop
from actors.shell.process import configure_logging
from actors.store import MemoryStore
from bench.fixmsg import (
    BEGIN_STRING,
    EXECUTION_REPORT,
    NEW_ORDER_SINGLE,
    acceptor_target,
    execution_report,
    exit_on_sigterm,
    session,
)
from bench.procs import emit


class Venue:
    def __init__(self) -> None:
        self.exec_id = 0
        self.ts = TimestampFormatter(3)
        #: ``FIXMESH_TRACE_DIR``: the venue's step of each order (``actors.gateway.trace``); closed at exit.
        self.trace = OrderTrace.from_environment("venue-sim")

    def on_message(self, driver: SessionDriver, message: Message) -> bool | None:
        if message.msg_type == NEW_ORDER_SINGLE:
            if self.trace is not None:
                self.trace.mark("venue", message.get(11))
            self.exec_id += 1
            fields = {t: v for t, v in message.fields if t in (11, 38, 54, 55)}
            driver.send(EXECUTION_REPORT, execution_report(fields, self.exec_id, clock.now().utc_ns, self.ts))
        return True

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        if isinstance(output, StateChanged):
            if output.new is SessionState.CONNECTED:
                emit("logon", t=time.monotonic(), next_target=output.next_target, session=driver.name)
            elif output.new in OFFLINE and output.old not in OFFLINE:
                emit("disconnected", t=time.monotonic(), session=driver.name)


def run(args: argparse.Namespace) -> int:
    exit_on_sigterm()
    loop = Loop()
    venue = Venue()
    targets: dict[SessionKey, Any] = {}
    for counterparty in args.target or ["GATEWAY"]:
        session_id = f"{BEGIN_STRING}:{args.sender}->{counterparty}"
        store = MemoryStore(session_id, now_ns=clock.now().utc_ns)
        if args.next_target > 1:
            store.set_next_target_seq(args.next_target)
        sess = session(Role.ACCEPTOR, args.sender, counterparty, args.data_dictionary,
                       next_sender=store.next_sender_seq, next_target=store.next_target_seq)
        driver = SessionDriver(sess, store, venue, name=session_id)
        loop.add_timer_source(driver)
        targets[SessionKey(BEGIN_STRING, args.sender, counterparty)] = acceptor_target(loop, driver)
    acceptor = Acceptor(loop, "127.0.0.1", args.port, targets.get)
    emit("listening", port=acceptor.port)
    try:
        loop.run(max_wait_s=1.0)
    finally:
        if venue.trace is not None:
            venue.trace.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.responder", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sender", default="VENUE")
    p.add_argument("--target", action="append", help="a counterparty's CompID, one session each "
                                                      "(repeatable; default GATEWAY)")
    p.add_argument("--next-target", type=int, default=1, help="the MsgSeqNum every session expects first")
    p.add_argument("--data-dictionary")
    args = p.parse_args(argv)
    configure_logging("WARNING")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
