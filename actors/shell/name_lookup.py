"""A counterparty's host name looked up off the loop: a slow or silent name server must not stop the actor.

``getaddrinfo`` blocks its caller for as long as the resolver waits:
resolv.conf's timeout times its attempts, per query, 10 s and more when the
name server does not answer. On the loop that would stop everything the
actor serves (its bus heartbeats: the broker declares it down after 3 s;
commands; timers), once per connect try, for as long as the outage lasts.

So a numeric address is converted on the loop (``numeric_address``: no name
server is asked), and a name is looked up by ``Lookup`` on a thread of its
own that does nothing else: it calls ``getaddrinfo`` and hands the answer
back through a socket pair the loop watches; the loop alone acts on it. The
initiator's connect timeout covers the lookup: a lookup still out at the
deadline is dropped (``cancel``), and its thread, once the resolver gives
up, ends without being heard.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

from actors.shell.loop import Loop

#: What ``socket.socket`` and ``connect_ex`` need: family, type, protocol and the socket address.
Address = tuple[socket.AddressFamily, socket.SocketKind, int, Any]


def lookup_name(host: str) -> str | bytes:
    """``host`` as ``socket.getaddrinfo`` is given it: the ASCII bytes of an ASCII name or address.

    ``getaddrinfo`` encodes a ``str`` host with the ``idna`` codec, whose import loads
    ``unicodedata`` (about 0.2 MB resident for the life of the actor). For an ASCII name the codec
    gives its ASCII bytes, once its labels pass the length check (1 to 63 characters, the last
    may be empty: RFC 1035 2.3.4); so such a name is encoded here, and any other (non-ASCII, or
    a label the codec refuses, with its error) is left to the codec as before.
    """
    labels = host.split(".")
    if host.isascii() and all(0 < len(label) < 64 for label in labels[:-1]) and len(labels[-1]) < 64:
        return host.encode("ascii")
    return host


def _first(host: str, port: int, flags: int = 0) -> Address:
    family, kind, proto, _name, address = socket.getaddrinfo(lookup_name(host), port, type=socket.SOCK_STREAM,
                                                             flags=flags)[0]
    return family, kind, proto, address


def numeric_address(host: str, port: int) -> Address | None:
    """``host`` as an address when it is one (IPv4 or IPv6, no name server asked); None for a name."""
    try:
        return _first(host, port, socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return None


class Lookup:
    """One name's lookup on its own thread; ``on_done(address or error)`` is called on the loop, once."""

    def __init__(self, loop: Loop, host: str, port: int, on_done: Callable[[Address | OSError], None]) -> None:
        self._loop = loop
        self._on_done = on_done
        self._answer: Address | OSError | None = None
        self._ours, theirs = socket.socketpair()
        self._open = True
        loop.add_reader(self._ours, self._answered)
        threading.Thread(target=self._look_up, args=(host, port, theirs), name=f"lookup {host}",
                         daemon=True).start()

    def _look_up(self, host: str, port: int, theirs: socket.socket) -> None:
        """The thread: the answer, then one byte to wake the loop (nobody reads it after a ``cancel``)."""
        try:
            self._answer = _first(host, port)
        except OSError as exc:
            self._answer = exc
        except UnicodeError as exc:  # a label the idna codec refuses
            self._answer = OSError(f"not a host name: {exc}")
        finally:
            with contextlib.suppress(OSError):
                theirs.send(b"\0")
            theirs.close()

    def _answered(self) -> None:
        self.cancel()
        answer = self._answer
        if answer is not None:
            self._on_done(answer)

    def cancel(self) -> None:
        """Stop watching: the answer, whenever it comes, is dropped."""
        if self._open:
            self._open = False
            self._loop.forget(self._ours)
            self._ours.close()
