"""supervisord asked over its XML-RPC Unix socket, with a timeout: what supervisorctl asks, without starting a
Python process for every question.

    supervisor = Supervisor(root / "var" / "supervisor.sock", password)
    supervisor.states()      # {"broker": ("RUNNING", 4711), ...}; {} when supervisord does not answer
    supervisor.stop()        # every program stopped at once, then supervisord shut down
    supervisor.shut_down(child, fallback=..., wait_s=30)   # the same for supervisord run as ``child``, to its end

A wait that polls supervisorctl pays an interpreter start (about 0.2 s) per
program per poll; this asks once for all of them. ``stop`` stops the programs
together (``stopAllProcesses``, as ``supervisorctl stop all`` does) before
``shutdown``: supervisord's own shutdown stops one program at a time and its
loop may sleep a second before it notices each exit, which made a clean stop
of a five-program host take 2-4 s. The deployment harness (``deployment.py``)
and the system tests' gateway (``tests/system/gateway.py``) use it.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport  # type: ignore[import-untyped]

from actors.tools.deploy import SUPERVISOR_USER
from bench.children import Child

#: The programs asked about are on this machine: an answer must come quickly (a stopped, not dead, supervisord
#: would otherwise hang the caller; supervisor's own transport has no timeout).
RPC_TIMEOUT_S = 10.0
#: ``stop`` waits this long for the programs (their ``stopwaitsecs`` is 10 s, after which supervisord kills them).
STOP_ALL_TIMEOUT_S = 15.0

#: What a supervisord that is gone, not yet up or not answering raises.
UNANSWERED = (OSError, http.client.HTTPException, xmlrpc.client.Error)


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over supervisord's Unix socket, with a timeout."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Transport(SupervisorTransport):  # type: ignore[misc]
    def __init__(self, password: str, path: Path, timeout_s: float) -> None:
        super().__init__(SUPERVISOR_USER, password, f"unix://{path}")
        self._get_connection = lambda: _UnixConnection(path, timeout_s)


class Supervisor:
    """One supervisord, reached through its socket file (from outside a host's namespace too)."""

    def __init__(self, socket_path: Path, password: str) -> None:
        self.socket_path = socket_path
        self.password = password

    def proxy(self, timeout_s: float = RPC_TIMEOUT_S) -> Any:
        """The XML-RPC proxy (``proxy().supervisor.getAllProcessInfo()``, ...)."""
        return xmlrpc.client.ServerProxy("http://127.0.0.1",
                                         transport=_Transport(self.password, self.socket_path, timeout_s))

    def states(self) -> dict[str, tuple[str, int]]:
        """Each program: (state, pid; 0 when it does not run); empty when supervisord does not answer."""
        try:
            infos = self.proxy().supervisor.getAllProcessInfo()
        except UNANSWERED:
            return {}
        return {info["name"]: (info["statename"], int(info["pid"])) for info in infos}

    def stop(self) -> bool:
        """Stop every program at once, then shut supervisord down; False when it did not answer (the caller
        then stops it another way)."""
        try:
            self.proxy(STOP_ALL_TIMEOUT_S).supervisor.stopAllProcesses(True)
            self.proxy().supervisor.shutdown()
        except UNANSWERED:
            return False
        return True

    def shut_down(self, child: Child, *, fallback: Callable[[], object], wait_s: float,
                  kill: Callable[[], None] | None = None) -> None:
        """supervisord, run as ``child``, stopped with its programs (they log out) if it still runs: ``stop``, or
        ``fallback`` (supervisorctl's shutdown) when the socket does not answer; ``kill`` (default: the child and
        every process it started) when it has not exited within ``wait_s``."""
        if child.exit_code is not None:
            return
        if not self.stop():
            fallback()
        try:
            child.popen.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            (kill or child.kill)()
        child.stopped = True
