"""A counterparty that stops reading cannot grow the process: the transport's unsent bytes are bounded."""

from __future__ import annotations

import socket

import pytest

from actors.shell import transport as transport_module
from actors.shell.loop import Loop
from actors.shell.transport import SocketTransport


def test_a_peer_that_never_reads_is_disconnected_once_the_unsent_bytes_pass_the_bound(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_module, "MAX_UNSENT_BYTES", 4 << 20)
    loop = Loop()
    ours, theirs = socket.socketpair()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the peer reads nothing at all
    lost: list[str] = []
    transport = SocketTransport(loop, ours, lambda data: None, lost.append)
    try:
        chunk = b"x" * 65536
        for _ in range(200):  # 12.5 MiB offered, far more than the socket buffers and the bound
            transport.write(chunk)
            if lost:
                break
        assert lost and "has not read" in lost[0], lost
        assert transport.sock is None, "the connection is still open"
    finally:
        theirs.close()
        transport.abort()


def test_a_peer_that_reads_slowly_but_keeps_up_is_not_disconnected() -> None:
    loop = Loop()
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    lost: list[str] = []
    transport = SocketTransport(loop, ours, lambda data: None, lost.append)
    received = 0
    try:
        for _ in range(200):
            transport.write(b"y" * 65536)
            loop.run_once(0)
            while True:
                try:
                    data = theirs.recv(1 << 20)
                except BlockingIOError:
                    break
                received += len(data)
        for _ in range(200):  # drain what is still queued, bounded
            loop.run_once(0.01)
            try:
                received += len(theirs.recv(1 << 20))
            except BlockingIOError:
                if received == 200 * 65536:
                    break
        assert lost == [] and received == 200 * 65536
    finally:
        theirs.close()
        transport.abort()
