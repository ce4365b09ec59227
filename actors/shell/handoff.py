"""Several acceptor sessions on one TCP port, each still its own process.

Sessions told apart only by their session qualifier (the same BeginString
and CompIDs, e.g. two desks behind one pair of CompIDs) must share the port
the counterparty connects to. A listener process (``actors.gateway.listener``)
accepts the connection, reads the Logon, picks the session whose identity
(qualifier included) it names, and hands the connected socket itself,
with the bytes already read, to that session's actor over a Unix socket
(``SCM_RIGHTS``). From then on the session actor owns the connection exactly
as if it had accepted it.

Only a plain TCP connection can be handed over: TLS state lives in the
process that made the handshake and cannot follow the descriptor, so the
topology refuses TLS on a session whose port is shared.

Receiving a connection takes file descriptors (the link, the connection);
without any left the receiver rests like an acceptor
(``actors.shell.acceptor.ListenerRest``) and the process carries on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path

from actors.shell.acceptor import OUT_OF_DESCRIPTORS, DriverTarget, ListenerRest
from actors.shell.loop import Loop
from actors.shell.transport import SocketTransport

log = logging.getLogger("fixmesh.handoff")

HANDOFF_TIMEOUT_S = 2.0
MAX_INITIAL_BYTES = 1 << 20


def handoff_path(runtime_dir: Path, session: str) -> Path:
    return runtime_dir / f"{session}.sock"


class HandoffTarget:
    """The listener's view of a session that lives in another process."""

    connected = False  # only the session's own process knows; it refuses a second connection itself

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path

    def refusal_for(self, peer_ip: str) -> str | None:
        return None  # the session's own process asks its policy when the connection arrives (HandoffReceiver)

    def take(self, transport: SocketTransport, data: bytes) -> None:
        sock = transport.detach()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as link:
                link.settimeout(HANDOFF_TIMEOUT_S)
                link.connect(str(self.path))
                socket.send_fds(link, [data[:MAX_INITIAL_BYTES]], [sock.fileno()])
        except OSError as exc:
            log.warning("session %s is not taking connections (%s: %s); connection closed",
                        self.name, self.path, exc.strerror or exc)
        finally:
            sock.close()  # the session's process holds its own copy of the descriptor


class HandoffReceiver:
    """The session actor's end: connections handed over by the listener."""

    def __init__(self, loop: Loop, path: Path, target: DriverTarget) -> None:
        self.loop = loop
        self.path = path
        self.target = target
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a process that was killed
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        os.chmod(path, 0o600)
        self.listener.listen(16)
        self.listener.setblocking(False)
        self._rest = ListenerRest(loop, self.listener, self._accept, f"{target.name} hand-over at {path}")
        loop.add_reader(self.listener, self._accept)
        log.info("%s: taking connections handed over at %s", target.name, path)

    def _accept(self) -> None:
        try:
            link, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno in OUT_OF_DESCRIPTORS:
                self._rest.begin(exc.strerror or str(exc))
            else:
                log.warning("%s: accepting a handover failed: %s", self.target.name, exc)
            return
        with link:
            link.settimeout(HANDOFF_TIMEOUT_S)
            try:
                data, fds, flags, _addr = socket.recv_fds(link, MAX_INITIAL_BYTES, 1)
            except OSError as exc:
                log.warning("%s: a handover failed: %s", self.target.name, exc)
                return
        if flags & socket.MSG_CTRUNC:
            # The kernel had no descriptor to give this process: the connection is gone with the message.
            log.warning("%s: a handed-over connection was lost: no file descriptor left to receive it",
                        self.target.name)
        for fd in fds:
            sock = socket.socket(fileno=fd)
            if self.target.connected:
                log.warning("%s: already connected; a second connection for it is closed", self.target.name)
                sock.close()
                continue
            transport = SocketTransport(self.loop, sock, _unbound_data, _unbound_lost)
            address = transport.remote_address
            if address is not None and (refusal := self.target.refusal_for(address[0])) is not None:
                log.warning("%s: closing connection %s:%d: %s", self.target.name, address[0], address[1], refusal)
                transport.abort()
                continue
            self.target.take(transport, data)

    def close(self) -> None:
        self._rest.close()
        self.loop.forget(self.listener)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _unbound_data(data: bytes) -> None:
    """A received connection's bytes before its session takes it (``take`` comes first; nothing arrives)."""


def _unbound_lost(reason: str) -> None:
    """A received connection's end before its session takes it."""
