"""A non-blocking TCP socket as a driver transport, on the selector loop, plain or over TLS.

With a ``TlsLayer`` the driver still reads and writes plaintext: what the
socket brings goes through the layer, and what the layer has to say (its
handshake, its alerts, the close_notify) goes on the socket before anything
else. A TLS failure is a connection loss whose reason says so
("TLS handshake failed: ..."); ``on_secure`` is told once when the handshake
has completed.

Who reads the connection can change while it is open (``rebind``): an
acceptor reads a connection until its Logon names a session, then hands the
same transport, TLS state and all, to that session's driver.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from actors.shell.loop import Loop
from actors.shell.tls_settings import TlsError

if TYPE_CHECKING:
    from actors.shell.tls import TlsLayer

READ_CHUNK = 65536
#: Bytes queued for a counterparty that does not read them, at most; beyond, the connection is closed
#: (its messages are stored: it gets them again when it reconnects and asks). Without a bound a peer
#: that stops reading grows this process as fast as the session writes to it.
MAX_UNSENT_BYTES = 64 << 20
CLOSE_FLUSH_TIMEOUT_S = 1.0


class SocketTransport:
    """Reads into ``on_data``; writes through a buffer drained when writable."""

    def __init__(
        self,
        loop: Loop,
        sock: socket.socket,
        on_data: Callable[[bytes], None],
        on_lost: Callable[[str], None],
        *,
        tls: TlsLayer | None = None,
        on_secure: Callable[[], None] | None = None,
    ) -> None:
        self.loop = loop
        self.sock: socket.socket | None = sock
        self.tls = tls
        self._on_data = on_data
        self._on_lost = on_lost
        self._on_secure = on_secure
        self._wbuf = bytearray()
        #: (bytes, callback): call back once at most that many bytes wait unsent (``when_drained``).
        self._drained: tuple[int, Callable[[], None]] | None = None
        #: The peer's (address, port), or None when the socket no longer knew it.
        self.remote_address = _peer_of(sock)
        #: True when the connection ended because TLS failed (a handshake refused, a broken record).
        self.tls_failed = False
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop.add_reader(sock, self._readable)
        if tls is not None:
            self._start_tls(tls)

    def rebind(self, on_data: Callable[[bytes], None], on_lost: Callable[[str], None]) -> None:
        """From now on the connection's bytes and its end go to these callbacks."""
        self._on_data = on_data
        self._on_lost = on_lost

    def write(self, data: bytes) -> None:
        if self.sock is None:
            return
        if self.tls is not None:
            try:
                self.tls.send(data)
            except TlsError as exc:
                self._tls_lost(str(exc))
                return
            data = self.tls.outgoing()
        if data:
            self._send(data)

    @property
    def unsent_bytes(self) -> int:
        """Bytes written but not yet taken by the socket: what a long writer (a resend) paces itself by."""
        return len(self._wbuf)

    def when_drained(self, below_bytes: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, from the loop, when at most ``below_bytes`` wait unsent (back-pressure).

        One waiter at a time (a later call replaces it); a connection that ends calls no one.
        """
        if len(self._wbuf) <= below_bytes:
            self._drained = None
            self.loop.call_soon(callback)
        else:
            self._drained = (below_bytes, callback)

    def close(self) -> None:
        """Flush what is queued (bounded), say goodbye (TLS close_notify), close."""
        sock = self.sock
        if sock is None:
            return
        if self.tls is not None:
            self.tls.close()
            self._wbuf += self.tls.outgoing()
        self.sock = None
        self._drained = None
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

    def abort(self) -> None:
        """Close at once: nothing queued is sent, no goodbye, no ``on_lost`` (a connection refused unbound)."""
        sock = self.sock
        if sock is None:
            return
        self.sock = None
        self._wbuf.clear()
        self._drained = None
        self.loop.forget(sock)
        with contextlib.suppress(OSError):
            sock.close()

    def detach(self) -> socket.socket:
        """Stop watching the socket and give it up, open, to the caller (a plain connection handed to another
        process)."""
        sock = self.sock
        if sock is None or self.tls is not None or self._wbuf:
            raise RuntimeError("only an open plain connection with nothing queued can be handed over")
        self.sock = None
        self.loop.forget(sock)
        return sock

    # ------------------------------------------------------------ internals

    def _start_tls(self, tls: TlsLayer) -> None:
        try:
            tls.start()
        except TlsError as exc:
            self._tls_lost(str(exc))
            return
        first = tls.outgoing()  # a client's hello; a server says nothing first
        if first:
            self._send(first)

    def _send(self, data: bytes) -> None:
        """Ciphertext (or plain bytes) onto the socket, in order."""
        if self.sock is None:
            return
        if self._wbuf:
            self._wbuf += data
            if len(self._wbuf) > MAX_UNSENT_BYTES:
                self._lost(f"the counterparty has not read {len(self._wbuf)} bytes we sent "
                           f"(at most {MAX_UNSENT_BYTES} wait): disconnecting")
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
        if self.tls is not None:
            self._decrypt(self.tls, data)
        else:
            self._on_data(data)

    def _decrypt(self, tls: TlsLayer, data: bytes) -> None:
        was_secure = tls.secure
        try:
            plain = tls.receive(data)
        except TlsError as exc:
            self._tls_lost(str(exc))
            return
        reply = tls.outgoing()  # the rest of the handshake, session tickets, alerts
        if reply:
            self._send(reply)
        if tls.secure and not was_secure and self._on_secure is not None and self.sock is not None:
            self._on_secure()
        if plain and self.sock is not None:
            self._on_data(plain)
        if tls.closed_by_peer and self.sock is not None:
            self._lost("connection closed by the counterparty (TLS close_notify)")

    def _tls_lost(self, reason: str) -> None:
        """TLS failed: tell the peer why if the layer has an alert for it (best effort), then lose the connection."""
        self.tls_failed = True
        sock = self.sock
        alert = self.tls.outgoing() if self.tls is not None else b""
        if sock is not None and alert and not self._wbuf:
            with contextlib.suppress(OSError):
                sock.send(alert)
        self._lost(reason)

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
        drained = self._drained
        if drained is not None and len(self._wbuf) <= drained[0]:
            self._drained = None
            drained[1]()

    def _lost(self, reason: str) -> None:
        if self.sock is None:
            return
        self.abort()
        self._on_lost(reason)


def _peer_of(sock: socket.socket) -> tuple[str, int] | None:
    """The peer's (address, port) of a TCP socket; None when it is gone already or the socket is not TCP."""
    try:
        address = sock.getpeername()
    except OSError:
        return None
    return (str(address[0]), int(address[1])) if isinstance(address, tuple) else None
