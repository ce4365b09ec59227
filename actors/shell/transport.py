"""A non-blocking TCP socket as a driver transport, on the selector loop."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

from actors.shell.loop import Loop

READ_CHUNK = 65536
CLOSE_FLUSH_TIMEOUT_S = 1.0


class SocketTransport:
    """Reads into ``on_data``; writes through a buffer drained when writable."""

    def __init__(
        self,
        loop: Loop,
        sock: socket.socket,
        on_data: Callable[[bytes], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self.loop = loop
        self.sock: socket.socket | None = sock
        self._on_data = on_data
        self._on_lost = on_lost
        self._wbuf = bytearray()
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop.add_reader(sock, self._readable)

    def write(self, data: bytes) -> None:
        if self.sock is None:
            return
        if self._wbuf:
            self._wbuf += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(f"write failed: {exc}")
            return
        if sent < len(data):
            self._wbuf += data[sent:]
            self.loop.add_writer(self.sock, self._writable)

    def close(self) -> None:
        sock = self.sock
        if sock is None:
            return
        self.sock = None
        self.loop.forget(sock)
        if self._wbuf:
            try:
                sock.settimeout(CLOSE_FLUSH_TIMEOUT_S)
                sock.sendall(self._wbuf)
            except OSError:
                pass
            self._wbuf.clear()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            data = sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(f"read failed: {exc}")
            return
        if not data:
            self._lost("connection closed by the counterparty")
            return
        self._on_data(data)

    def _writable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            sent = sock.send(self._wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(f"write failed: {exc}")
            return
        del self._wbuf[:sent]
        if not self._wbuf:
            self.loop.remove_writer(sock)

    def _lost(self, reason: str) -> None:
        sock = self.sock
        if sock is None:
            return
        self.sock = None
        self._wbuf.clear()
        self.loop.forget(sock)
        sock.close()
        self._on_lost(reason)
