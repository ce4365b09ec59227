"""What every fixmesh process does around its loop: stop cleanly on SIGTERM or SIGINT.

A signal only sets a flag and wakes the poll through a socket pair
(``signal.set_wakeup_fd``), so the loop finishes the work it has in hand and
the process shuts down in an orderly way (Logout, store closed).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable

from actors.shell.loop import Loop

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Readable one-line records on stderr (supervisord keeps them in the program's log)."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format=LOG_FORMAT)


class StopSignals:
    """SIGTERM and SIGINT set ``requested`` and call ``on_stop`` once, from the loop."""

    def __init__(self, loop: Loop, on_stop: Callable[[], None] | None = None) -> None:
        self.loop = loop
        self.requested = False
        self._on_stop = on_stop
        self._notified = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        self._previous = {sig: signal.signal(sig, self._note) for sig in (signal.SIGTERM, signal.SIGINT)}
        loop.add_reader(self._wake_r, self._woken)

    def _note(self, signum: int, _frame: object) -> None:
        self.requested = True

    def _woken(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            self._wake_r.recv(4096)
        if self.requested and not self._notified:
            self._notified = True
            if self._on_stop is not None:
                self._on_stop()

    def close(self) -> None:
        self.loop.forget(self._wake_r)
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._wake_r.close()
        self._wake_w.close()


def run_until_signalled(loop: Loop, max_wait_s: float = 1.0) -> None:
    """Run ``loop`` until SIGTERM or SIGINT."""
    signals = StopSignals(loop)
    try:
        while not signals.requested:
            loop.run_once(max_wait_s)
    finally:
        signals.close()
