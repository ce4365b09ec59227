"""Round-trip client on fixmesh's session engine: NewOrderSingle out, ExecutionReport back.

    python -m bench.rt_client --port P --sender TRADER --target GATEWAY --out-dir D \
        --phase warm=paced:1000:1 --phase r1000=paced:1000:10 --phase max=closed:200:20000

The client is an initiator with a memory store on a blocking socket and a
``select`` loop of its own, so its pacing has microsecond resolution (the
actors' ``Loop`` polls with millisecond timeouts). Phases run one after the
other on the same session (``bench.latency``); each prints
``{"event": "phase_start"}`` and ``{"event": "phase", ...}`` and writes its
latencies to ``<out-dir>/<name>.lat``. After the last phase the client logs
out and prints ``{"event": "finished"}``.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import socket
import sys
import time
from pathlib import Path

from actors import clock
from actors.driver import SessionDriver
from actors.fix.config import Role
from actors.fix.message import Message
from actors.fix.outputs import Output, StateChanged
from actors.fix.states import SessionState
from actors.process import configure_logging
from actors.store import MemoryStore
from bench.fixmsg import (
    BEGIN_STRING,
    CL_ORD_ID,
    EXECUTION_REPORT,
    NEW_ORDER_SINGLE,
    OrderFactory,
    exit_on_sigterm,
    session,
)
from bench.latency import Phase, PhaseSpec
from bench.procs import emit

#: Orders sent per wake-up at most, so replies are read between bursts.
MAX_SENDS_PER_WAKE = 256
#: How long to wait for the last replies of a phase.
DRAIN_S = 60.0


class BlockingTransport:
    """The driver's transport over a blocking socket: ``sendall`` gives natural back pressure."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class Client:
    def __init__(self) -> None:
        self.phase: Phase | None = None
        self.connected = False
        self.closed = False

    def on_message(self, driver: SessionDriver, message: Message) -> bool | None:
        if self.phase is not None and message.msg_type == EXECUTION_REPORT:
            cl_ord_id = message.get_int(CL_ORD_ID)
            if cl_ord_id is not None:
                self.phase.reply(cl_ord_id, time.monotonic_ns())
        return True

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        if isinstance(output, StateChanged):
            self.connected = output.new is SessionState.CONNECTED
            if output.old is SessionState.CONNECTED:
                self.closed = True


def connect(port: int, timeout_s: float) -> socket.socket:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)
            return sock
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        store = MemoryStore(f"{BEGIN_STRING}:{args.sender}->{args.target}", now_ns=clock.now().utc_ns)
        self.app = Client()
        self.driver = SessionDriver(session(Role.INITIATOR, args.sender, args.target, args.data_dictionary),
                                    store, self.app, name="rt-client")
        self.sock = connect(args.port, args.connect_timeout)
        self.orders = OrderFactory()

    def turn(self, wait_s: float) -> None:
        """Wait at most ``wait_s`` for input, feed it, run due timers."""
        deadline = self.driver.next_deadline()
        if deadline is not None:
            wait_s = min(wait_s, max(0.0, deadline - time.monotonic()))
        readable, _, _ = select.select([self.sock], [], [], max(0.0, wait_s))
        if readable:
            data = self.sock.recv(1 << 16)
            if not data:
                raise SystemExit("the counterparty closed the connection")
            self.driver.feed(data)
        deadline = self.driver.next_deadline()
        if deadline is not None and deadline <= time.monotonic():
            self.driver.on_timer()
        if self.driver.transport is None:
            raise SystemExit("the session disconnected")

    def logon(self) -> None:
        self.driver.attach(BlockingTransport(self.sock))
        limit = time.monotonic() + self.args.connect_timeout
        while not self.app.connected:
            if time.monotonic() > limit:
                raise SystemExit("no Logon reply")
            self.turn(0.1)
        emit("connected", t=time.monotonic())

    def run_phase(self, spec: PhaseSpec, base_id: int) -> dict[str, object]:
        phase = Phase(spec, base_id)
        self.app.phase = phase
        emit("phase_start", name=spec.name, t=time.monotonic())
        phase.begin()
        while not phase.all_sent:
            sent = 0
            now_ns = time.monotonic_ns()
            while sent < MAX_SENDS_PER_WAKE and phase.may_send(now_ns):
                cl_ord_id = phase.take(now_ns)
                self.driver.send(NEW_ORDER_SINGLE, self.orders.body(cl_ord_id, time.time_ns()))
                sent += 1
                now_ns = time.monotonic_ns()
            due = phase.next_due_s()
            if spec.kind == "paced":
                self.turn(0.0 if sent >= MAX_SENDS_PER_WAKE else min(0.05, due if due is not None else 0.05))
            else:
                self.turn(0.05)
        limit = time.monotonic() + DRAIN_S
        while phase.received < phase.next and time.monotonic() < limit:
            self.turn(0.05)
        result = phase.finish(Path(self.args.out_dir))
        self.app.phase = None
        emit("phase", **result)
        return result

    def close(self) -> None:
        if self.driver.transport is not None:
            self.driver.logout("benchmark done")
            limit = time.monotonic() + 2.0
            with contextlib.suppress(SystemExit, OSError):
                while self.driver.transport is not None and time.monotonic() < limit:
                    self.turn(0.05)
        with contextlib.suppress(OSError):
            self.sock.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rt_client", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sender", default="TRADER")
    p.add_argument("--target", default="GATEWAY")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--phase", action="append", default=[], help="name=paced:RATE:SECONDS or name=closed:WINDOW:N")
    p.add_argument("--data-dictionary")
    p.add_argument("--connect-timeout", type=float, default=20.0)
    p.add_argument("--start-id", type=int, default=0, help="ClOrdIDs start after this number")
    args = p.parse_args(argv)
    configure_logging("WARNING")
    exit_on_sigterm()
    runner = Runner(args)
    try:
        runner.logon()
        base = args.start_id
        for text in args.phase:
            spec = PhaseSpec.parse(text)
            runner.run_phase(spec, base)
            base += spec.count
    finally:
        runner.close()
    emit("finished", t=time.monotonic())
    return 0


if __name__ == "__main__":
    sys.exit(main())
