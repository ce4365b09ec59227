"""What every fixmesh actor process does around its loop: run until SIGTERM or SIGINT.

A signal only sets a flag and wakes the poll through a socket pair
(``signal.set_wakeup_fd``), so the loop finishes the work it has in hand and
the process shuts down in an orderly way (Logout, store closed).
"""

from __future__ import annotations

import contextlib
import signal
import socket

from actors.loop import Loop


def run_until_signalled(loop: Loop, max_wait_s: float = 1.0) -> int:
    """Run ``loop`` until SIGTERM or SIGINT; returns the signal number."""
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    received: list[int] = []

    def note(signum: int, _frame: object) -> None:
        received.append(signum)

    def drain() -> None:
        with contextlib.suppress(BlockingIOError):
            wake_r.recv(4096)

    previous_fd = signal.set_wakeup_fd(wake_w.fileno())
    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGTERM, signal.SIGINT)}
    loop.add_reader(wake_r, drain)
    try:
        while not received:
            loop.run_once(max_wait_s)
    finally:
        loop.forget(wake_r)
        signal.set_wakeup_fd(previous_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        wake_r.close()
        wake_w.close()
    return received[0]
