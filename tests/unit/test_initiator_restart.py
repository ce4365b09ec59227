"""The initiator's part in a quick re-logon: a stop and a new start never leave the session stuck.

A gateway's coordinator stops the Driven when the user logs out and starts
it again when the user logs back on, perhaps within milliseconds. These run
a real initiator on a real loop against a raw loopback listener that
accepts and stays silent (a venue that has not answered the Logon yet).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from actors.fix.config import Role
from actors.fix.states import SessionState as S
from actors.shell.give_up import GAVE_UP, gave_up
from actors.shell.host import HostSpec, InitiatorSpec, SessionHost
from actors.shell.initiator import Phase
from actors.shell.loop import Loop
from tests.pair import RecordingApp
from tests.unit.test_host import HOST, hosted, loop, spec, states, turn_until

__all__ = ["loop"]  # the fixture, shared with test_host


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen(4)
        yield sock


def driven(loop: Loop, port: int) -> tuple[SessionHost, RecordingApp]:
    connect = InitiatorSpec(HOST, port, connect_timeout_s=5.0, reconnect_interval_s=30.0, max_tries=2,
                            on_start=False)
    host = hosted(SessionHost(HostSpec(connect=connect, handle_signals=False), loop=loop))
    app = RecordingApp()
    host.add_session(spec(Role.INITIATOR), app)
    host.start()
    return host, app


def test_a_stop_during_the_tcp_connect_ends_that_attempt_for_the_session(loop: Loop,
                                                                        listener: socket.socket) -> None:
    host, app = driven(loop, listener.getsockname()[1])
    host.connect()
    initiator = host.initiator
    assert initiator is not None and initiator.phase is Phase.CONNECTING, "the connect has not finished yet"
    host.stop_connecting()
    assert host.driver.session.state is S.DISCONNECTED_ABNORMALLY, states(app)
    host.driver.disconnect("disconnect command")  # what the actor's disconnect does next: nothing left to drop
    assert host.driver.session.state is S.DISCONNECTED_ABNORMALLY
    host.connect()
    assert host.initiator is not initiator and host.driver.session.state is S.CONNECTING


def test_a_connect_while_the_last_connection_ends_waits_for_that_end(loop: Loop, listener: socket.socket) -> None:
    host, app = driven(loop, listener.getsockname()[1])
    host.connect()
    turn_until(loop, lambda: host.driver.connected, "TCP connection")
    peer, _ = listener.accept()
    host.stop_connecting()  # the user logged out: no more tries, the connection still open
    host.connect()          # the user is back before that connection has ended
    assert host.initiator is not None and host.initiator.phase is Phase.PENDING
    assert host.driver.session.state is S.CONNECTING, "no transition out of the table"
    peer.close()            # the old connection ends ...
    before = len(states(app))
    turn_until(loop, lambda: [s for s, _ in states(app)[before:]] == [S.DISCONNECTED_ABNORMALLY, S.CONNECTING],
               "a new try after the old connection ended")
    assert "try 1" in states(app)[-1][1]


def test_the_give_up_words_are_recognised() -> None:
    assert gave_up(f"connect to 127.0.0.1:1 failed: Connection refused; {GAVE_UP} 6 tries")
    assert not gave_up("Logout exchange complete: gave up after lunch")
