"""The shape's floor: an actor that passes bytes between one TCP connection and its peer actor, nothing else.

    python -m bench.relay --broker tcp://127.0.0.1:P --name relay-client --peer relay-venue --listen PORT
    python -m bench.relay --broker tcp://127.0.0.1:P --name relay-venue --peer relay-client --connect PORT

Two relays and the broker stand where the gateway pair stands: the latency
client logs on to the venue through them, and every chunk read from one TCP
connection travels as one ``deliver`` through the broker to the other relay,
which writes it to its connection. No FIX is parsed, nothing is stored or
acknowledged: what an order costs here (latency, and CPU of the broker and
both relays) is what the gateway's shape (a process per session, the broker
between them) costs before any session work, and no session code can win it
back. ``python -m bench`` sets it beside the routed pair.

Prints ``{"event": "listening", "port": P}`` (``--listen``) or ``{"event":
"ready"}`` (``--connect``, which connects when the first bytes come from its
peer) once welcomed by the broker, and runs until it is stopped (a closed
connection is dropped; the venue side connects again for the next bytes).
"""

from __future__ import annotations

import argparse
import itertools
import socket
import sys
import time

import zmq

from bench import busfloor
from bench.procs import connect, emit
from broker import protocol
from broker.protocol import Envelope

#: How long ``--connect`` keeps trying the venue's port.
CONNECT_TIMEOUT_S = 30.0
READ_BYTES = 65536


class Relay:
    """One DEALER on the broker, one TCP connection; a poll loop that moves bytes between them.

    ``connect_port``: the venue's, connected to when the first bytes come from the peer (the client's
    Logon), as a proxy would: a connection opened at start would meet the venue's logon timeout when
    many relays start before their clients.
    """

    def __init__(self, broker: str, name: str, peer: str, connect_port: int | None = None) -> None:
        self.name, self.peer, self.connect_port = name, peer, connect_port
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.dealer = busfloor.dealer(self.context, broker, name)
        self.ids = itertools.count(1)
        self.heartbeat = Envelope(kind=protocol.HEARTBEAT, src=name, dst=protocol.BROKER, id=f"{name}-hb").encode()
        self.poller = zmq.Poller()
        self.poller.register(self.dealer, zmq.POLLIN)
        self.conn: socket.socket | None = None
        self.server: socket.socket | None = None

    def listen(self, port: int) -> int:
        """Accept one connection on ``port`` (0: any free one), from within ``serve``; the port."""
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(1)
        self.poller.register(self.server, zmq.POLLIN)
        return int(self.server.getsockname()[1])

    def _accept(self) -> None:
        assert self.server is not None
        self.attach(self.server.accept()[0])
        self.poller.unregister(self.server)
        self.server.close()
        self.server = None

    def attach(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the client's (``connect`` sets it itself)
        self.conn = conn
        self.poller.register(conn, zmq.POLLIN)

    def serve(self) -> None:
        """Until stopped: the connection's bytes to the peer, the peer's delivers to it, a heartbeat a
        second (the broker counts a silent actor down after a few), also while no connection is open."""
        next_heartbeat = time.monotonic() + protocol.HEARTBEAT_INTERVAL_S
        while True:
            wait_ms = max(0, int((next_heartbeat - time.monotonic()) * 1000) + 1)
            for sock, _ in self.poller.poll(wait_ms):
                if sock is self.dealer:
                    self._from_peer()
                elif self.server is not None and sock == self.server.fileno():  # a plain socket comes as its fd
                    self._accept()
                else:
                    self._to_peer()
            if time.monotonic() >= next_heartbeat:
                self.dealer.send(self.heartbeat)
                next_heartbeat = time.monotonic() + protocol.HEARTBEAT_INTERVAL_S

    def _to_peer(self) -> None:
        assert self.conn is not None
        try:
            data = self.conn.recv(READ_BYTES)
        except OSError:
            data = b""
        if not data:
            self._drop()
            return
        self.dealer.send(Envelope(kind=protocol.DELIVER, src=self.name, dst=self.peer, id=str(next(self.ids)),
                                  body=data).encode())

    def _drop(self) -> None:
        """The connection closed (a client's Logout, the venue's answer to it): dropped, not an exit. The
        relay runs until it is stopped, as an actor does; the venue side connects again for the next bytes."""
        assert self.conn is not None
        self.poller.unregister(self.conn)
        self.conn.close()
        self.conn = None

    def _from_peer(self) -> None:
        while True:
            try:
                env = protocol.decode(self.dealer.recv(zmq.NOBLOCK))
            except zmq.Again:
                return
            if env.kind != protocol.DELIVER or not isinstance(env.body, bytes):
                continue
            conn = self.conn
            if conn is None:
                if self.connect_port is None:
                    continue  # the client is gone: what the venue still says has nobody to go to
                conn = connect(self.connect_port, CONNECT_TIMEOUT_S)
                self.attach(conn)
            try:
                conn.sendall(env.body)
            except OSError:
                self._drop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", required=True, help="the broker's ROUTER endpoint")
    p.add_argument("--name", required=True)
    p.add_argument("--peer", required=True, help="the other relay's name")
    side = p.add_mutually_exclusive_group(required=True)
    side.add_argument("--listen", type=int, metavar="PORT", help="accept one connection (the client's)")
    side.add_argument("--connect", type=int, metavar="PORT", help="connect to the venue")
    args = p.parse_args(argv)
    relay = Relay(args.broker, args.name, args.peer, args.connect)
    busfloor.say_hello(relay.dealer, args.name)
    if args.connect is not None:
        emit("ready")
    else:
        emit("listening", port=relay.listen(args.listen))
    relay.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
