"""An acceptor reads a bounded amount from a connection that has not logged on."""

from __future__ import annotations

import socket

from actors.shell.acceptor import MAX_BYTES_BEFORE_LOGON, Acceptor
from actors.shell.loop import Loop


def closed_by_peer(sock: socket.socket, loop: Loop, turns: int = 200) -> bool:
    """Run the loop until the acceptor closes ``sock`` (recv gives b"" or a reset), at most ``turns`` turns."""
    sock.setblocking(False)
    for _ in range(turns):
        loop.run_once(0.01)
        try:
            if sock.recv(65536) == b"":
                return True
        except BlockingIOError:
            continue
        except ConnectionResetError:
            return True
    return False


def test_bytes_without_a_logon_beyond_the_limit_close_the_connection() -> None:
    loop = Loop()
    acceptor = Acceptor(loop, "127.0.0.1", 0, lambda key: None, logon_timeout_s=60.0)
    try:
        with socket.create_connection(("127.0.0.1", acceptor.port), timeout=5.0) as sock:
            sock.sendall(b"x" * (MAX_BYTES_BEFORE_LOGON // 2))
            assert not closed_by_peer(sock, loop, turns=20), "closed before the limit"
            sock.sendall(b"x" * MAX_BYTES_BEFORE_LOGON)
            assert closed_by_peer(sock, loop), "the acceptor kept reading past the limit"
    finally:
        acceptor.close()
        loop.close()
