"""The session host's one graceful stop, on a real loop over loopback TCP.

Each test hosts real sessions on a real ``Loop``; the counterparty is a
second host on the same loop or a raw loopback socket. Waits are bounded
turns of the loop (a poll with a timeout), never sleeps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.fix.codec import Framer, encode, parse
from actors.fix.config import Role
from actors.fix.message import Message
from actors.fix.outputs import StateChanged
from actors.fix.states import SessionState as S
from actors.fix.timefmt import TimestampFormatter
from actors.shell import clock
from actors.shell.host import (
    STOP_GRACE_S,
    AcceptorSpec,
    HostSpec,
    InitiatorSpec,
    SessionHost,
    SessionSpec,
    StoreSpec,
)
from actors.shell.loop import Loop
from actors.shell.seqpolicy import SequencePolicy
from actors.store import FileStore, StoreClosedError
from tests.pair import FakeClock, RecordingApp, make_config

HOST = "127.0.0.1"
#: Bound of every wait: generous for a loaded machine, and a failing test still ends.
WAIT_S = 10.0


def spec(role: Role, **store: object) -> SessionSpec:
    name = "BUY->SELL" if role is Role.INITIATOR else "SELL->BUY"
    return SessionSpec(name, make_config(role), StoreSpec(**store))  # type: ignore[arg-type]


def turn_until(loop: Loop, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S:g} s"
        loop.run_once(0.05)


def states(app: RecordingApp) -> list[tuple[S, str]]:
    return [(o.new, o.reason) for o in app.outputs if isinstance(o, StateChanged)]


def refused(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1.0).close()
    except ConnectionRefusedError:
        return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def loop() -> Iterator[Loop]:
    """A loop whose hosts are all closed at the end, so that a failing test leaves no signal handler behind."""
    loop = Loop()
    try:
        yield loop
    finally:
        for host in list(HOSTS):
            host.close()
        HOSTS.clear()
        loop.close()


#: Every host a test made (``SessionHost.close`` does nothing the second time).
HOSTS: list[SessionHost] = []


def hosted(host: SessionHost) -> SessionHost:
    HOSTS.append(host)
    return host


class Acceptor:
    """An acceptor host with a recording application; what the stop called back, in order."""

    def __init__(self, loop: Loop, *, handle_signals: bool = False, now: FakeClock | None = None) -> None:
        self.calls: list[str] = []
        self.app = RecordingApp()
        spec_ = HostSpec(listen=AcceptorSpec(HOST, 0), stop_text="test stopping", handle_signals=handle_signals)
        self.host = hosted(SessionHost(spec_, loop=loop, now=now if now is not None else clock.now,
                                       on_stopping=lambda why: self.calls.append(f"stopping: {why}"),
                                       on_closed=lambda: self.calls.append("closed")))
        self.driver = self.host.add_session(spec(Role.ACCEPTOR), self.app)
        self.host.start()
        assert self.host.port is not None
        self.port: int = self.host.port


# ----------------------------------------------------------------- the stop


def test_sigterm_logs_out_waits_for_the_answer_and_closes_everything(loop: Loop) -> None:
    before = signal.getsignal(signal.SIGTERM)
    acceptor = Acceptor(loop, handle_signals=True)
    done: list[bool] = []
    initiator = hosted(SessionHost(HostSpec(connect=InitiatorSpec(HOST, acceptor.port), handle_signals=False),
                                   loop=loop, on_initiator_done=done.append))
    initiator_app = RecordingApp()
    initiator_driver = initiator.add_session(spec(Role.INITIATOR), initiator_app)
    initiator.start()
    turn_until(loop, lambda: acceptor.driver.session.is_logged_on and initiator_driver.session.is_logged_on,
               "Logon")

    os.kill(os.getpid(), signal.SIGTERM)
    acceptor.host.run()  # the shared loop serves the initiator too, until the acceptor's stop is over

    assert acceptor.calls == ["stopping: test stopping", "closed"]
    assert states(acceptor.app)[-3:] == [
        (S.WAITING_FOR_LOGOFF, "test stopping"),
        (S.DISCONNECTED, "Logout exchange complete"),
        (S.DEAD, "test stopping"),
    ], "the counterparty's answer ended the connection, not the stop deadline"
    assert (S.DISCONNECTED, "Logout exchange complete: test stopping") in states(initiator_app)
    with pytest.raises(StoreClosedError):
        acceptor.driver.store.get_outgoing(1, 1)
    assert refused(acceptor.port), "the listening socket is closed"
    assert signal.getsignal(signal.SIGTERM) == before, "the previous SIGTERM handler is back"

    turn_until(loop, lambda: bool(done), "notice that the initiator stopped")
    assert done == [False], "logged out by the counterparty, not given up"
    initiator.stop("test over")
    initiator.run()
    assert initiator.closed and states(initiator_app)[-1] == (S.DEAD, "test over")


def test_a_silent_counterparty_is_disconnected_at_the_stop_deadline(loop: Loop) -> None:
    # The loop measures deadlines on the real monotonic clock; this one runs an hour behind it, so the
    # host's stop deadline (read from it) is already due while the session's own Logout timeout, read
    # from the same clock, never is: the host's deadline alone ends the wait.
    clock = FakeClock()
    clock.mono_s = time.monotonic() - 3600.0
    acceptor = Acceptor(loop, now=clock)
    peer = socket.create_connection((HOST, acceptor.port), timeout=WAIT_S)
    with peer:
        stamp = TimestampFormatter(3).format(clock.utc_ns)
        peer.sendall(encode(b"FIX.4.4", b"A", [(34, b"1"), (49, b"BUY"), (52, stamp), (56, b"SELL")],
                            [(98, b"0"), (108, b"30")]))
        turn_until(loop, lambda: acceptor.driver.session.is_logged_on, "Logon")

        acceptor.host.stop("maintenance")
        logout_timeout_s = acceptor.driver.session.config.logout_timeout_s
        assert acceptor.host.stop_deadline == clock.mono_s + logout_timeout_s + STOP_GRACE_S
        acceptor.host.run()

        assert states(acceptor.app)[-3:] == [
            (S.WAITING_FOR_FORCED_DISCONNECT, "no Logout reply before the stop deadline"),
            (S.DISCONNECTED_ABNORMALLY, "no Logout reply before the stop deadline"),
            (S.DEAD, "maintenance"),
        ]
        assert [m.msg_type for m in read_until_closed(peer)] == ["A", "5"], "a Logon reply, a Logout, then EOF"
    assert acceptor.calls == ["stopping: maintenance", "closed"]


def read_until_closed(sock: socket.socket) -> list[Message]:
    sock.settimeout(WAIT_S)
    framer = Framer()
    while data := sock.recv(65536):
        framer.feed(data)
    messages = []
    while (frame := framer.next_frame()) is not None:
        messages.append(parse(frame.data))
    return messages


def test_a_stop_with_nothing_connected_ends_at_once(loop: Loop) -> None:
    acceptor = Acceptor(loop)
    started = time.monotonic()
    acceptor.host.stop("nothing to wait for")
    acceptor.host.run()
    assert time.monotonic() - started < STOP_GRACE_S, "no wait for a Logout that cannot come"
    assert acceptor.calls == ["stopping: nothing to wait for", "closed"]
    assert states(acceptor.app) == [(S.DEAD, "nothing to wait for")]
    assert refused(acceptor.port)
    acceptor.host.stop("again")
    assert acceptor.calls == ["stopping: nothing to wait for", "closed"], "one stop, once"


def test_an_initiator_that_gives_up_is_reported_once_and_connects_no_more(loop: Loop) -> None:
    done: list[bool] = []
    connect = InitiatorSpec(HOST, free_port(), connect_timeout_s=1.0, max_tries=1)
    host = hosted(SessionHost(HostSpec(connect=connect, handle_signals=False), loop=loop,
                              on_initiator_done=done.append))
    app = RecordingApp()
    host.add_session(spec(Role.INITIATOR), app)
    host.start()
    turn_until(loop, lambda: bool(done), "notice that the initiator gave up")
    for _ in range(3):
        loop.run_once(0.0)
    assert done == [True]
    assert states(app)[-1][0] is S.DISCONNECTED and "gave up after 1 tries" in states(app)[-1][1]
    host.stop("the initiator stopped")
    host.connect()
    assert host.initiator is not None and host.initiator.tries == 1, "no new attempt once stopping"
    host.run()
    assert host.closed


# ---------------------------------------------------------------- the parts


def test_the_store_is_opened_as_specified_with_the_policys_start_numbers(loop: Loop, tmp_path: Path) -> None:
    host = hosted(SessionHost(HostSpec(listen=AcceptorSpec(HOST, 0), handle_signals=False), loop=loop))
    session = SessionSpec("SELL->BUY", make_config(Role.ACCEPTOR), StoreSpec("file", tmp_path),
                          policy=SequencePolicy(next_sender=5, next_target=9))
    driver = host.add_session(session, RecordingApp())
    assert isinstance(driver.store, FileStore)
    assert (driver.session.next_sender, driver.session.next_target) == (5, 9)
    host.stop("test over")
    host.run()
    with contextlib.closing(FileStore(tmp_path, "SELL->BUY", now_ns=0)) as reopened:
        assert (reopened.next_sender_seq, reopened.next_target_seq) == (5, 9)


def test_a_host_listens_or_connects_and_an_initiator_hosts_one_session(loop: Loop) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        HostSpec()
    with pytest.raises(ValueError, match="exactly one"):
        HostSpec(listen=AcceptorSpec(HOST, 0), connect=InitiatorSpec(HOST, 1))
    host = hosted(SessionHost(HostSpec(connect=InitiatorSpec(HOST, 1), handle_signals=False), loop=loop))
    host.add_session(spec(Role.INITIATOR), RecordingApp())
    with pytest.raises(ValueError, match="hosted alone"):
        host.add_session(spec(Role.INITIATOR), RecordingApp())
    host.close()


def test_sessions_sharing_a_port_each_get_their_own_counterparty(loop: Loop) -> None:
    host = hosted(SessionHost(HostSpec(listen=AcceptorSpec(HOST, 0), handle_signals=False), loop=loop))
    apps = {name: RecordingApp() for name in ("BUY", "BUY2")}
    drivers = {name: host.add_session(SessionSpec(f"SELL->{name}", make_config(Role.ACCEPTOR, target_comp_id=name)),
                                      app) for name, app in apps.items()}
    host.start()
    assert host.port is not None
    clients = []
    for name in apps:
        client = hosted(SessionHost(HostSpec(connect=InitiatorSpec(HOST, host.port), handle_signals=False),
                                    loop=loop))
        client.add_session(SessionSpec(f"{name}->SELL", make_config(Role.INITIATOR, sender_comp_id=name)),
                           RecordingApp())
        client.start()
        clients.append(client)
    turn_until(loop, lambda: all(d.session.is_logged_on for d in drivers.values()), "both Logons")
    host.stop("test over")
    host.run()
    assert all(states(app)[-1] == (S.DEAD, "test over") for app in apps.values())
    for client in clients:
        client.stop("test over")
        client.run()
