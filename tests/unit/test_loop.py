"""The event loop's order of work in one turn: readers, due timers, ``call_soon``, then the turn's end."""

from __future__ import annotations

import socket

from actors.shell.loop import Loop


class _DueOnce:
    """A timer source due at once, once."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.due = True

    def next_deadline(self) -> float | None:
        return 0.0 if self.due else None

    def on_timer(self) -> None:
        self.due = False
        self.calls.append("timer")


def test_the_turn_end_runs_after_readers_timers_and_soon_callbacks_in_every_turn() -> None:
    loop = Loop()
    calls: list[str] = []
    a, b = socket.socketpair()
    try:
        def on_readable() -> None:
            a.recv(100)
            calls.append("reader")
            loop.call_soon(lambda: calls.append("soon"))

        loop.add_reader(a, on_readable)
        loop.add_timer_source(_DueOnce(calls))
        loop.at_turn_end(lambda: calls.append("end"))
        b.send(b"x")
        loop.run_once(max_wait_s=1.0)
        assert calls == ["reader", "timer", "soon", "end"]
        loop.run_once(max_wait_s=0.0)
        assert calls[4:] == ["end"], "also a turn in which nothing happened"
    finally:
        loop.close()
        a.close()
        b.close()
