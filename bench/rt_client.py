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

``Runner`` drives one session here and N sessions in ``bench.multi_client``
(the scale section): the same loop, pacing and timing either way.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import select
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from actors.fix.config import Role
from actors.fix.message import Message
from actors.fix.outputs import Output, StateChanged
from actors.fix.states import SessionState
from actors.gateway.trace import OrderTrace
from actors.shell import clock
from actors.shell.driver import SessionDriver
from actors.shell.process import configure_logging
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
from bench.procs import connect, emit

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
        #: ``FIXMESH_TRACE_DIR``: the client's ``send`` and ``recv`` steps of each order (``actors.gateway.trace``).
        self.trace: OrderTrace | None = None

    def on_message(self, driver: SessionDriver, message: Message) -> bool | None:
        if self.phase is not None and message.msg_type == EXECUTION_REPORT:
            cl_ord_id = message.get_int(CL_ORD_ID)
            if cl_ord_id is not None:
                self.phase.reply(cl_ord_id, time.monotonic_ns())
                if self.trace is not None:
                    self.trace.mark("recv", str(cl_ord_id))
        return True

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        if isinstance(output, StateChanged):
            self.connected = output.new is SessionState.CONNECTED
            if output.old is SessionState.CONNECTED:
                self.closed = True


class ClientSession:
    """One initiator session on a blocking socket of its own, with the app that times its replies."""

    def __init__(self, port: int, sender: str, target: str, dictionary_path: str | None, connect_timeout_s: float,
                 name: str = "rt-client", host: str = "127.0.0.1") -> None:
        store = MemoryStore(f"{BEGIN_STRING}:{sender}->{target}", now_ns=clock.now().utc_ns)
        self.app = Client()
        self.driver = SessionDriver(session(Role.INITIATOR, sender, target, dictionary_path), store, self.app,
                                    name=name)
        self.sock = connect(port, connect_timeout_s, host)

    def read(self) -> bool:
        """Feed what the socket holds; False once the counterparty closed the connection."""
        data = self.sock.recv(1 << 16)
        if not data:
            return False
        self.driver.feed(data)
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Runner:
    """Phases of orders over one or more sessions, in one ``select`` loop.

    The phase's orders go to the sessions in turn (order ``i`` to session
    ``i mod n``), so a paced phase's rate is the total over all sessions and
    each gets an equal share; ClOrdIDs are unique across sessions, so one
    ``Phase`` times every reply whichever session brings it.
    """

    def __init__(self, sessions: list[ClientSession], out_dir: Path, connect_timeout_s: float) -> None:
        self.sessions = sessions
        self.out_dir = out_dir
        self.connect_timeout_s = connect_timeout_s
        self.by_fd = {s.sock.fileno(): s for s in sessions}
        self.orders = OrderFactory()
        self.sent_total = 0
        self.trace = OrderTrace.from_environment("trader")
        for sess in sessions:
            sess.app.trace = self.trace
        self.closing = False

    def turn(self, wait_s: float, between: Callable[[], object] | None = None) -> None:
        """Wait at most ``wait_s`` for input, feed it, run due timers.

        ``between`` runs after each session's input and timer: fifty sessions' heartbeats fall due
        together, and a paced phase's next order must not wait for all of them.
        """
        active = [s for s in self.sessions if s.driver.transport is not None]
        if len(active) < len(self.sessions) and not self.closing:
            raise SystemExit("a session disconnected")
        deadlines = [d for d in (s.driver.next_deadline() for s in active) if d is not None]
        if deadlines:
            wait_s = min(wait_s, max(0.0, min(deadlines) - time.monotonic()))
        readable, _, _ = select.select([s.sock for s in active], [], [], max(0.0, wait_s))
        for sock in readable:
            sess = self.by_fd[sock.fileno()]
            if not sess.read():
                if not self.closing:
                    raise SystemExit("the counterparty closed the connection")
                sess.driver.connection_lost("closed by the counterparty")
            if between is not None:
                between()
        now = time.monotonic()
        for sess in active:
            deadline = sess.driver.next_deadline()
            if deadline is not None and deadline <= now and sess.driver.transport is not None:
                sess.driver.on_timer()
                if between is not None:
                    between()
        if not self.closing and any(s.driver.transport is None for s in active):
            raise SystemExit("the session disconnected")

    def logon(self) -> None:
        for sess in self.sessions:
            sess.driver.attach(BlockingTransport(sess.sock))
        limit = time.monotonic() + self.connect_timeout_s
        while not all(s.app.connected for s in self.sessions):
            if time.monotonic() > limit:
                raise SystemExit("no Logon reply")
            self.turn(0.1)
        emit("connected", t=time.monotonic(), sessions=len(self.sessions))

    def run_phase(self, spec: PhaseSpec, base_id: int) -> dict[str, object]:
        phase = Phase(spec, base_id)
        for sess in self.sessions:
            sess.app.phase = phase
        emit("phase_start", name=spec.name, t=time.monotonic())
        cpu_start = time.process_time()
        # The cyclic collector pauses the client for about a millisecond now and then: a send due then
        # goes late. A phase makes no cycles worth collecting; they are collected after it.
        gc.disable()
        between = functools.partial(self.send_due, phase)
        try:
            phase.begin()
            while not phase.all_sent:
                sent = self.send_due(phase)
                due = phase.next_due_s()
                if spec.kind == "paced":
                    self.turn(0.0 if sent >= MAX_SENDS_PER_WAKE else min(0.05, due if due is not None else 0.05),
                              between)
                else:
                    self.turn(0.05, between)
            limit = time.monotonic() + DRAIN_S
            while phase.received < phase.next and time.monotonic() < limit:
                self.turn(0.05)
        finally:
            gc.enable()
            gc.collect()
        result = phase.finish(self.out_dir)
        # The client's own CPU: with many sessions on a small machine, whether it kept up or competed.
        result["client_cpu_s"] = time.process_time() - cpu_start
        for sess in self.sessions:
            sess.app.phase = None
        emit("phase", **result)
        return result

    def send_due(self, phase: Phase) -> int:
        """Send the orders of ``phase`` that are due (at most ``MAX_SENDS_PER_WAKE``); returns how many."""
        sent = 0
        now_ns = time.monotonic_ns()
        while sent < MAX_SENDS_PER_WAKE and phase.may_send(now_ns):
            cl_ord_id = phase.take(now_ns)
            driver = self.sessions[self.sent_total % len(self.sessions)].driver
            if self.trace is not None:
                self.trace.mark("send", str(cl_ord_id))  # before: the Handler may read it before send returns
            driver.send(NEW_ORDER_SINGLE, self.orders.body(cl_ord_id, time.time_ns()))
            self.sent_total += 1
            sent += 1
            now_ns = time.monotonic_ns()
        return sent

    def run(self, phases: list[str], start_id: int = 0) -> None:
        """Log on, run the phases one after the other (ClOrdIDs continue across them), log out."""
        try:
            self.logon()
            base = start_id
            for text in phases:
                spec = PhaseSpec.parse(text)
                self.run_phase(spec, base)
                base += spec.count
        finally:
            self.close()
        emit("finished", t=time.monotonic())

    def close(self) -> None:
        self.closing = True
        for sess in self.sessions:
            if sess.driver.transport is not None:
                sess.driver.logout("benchmark done")
        limit = time.monotonic() + 2.0
        with contextlib.suppress(SystemExit, OSError):
            while any(s.driver.transport is not None for s in self.sessions) and time.monotonic() < limit:
                self.turn(0.05)
        for sess in self.sessions:
            sess.close()
        if self.trace is not None:
            self.trace.close()


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
    client = ClientSession(args.port, args.sender, args.target, args.data_dictionary, args.connect_timeout)
    Runner([client], Path(args.out_dir), args.connect_timeout).run(args.phase, args.start_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
