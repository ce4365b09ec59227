"""The acceptor's limits on connections that have not logged on, with real sockets on a real loop.

What a connection may send before its Logon, how many may wait for their
Logon at once, how long one may wait, what happens when the process runs out
of file descriptors (a real one: the test lowers its own RLIMIT_NOFILE for a
moment), and the seam where a session may refuse a peer's address. The
acceptor's clock is a fake one the test moves; the loop runs real turns.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.fix.codec import encode
from actors.fix.config import Role
from actors.fix.timefmt import TimestampFormatter
from actors.shell.acceptor import FD_BACKOFF_S, MAX_BYTES_BEFORE_LOGON, WARNING_INTERVAL_S, Acceptor
from actors.shell.handoff import HandoffTarget
from actors.shell.host import AcceptorSpec, HostSpec, SessionHost, SessionSpec
from actors.shell.loop import Loop
from actors.shell.tls import server_context
from actors.shell.tls_settings import TlsSettings
from actors.shell.transport import SocketTransport
from tests.pair import RecordingApp, make_config
from tests.unit.test_tls import OPENSSL, make_pki

HOST = "127.0.0.1"
TURNS = 200


class FakeMonotonic:
    """The acceptor's clock; the loop's own deadlines are real, so every turn asks the acceptor, which reads this."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def loop() -> Iterator[Loop]:
    loop = Loop()
    try:
        yield loop
    finally:
        loop.close()


def closed_by_peer(sock: socket.socket, loop: Loop, turns: int = TURNS) -> bool:
    """Run the loop until the acceptor closes ``sock`` (recv gives b"" or a reset), at most ``turns`` turns."""
    sock.setblocking(False)
    for _ in range(turns):
        loop.run_once(0.01)
        try:
            if sock.recv(65536) == b"":
                return True
        except BlockingIOError:
            continue
        except ConnectionResetError:
            return True
    return False


def turn_until(loop: Loop, condition: Callable[[], bool], turns: int = TURNS) -> bool:
    for _ in range(turns):
        if condition():
            return True
        loop.run_once(0.01)
    return condition()


def connect(port: int) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=5.0)


def test_bytes_without_a_logon_beyond_the_limit_close_the_connection(loop: Loop) -> None:
    acceptor = Acceptor(loop, HOST, 0, lambda key: None, logon_timeout_s=60.0)
    try:
        with connect(acceptor.port) as sock:
            sock.sendall(b"x" * (MAX_BYTES_BEFORE_LOGON // 2))
            assert not closed_by_peer(sock, loop, turns=20), "closed before the limit"
            sock.sendall(b"x" * MAX_BYTES_BEFORE_LOGON)
            assert closed_by_peer(sock, loop), "the acceptor kept reading past the limit"
    finally:
        acceptor.close()


def test_beyond_the_pending_limit_the_connection_waiting_longest_is_closed(
        loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeMonotonic()
    acceptor = Acceptor(loop, HOST, 0, lambda key: None, logon_timeout_s=60.0, max_pending_connections=3, now=clock)
    socks: list[socket.socket] = []
    try:
        with caplog.at_level(logging.WARNING, "fixmesh.acceptor"):
            for n in range(5):  # taken at 1, 2, 3, 4 and 5 s
                socks.append(connect(acceptor.port))
                clock.now_s += 1.0
                if n < 3:
                    assert turn_until(loop, lambda n=n: acceptor.pending == n + 1), f"connection {n} not taken"
                else:
                    assert closed_by_peer(socks[n - 3], loop), f"connection {n - 3} was not closed for {n}"
            for sock in socks[2:]:
                assert not closed_by_peer(sock, loop, turns=5), "a newer connection was closed"
        assert acceptor.pending == 3
        warnings = [r.getMessage() for r in caplog.records if "max_pending_connections" in r.getMessage()]
        # Two closures, one line: the second is held back and counted in the next warning.
        assert len(warnings) == 1, warnings
        assert "3 connections are waiting for their Logon (max_pending_connections): closing the one waiting " \
               "longest, 127.0.0.1:" in warnings[0] and "after 3.0 s" in warnings[0]
    finally:
        for sock in socks:
            sock.close()
        acceptor.close()


def test_a_connection_that_never_logs_on_is_closed_after_the_logon_timeout(
        loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeMonotonic()
    acceptor = Acceptor(loop, HOST, 0, lambda key: None, logon_timeout_s=10.0, now=clock)
    try:
        with connect(acceptor.port) as first, caplog.at_level(logging.WARNING, "fixmesh.acceptor"):
            assert turn_until(loop, lambda: acceptor.pending == 1)
            clock.now_s = 1.0
            with connect(acceptor.port) as second:
                assert turn_until(loop, lambda: acceptor.pending == 2)
                clock.now_s = 10.0
                assert closed_by_peer(first, loop), "the first connection outlived its logon timeout"
                assert not closed_by_peer(second, loop, turns=5), "the second was closed before its time"
                clock.now_s = 11.0
                assert closed_by_peer(second, loop)
        assert acceptor.pending == 0
        timeouts = [r.getMessage() for r in caplog.records if "no Logon within 10 s" in r.getMessage()]
        assert len(timeouts) == 1, "the second timeout within WARNING_INTERVAL_S is held back"
    finally:
        acceptor.close()


def limit_leaving(free: int) -> int:
    """A soft RLIMIT_NOFILE under which exactly ``free`` descriptors can still be opened (the lowest free numbers)."""
    found = 0
    for fd in range(resource.getrlimit(resource.RLIMIT_NOFILE)[0]):
        try:
            os.fstat(fd)
        except OSError:
            if found == free:
                return fd  # the free numbers below this one are exactly ``free``
            found += 1
    raise AssertionError("not enough free descriptors")


@contextlib.contextmanager
def descriptors_left(free: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit_leaving(free), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_out_of_file_descriptors_the_listener_rests_then_accepts_again(
        loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeMonotonic()
    acceptor = Acceptor(loop, HOST, 0, lambda key: None, logon_timeout_s=60.0, fd_reserve=0, now=clock)
    # Connected in the kernel's queue before the limit is lowered: accepting them is what needs descriptors.
    socks = [connect(acceptor.port) for _ in range(3)]
    try:
        with caplog.at_level(logging.WARNING, "fixmesh.acceptor"):
            with descriptors_left(1):
                for _ in range(20):
                    loop.run_once(0.01)  # accept fails with EMFILE: no exception, and no spinning on the listener
                    if acceptor.resting:
                        break
                assert acceptor.resting and acceptor.pending == 1
                messages = [r.getMessage() for r in caplog.records]
                assert any("out of file descriptors (Too many open files; limit" in m
                           and "refusing new connections for 0.1 s; 1 connections waiting for their Logon" in m
                           for m in messages), messages
                for _ in range(5):
                    loop.run_once(0.01)
                assert acceptor.pending == 1, "the listener was read during its rest"
            clock.now_s += FD_BACKOFF_S
            assert turn_until(loop, lambda: acceptor.pending == 3), "the listener did not resume after its rest"
            assert not acceptor.resting
    finally:
        for sock in socks:
            sock.close()
        acceptor.close()


def test_the_last_descriptors_are_kept_in_reserve(loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeMonotonic()
    acceptor = Acceptor(loop, HOST, 0, lambda key: None, logon_timeout_s=60.0, fd_reserve=2, now=clock)
    socks = [connect(acceptor.port) for _ in range(3)]
    try:
        with caplog.at_level(logging.WARNING, "fixmesh.acceptor"), descriptors_left(3):
            assert turn_until(loop, lambda: acceptor.resting, turns=20)
            assert acceptor.pending == 1, "only the first of three free descriptors may go to a connection"
            assert any("kept in reserve" in r.getMessage() for r in caplog.records)
        # The connection accepted and closed at the reserve is gone: its client reads the end.
        closed = [sock for sock in socks if closed_by_peer(sock, loop, turns=2)]
        assert len(closed) == 1
        clock.now_s += FD_BACKOFF_S
        assert turn_until(loop, lambda: acceptor.pending == 2)
    finally:
        for sock in socks:
            sock.close()
        acceptor.close()


def test_out_of_descriptor_warnings_are_one_line_per_interval(loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeMonotonic()
    acceptor = Acceptor(loop, HOST, 0, lambda key: None, fd_reserve=0, now=clock)
    socks = [connect(acceptor.port) for _ in range(2)]
    try:
        with caplog.at_level(logging.WARNING, "fixmesh.acceptor"), descriptors_left(0):
            for _ in range(10):  # ten rests in a row, 0.1 s apart on the acceptor's clock
                assert turn_until(loop, lambda: acceptor.resting, turns=20)
                clock.now_s += FD_BACKOFF_S
                assert turn_until(loop, lambda: not acceptor.resting, turns=20)
            clock.now_s += WARNING_INTERVAL_S
            assert turn_until(loop, lambda: acceptor.resting, turns=20)
        lines = [r.getMessage() for r in caplog.records if "out of file descriptors" in r.getMessage()]
        assert len(lines) == 2 and "(and 9 more since the last warning)" in lines[1], lines
        assert acceptor.pending == 0
    finally:
        for sock in socks:
            sock.close()
        acceptor.close()


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command line is not installed")
def test_a_tls_connection_without_a_handshake_is_closed_at_the_logon_timeout(
        loop: Loop, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pki = make_pki(tmp_path / "pki")
    context = server_context(TlsSettings(cert=pki.server_cert, key=pki.server_key))
    clock = FakeMonotonic()
    acceptor = Acceptor(loop, HOST, 0, lambda key: None, logon_timeout_s=2.0, tls=context, now=clock)
    try:
        with connect(acceptor.port) as sock, caplog.at_level(logging.WARNING, "fixmesh.acceptor"):
            assert turn_until(loop, lambda: acceptor.pending == 1)
            clock.now_s = 2.0
            assert closed_by_peer(sock, loop)
        assert any("no TLS handshake within 2 s" in r.getMessage() for r in caplog.records)
    finally:
        acceptor.close()


# ---------------------------------------------------------- the address seam


def logon() -> bytes:
    stamp = TimestampFormatter(3).format(time.time_ns())
    header = [(34, b"1"), (49, b"BUY"), (52, stamp), (56, b"SELL")]
    return encode(b"FIX.4.4", b"A", header, [(98, b"0"), (108, b"30")])


def test_a_session_may_refuse_a_peer_address_before_its_logon_is_answered(
        loop: Loop, caplog: pytest.LogCaptureFixture) -> None:
    asked: list[str] = []

    def admit(ip: str) -> str | None:
        asked.append(ip)
        return "not on the list" if len(asked) == 1 else None

    host = SessionHost(HostSpec(listen=AcceptorSpec(HOST, 0), handle_signals=False), loop=loop)
    driver = host.add_session(SessionSpec("SELL->BUY", make_config(Role.ACCEPTOR)), RecordingApp(), admit=admit)
    host.start()
    try:
        assert host.port is not None
        with connect(host.port) as sock, caplog.at_level(logging.WARNING, "fixmesh.acceptor"):
            sock.sendall(logon())
            assert closed_by_peer(sock, loop), "a refused address was kept"
        assert asked == [HOST] and not driver.connected
        assert any("refused for session SELL->BUY: not on the list" in r.getMessage() for r in caplog.records)

        with connect(host.port) as sock:
            sock.sendall(logon())
            assert turn_until(loop, lambda: driver.session.is_logged_on), "an admitted address was not answered"
            assert driver.remote_address == sock.getsockname()
        assert asked == [HOST, HOST]
    finally:
        host.close()


def test_a_connection_handed_over_by_a_listener_meets_the_same_address_check(
        loop: Loop, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "run" / "SELL.sock"
    host = SessionHost(HostSpec(listen=AcceptorSpec(HOST, 0, handoff=path), handle_signals=False), loop=loop)
    driver = host.add_session(SessionSpec("SELL->BUY", make_config(Role.ACCEPTOR)), RecordingApp(),
                              admit=lambda ip: f"{ip} is not on the list")
    host.start()
    listener_loop = Loop()  # the listener process's side, here in the same process
    try:
        with socket.create_server((HOST, 0)) as server, connect(server.getsockname()[1]) as client, \
                caplog.at_level(logging.WARNING, "fixmesh.handoff"):
            accepted, _ = server.accept()
            pending = SocketTransport(listener_loop, accepted, lambda data: None, lambda reason: None)
            HandoffTarget("SELL->BUY", path).take(pending, logon())
            assert closed_by_peer(client, loop), "a refused address was handed a session"
        assert not driver.connected
        assert any("127.0.0.1 is not on the list" in r.getMessage() for r in caplog.records)
    finally:
        listener_loop.close()
        host.close()
