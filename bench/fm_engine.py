"""Session-engine throughput, fixmesh side: one process per session, NewOrderSingle one way.

    python -m bench.fm_engine --role receiver --port 0 --store file --store-dir D --durability batch --count N
    python -m bench.fm_engine --role sender --port P --store file --store-dir D --durability batch --count N --burst 100

The receiver (acceptor) counts application messages and prints
``{"event": "done", "first": t, "last": t}`` (monotonic seconds) when the
``count``-th arrives. The sender (initiator) sends ``count`` orders as fast as
the socket takes them once logged on, ``--burst`` orders per driver call:
with ``--burst 1`` each order is one ``driver.send`` (one store sync and one
socket write each, as the gateway actors send today); with ``--burst 100``
100 orders are sent in one ``driver.batch()``, so the store syncs once and
the socket is written once for all of them (group commit). Both processes run the real shell: ``Loop``, ``Acceptor`` /
``Initiator``, ``SocketTransport``, ``SessionDriver`` and the store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from actors.fix.config import Role
from actors.fix.message import Message
from actors.fix.outputs import Output, StateChanged
from actors.fix.states import SessionState
from actors.shell import clock
from actors.shell.acceptor import Acceptor, SessionKey
from actors.shell.driver import SessionDriver
from actors.shell.initiator import Initiator
from actors.shell.loop import Loop
from actors.shell.process import configure_logging
from actors.store import Durability, open_store
from bench.fixmsg import BEGIN_STRING, NEW_ORDER_SINGLE, OrderFactory, acceptor_target, exit_on_sigterm, session
from bench.procs import emit

SENDER_ID, RECEIVER_ID = "BENCHI", "BENCHA"
#: Bytes queued in the sender's transport above which it stops producing until the socket drains.
SEND_QUEUE_LIMIT = 1 << 20


class Receiver:
    def __init__(self, count: int) -> None:
        self.count = count
        self.received = 0
        self.first = 0.0

    def on_message(self, driver: SessionDriver, message: Message) -> bool | None:
        self.received += 1
        if self.received == 1:
            self.first = time.monotonic()
        if self.received == self.count:
            emit("done", count=self.count, first=self.first, last=time.monotonic())
        return True

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        if isinstance(output, StateChanged) and output.new is SessionState.CONNECTED:
            emit("connected", t=time.monotonic())


class Sender:
    """A timer source: due whenever logged on, orders remain and the transport's queue is short."""

    def __init__(self, count: int, burst: int) -> None:
        self.count = count
        self.burst = burst
        self.sent = 0
        self.driver: SessionDriver | None = None
        self.active = False
        self.orders = OrderFactory()

    def on_message(self, driver: SessionDriver, message: Message) -> bool | None:
        return True

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        if isinstance(output, StateChanged) and output.new is SessionState.CONNECTED:
            emit("connected", t=time.monotonic())
            self.active = True

    def next_deadline(self) -> float | None:
        driver = self.driver
        if not self.active or driver is None or driver.transport is None or self.sent >= self.count:
            return None
        # The transport's write buffer is private; reading it here is the bench's business only.
        queued = len(getattr(driver.transport, "_wbuf", b""))
        return 0.0 if queued < SEND_QUEUE_LIMIT else None

    def on_timer(self) -> None:
        driver = self.driver
        assert driver is not None
        n = min(self.burst if self.burst > 1 else 100, self.count - self.sent)
        now = clock.now()
        if self.sent == 0:
            emit("sending", t=time.monotonic())
        if self.burst > 1:
            with driver.batch():
                for _ in range(n):
                    self.sent += 1
                    driver.send(NEW_ORDER_SINGLE, self.orders.body(self.sent, now.utc_ns))
        else:
            for _ in range(n):
                self.sent += 1
                driver.send(NEW_ORDER_SINGLE, self.orders.body(self.sent, now.utc_ns))
        if self.sent >= self.count:
            emit("sent", t=time.monotonic(), count=self.sent)


def run(args: argparse.Namespace) -> int:
    exit_on_sigterm()
    store_dir = args.store_dir or tempfile.mkdtemp(prefix="fm-engine-")
    ours, theirs = (SENDER_ID, RECEIVER_ID) if args.role == "sender" else (RECEIVER_ID, SENDER_ID)
    session_id = f"{BEGIN_STRING}:{ours}->{theirs}"
    store = open_store(args.store, store_dir if args.store == "file" else None, session_id,
                       now_ns=clock.now().utc_ns, durability=Durability(args.durability))
    role = Role.INITIATOR if args.role == "sender" else Role.ACCEPTOR
    sess = session(role, ours, theirs, args.data_dictionary, next_sender=store.next_sender_seq,
                   next_target=store.next_target_seq)
    loop = Loop()
    app: Sender | Receiver = Sender(args.count, args.burst) if args.role == "sender" else Receiver(args.count)
    driver = SessionDriver(sess, store, app, name=session_id)
    loop.add_timer_source(driver)
    try:
        if isinstance(app, Sender):
            app.driver = driver
            loop.add_timer_source(app)
            initiator = Initiator(loop, driver, "127.0.0.1", args.port, reconnect_interval_s=0.2)
            loop.add_timer_source(initiator)
            initiator.start()
        else:
            target = acceptor_target(loop, driver)
            wanted = SessionKey(BEGIN_STRING, ours, theirs)
            acceptor = Acceptor(loop, "127.0.0.1", args.port, lambda key: target if key == wanted else None)
            emit("listening", port=acceptor.port)
        loop.run(max_wait_s=1.0)
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fm_engine", description=__doc__.split("\n\n")[0])
    p.add_argument("--role", required=True, choices=("sender", "receiver"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--store", default="memory", choices=("memory", "file"))
    p.add_argument("--store-dir")
    p.add_argument("--durability", default="batch", choices=[d.value for d in Durability])
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--burst", type=int, default=1, help="orders per driver call (1 = one driver.send each)")
    p.add_argument("--data-dictionary")
    args = p.parse_args(argv)
    configure_logging("WARNING")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
