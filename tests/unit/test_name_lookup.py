"""Host names are looked up off the loop, addresses on it; an initiator connects to either.

Real loops, real threads, the machine's resolver (``localhost`` from its hosts
file). A name server that never answers is ``tests/system/test_name_lookup.py``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from actors.fix.config import Role
from actors.shell.host import HostSpec, InitiatorSpec, SessionHost
from actors.shell.loop import Loop
from actors.shell.name_lookup import Address, Lookup, numeric_address
from tests.pair import RecordingApp
from tests.unit.test_host import hosted, loop, spec, states, turn_until

__all__ = ["loop"]  # the fixture, shared with test_host


def test_addresses_are_numeric_and_names_are_not() -> None:
    assert numeric_address("127.0.0.1", 9) == (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP,
                                               ("127.0.0.1", 9))
    v6 = numeric_address("::1", 9)
    assert v6 is not None and v6[0] == socket.AF_INET6 and v6[3][:2] == ("::1", 9)
    for name in ("localhost", "venue.example.com", "a..b", "börse.example", ""):
        assert numeric_address(name, 9) is None, name


def look_up(loop: Loop, host: str) -> Address | OSError:
    answers: list[Address | OSError] = []
    Lookup(loop, host, 9, answers.append)
    turn_until(loop, lambda: bool(answers), f"the lookup of {host!r}")
    return answers[0]


def test_a_name_is_answered_on_the_loop_by_its_own_thread(loop: Loop) -> None:
    threads: list[str] = []
    answers: list[Address | OSError] = []

    def done(answer: Address | OSError) -> None:
        threads.append(threading.current_thread().name)
        answers.append(answer)

    Lookup(loop, "localhost", 9, done)
    assert answers == [], "not answered before the loop turns"
    turn_until(loop, lambda: bool(answers), "the lookup of localhost")
    assert threads == [threading.main_thread().name]
    answer = answers[0]
    assert not isinstance(answer, OSError) and answer[3][1] == 9 and answer[3][0] in ("127.0.0.1", "::1")


def test_a_name_that_cannot_be_looked_up_is_an_error_not_an_exception(loop: Loop) -> None:
    answer = look_up(loop, "a..b")  # an empty label: the idna codec refuses it before any name server is asked
    assert isinstance(answer, OSError) and "not a host name" in str(answer)


def test_a_cancelled_lookup_is_never_answered(loop: Loop) -> None:
    answers: list[Address | OSError] = []
    lookup = Lookup(loop, "localhost", 9, answers.append)
    lookup.cancel()
    lookup.cancel()
    for _ in range(20):
        loop.run_once(0.01)
    assert answers == []


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """Listening where ``localhost`` resolves first (127.0.0.1 or ::1), where the initiator connects."""
    family, _kind, _proto, _name, address = socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0]
    with socket.socket(family) as sock:
        sock.bind(address)
        sock.listen(4)
        yield sock


def test_an_initiator_connects_to_a_name(loop: Loop, listener: socket.socket) -> None:
    connect = InitiatorSpec("localhost", listener.getsockname()[1], connect_timeout_s=5.0, reconnect_interval_s=30.0,
                            max_tries=1, on_start=False)
    host = hosted(SessionHost(HostSpec(connect=connect, handle_signals=False), loop=loop))
    app = RecordingApp()
    host.add_session(spec(Role.INITIATOR), app)
    host.start()
    host.connect()
    turn_until(loop, lambda: host.driver.connected, "a connection to localhost")
    assert states(app)[0][1] == f"connecting to localhost:{listener.getsockname()[1]} (try 1)"
