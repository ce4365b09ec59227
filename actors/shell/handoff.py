"""Several acceptor sessions on one TCP port, each still its own process.

Sessions told apart only by their session qualifier (the same BeginString
and CompIDs, e.g. two desks behind one pair of CompIDs) must share the port
the counterparty connects to. A listener process (``actors.gateway.listener``)
accepts the connection, reads the Logon, picks the session whose identity
(qualifier included) it names, and hands the connected socket itself,
with the bytes already read, to that session's actor over a Unix socket
(``SCM_RIGHTS``). From then on the session actor owns the connection exactly
as if it had accepted it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path

from actors.shell.acceptor import DriverTarget
from actors.shell.loop import Loop

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

    def take(self, sock: socket.socket, data: bytes) -> None:
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
        loop.add_reader(self.listener, self._accept)
        log.info("%s: taking connections handed over at %s", target.name, path)

    def _accept(self) -> None:
        try:
            link, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        with link:
            link.settimeout(HANDOFF_TIMEOUT_S)
            try:
                data, fds, _flags, _addr = socket.recv_fds(link, MAX_INITIAL_BYTES, 1)
            except OSError as exc:
                log.warning("%s: a handover failed: %s", self.target.name, exc)
                return
        for fd in fds:
            sock = socket.socket(fileno=fd)
            if self.target.connected:
                log.warning("%s: already connected; a second connection for it is closed", self.target.name)
                sock.close()
            else:
                sock.setblocking(False)
                self.target.take(sock, data)

    def close(self) -> None:
        self.loop.forget(self.listener)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
