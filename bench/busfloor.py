"""The bus floor: ZeroMQ round trips with no FIX in them, direct and through the broker.

    python -m bench.busfloor --direct tcp://127.0.0.1:0                 # a ROUTER that echoes every frame
    python -m bench.busfloor --broker tcp://127.0.0.1:P --name echo     # an actor that echoes every deliver

A routed order crosses the broker twice (the order one way, its
ExecutionReport the other): what one such crossing costs without any FIX
work is the share of the routed round trip that no session code can win
back. ``round_trips_direct`` times a DEALER -> ROUTER echo (the ZeroMQ
floor); ``round_trips_broker`` times a ``deliver`` to an echo actor and its
``deliver`` back, both through ``python -m broker`` (the bus floor). Both
send a body of ``MESSAGE_BYTES`` bytes, one at a time, back to back, like
``bench.echo`` for raw TCP.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import zmq

from bench.procs import emit
from broker import protocol
from broker.protocol import Envelope

MESSAGE_BYTES = 200
#: How long a round trip may take before the measurement gives up (the broker or the echo died).
TIMEOUT_MS = 5000


def dealer(context: zmq.Context[zmq.Socket[bytes]], endpoint: str, name: str) -> zmq.Socket[bytes]:
    """A DEALER named ``name`` on the broker's ROUTER, whose blocking receives give up after ``TIMEOUT_MS``."""
    sock: zmq.Socket[bytes] = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.ROUTING_ID, name.encode())
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sock.connect(endpoint)
    return sock


def say_hello(sock: zmq.Socket[bytes], name: str) -> None:
    """Register with the broker and wait for its welcome, as every actor does."""
    sock.send(Envelope(kind=protocol.HELLO, src=name, dst=protocol.BROKER, id=f"{name}-hello").encode())
    while protocol.decode(sock.recv()).kind != protocol.WELCOME:
        pass


def serve_direct(endpoint: str) -> None:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.bind(endpoint)
    emit("listening", endpoint=router.getsockopt_string(zmq.LAST_ENDPOINT))
    while True:
        router.send_multipart(router.recv_multipart())


def serve_broker(router_endpoint: str, name: str) -> None:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = dealer(context, router_endpoint, name)
    sock.setsockopt(zmq.RCVTIMEO, -1)
    say_hello(sock, name)
    emit("ready")
    while True:
        env = protocol.decode(sock.recv())
        if env.kind == protocol.DELIVER:
            sock.send(Envelope(kind=protocol.DELIVER, src=name, dst=env.src, id=env.id, body=env.body).encode())


def _timed(n: int, warmup: int, one: Callable[[int], None]) -> list[int]:
    """Times of ``one(i)`` in ns, back to back, after ``warmup`` untimed calls."""
    out = []
    for i in range(warmup + n):
        start = time.perf_counter_ns()
        one(i)
        if i >= warmup:
            out.append(time.perf_counter_ns() - start)
    return out


def round_trips_direct(endpoint: str, n: int, warmup: int) -> list[int]:
    """Round-trip times in ns of ``n`` frames of ``MESSAGE_BYTES`` through a direct ROUTER echo."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = dealer(context, endpoint, "pinger")
    payload = bytes(MESSAGE_BYTES)

    def one(i: int) -> None:
        sock.send(payload)
        sock.recv()

    try:
        return _timed(n, warmup, one)
    finally:
        sock.close()
        context.term()


def round_trips_broker(router_endpoint: str, echo: str, n: int, warmup: int) -> list[int]:
    """Round-trip times in ns of ``n`` delivers to the actor ``echo`` and back, through the broker."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    name = "bench-pinger"
    sock = dealer(context, router_endpoint, name)
    body = bytes(MESSAGE_BYTES)

    def one(i: int) -> None:
        sock.send(Envelope(kind=protocol.DELIVER, src=name, dst=echo, id=str(i), body=body).encode())
        while protocol.decode(sock.recv()).kind != protocol.DELIVER:
            pass  # a late welcome or an undeliverable (the echo not up yet) is not the reply

    try:
        say_hello(sock, name)
        return _timed(n, warmup, one)
    finally:
        sock.close()
        context.term()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.busfloor", description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--direct", metavar="ENDPOINT", help="bind a ROUTER here and echo every frame")
    where.add_argument("--broker", metavar="ROUTER", help="join this broker as an actor that echoes delivers")
    p.add_argument("--name", default="bench-echo", help="the echo actor's name (with --broker)")
    args = p.parse_args(argv)
    if args.direct:
        serve_direct(args.direct)
    else:
        serve_broker(args.broker, args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
