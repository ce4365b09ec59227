"""The floor: a blocking TCP echo server, and the client that times 200-byte round trips through it.

    python -m bench.echo --port 0            # serves one connection at a time, prints {"event": "listening"}

``round_trips(port, n)`` (called by ``python -m bench``) sends a 200-byte
message and reads it back, ``n`` times, on a blocking socket with
TCP_NODELAY: what any Python process on this machine pays for one round
trip over 127.0.0.1, the unit in which every hop of fixmesh is read.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time

from bench.procs import emit

MESSAGE_BYTES = 200


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def serve(port: int) -> None:
    listener = socket.create_server(("127.0.0.1", port))
    emit("listening", port=listener.getsockname()[1])
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            try:
                while True:
                    conn.sendall(_recv_exactly(conn, MESSAGE_BYTES))
            except (ConnectionError, OSError):
                continue


def round_trips(port: int, n: int, warmup: int = 1000) -> list[int]:
    """Round-trip times in ns of ``n`` 200-byte messages (after ``warmup`` untimed ones)."""
    payload = bytes(range(MESSAGE_BYTES))
    out = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(warmup + n):
            start = time.perf_counter_ns()
            sock.sendall(payload)
            _recv_exactly(sock, MESSAGE_BYTES)
            if i >= warmup:
                out.append(time.perf_counter_ns() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.echo", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    serve(p.parse_args(argv).port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
