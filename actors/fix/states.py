"""Session states and the one table of legal transitions.

The names are FIX Antenna's, because operators who run FIX gateways know
them. Any transition not in ``TRANSITIONS`` is a bug in the session, not a
protocol error of the peer: ``Session`` raises ``IllegalTransition``.

Rules (read top to bottom as the life of a connection):

* An initiator goes DISCONNECTED -> CONNECTING when it starts to connect and
  sends its Logon once the TCP connection is up; the Logon reply makes it
  CONNECTED.
* An acceptor goes DISCONNECTED -> WAITING_FOR_LOGON when a connection is
  accepted, LOGON_RECEIVED when a valid Logon arrives (the application may
  still refuse it), then CONNECTED when its Logon reply is sent. The
  application may hold it in LOGON_RECEIVED (reason ``LOGON_HELD_REASON``)
  and answer later, within the logon timeout.
* Leaving CONNECTED: WAITING_FOR_LOGOFF after our own Logout (we wait a
  bounded time for the answer); WAITING_FOR_FORCED_LOGOFF after a Logout we
  had to send because of a protocol error; WAITING_FOR_FORCED_DISCONNECT when
  we have dropped the connection and wait for the socket to be closed.
* A connection that ends after a Logout exchange ends in DISCONNECTED; one
  that breaks, times out or is dropped for an error ends in
  DISCONNECTED_ABNORMALLY, from which an initiator may go RECONNECTING.
* DEAD is final: the session was shut down.
"""

from __future__ import annotations

from enum import Enum


class SessionState(Enum):
    CONNECTING = "CONNECTING"
    WAITING_FOR_LOGON = "WAITING_FOR_LOGON"
    LOGON_RECEIVED = "LOGON_RECEIVED"
    CONNECTED = "CONNECTED"
    WAITING_FOR_LOGOFF = "WAITING_FOR_LOGOFF"
    WAITING_FOR_FORCED_LOGOFF = "WAITING_FOR_FORCED_LOGOFF"
    WAITING_FOR_FORCED_DISCONNECT = "WAITING_FOR_FORCED_DISCONNECT"
    RECONNECTING = "RECONNECTING"
    DISCONNECTED = "DISCONNECTED"
    DISCONNECTED_ABNORMALLY = "DISCONNECTED_ABNORMALLY"
    DEAD = "DEAD"


S = SessionState

#: The reason of the LOGON_RECEIVED transition when the application holds the Logon for a later answer
#: (``actors.fix.hooks.LogonHold``); a gateway's coordinator reads it as "the user waits for its venue".
LOGON_HELD_REASON = "Logon received; its answer waits for the application"

#: States in which the peer has completed a Logon exchange with us.
LOGGED_ON = frozenset({S.CONNECTED, S.WAITING_FOR_LOGOFF, S.WAITING_FOR_FORCED_LOGOFF})

#: States with no TCP connection.
OFFLINE = frozenset({S.DISCONNECTED, S.DISCONNECTED_ABNORMALLY, S.RECONNECTING, S.DEAD})

_DROPPED = (S.DISCONNECTED_ABNORMALLY, S.WAITING_FOR_FORCED_DISCONNECT)

TRANSITIONS: frozenset[tuple[SessionState, SessionState]] = frozenset(
    [
        (S.DISCONNECTED, S.CONNECTING),
        (S.DISCONNECTED, S.WAITING_FOR_LOGON),
        (S.DISCONNECTED, S.DEAD),
        (S.DISCONNECTED_ABNORMALLY, S.CONNECTING),
        (S.DISCONNECTED_ABNORMALLY, S.RECONNECTING),
        (S.DISCONNECTED_ABNORMALLY, S.WAITING_FOR_LOGON),
        (S.DISCONNECTED_ABNORMALLY, S.DISCONNECTED),
        (S.DISCONNECTED_ABNORMALLY, S.DEAD),
        (S.RECONNECTING, S.CONNECTING),
        (S.RECONNECTING, S.DISCONNECTED),
        (S.RECONNECTING, S.DEAD),
        (S.CONNECTING, S.CONNECTED),
        (S.CONNECTING, S.DISCONNECTED),
        (S.CONNECTING, S.WAITING_FOR_LOGOFF),
        (S.CONNECTING, S.DEAD),
        *((S.CONNECTING, d) for d in _DROPPED),
        (S.WAITING_FOR_LOGON, S.LOGON_RECEIVED),
        (S.WAITING_FOR_LOGON, S.DISCONNECTED),
        (S.WAITING_FOR_LOGON, S.DEAD),
        *((S.WAITING_FOR_LOGON, d) for d in _DROPPED),
        (S.LOGON_RECEIVED, S.CONNECTED),
        (S.LOGON_RECEIVED, S.DEAD),
        *((S.LOGON_RECEIVED, d) for d in _DROPPED),
        (S.CONNECTED, S.WAITING_FOR_LOGOFF),
        (S.CONNECTED, S.WAITING_FOR_FORCED_LOGOFF),
        (S.CONNECTED, S.DISCONNECTED),
        (S.CONNECTED, S.DEAD),
        *((S.CONNECTED, d) for d in _DROPPED),
        (S.WAITING_FOR_LOGOFF, S.DISCONNECTED),
        (S.WAITING_FOR_LOGOFF, S.DEAD),
        *((S.WAITING_FOR_LOGOFF, d) for d in _DROPPED),
        (S.WAITING_FOR_FORCED_LOGOFF, S.DISCONNECTED),
        (S.WAITING_FOR_FORCED_LOGOFF, S.DEAD),
        *((S.WAITING_FOR_FORCED_LOGOFF, d) for d in _DROPPED),
        (S.WAITING_FOR_FORCED_DISCONNECT, S.DISCONNECTED_ABNORMALLY),
        (S.WAITING_FOR_FORCED_DISCONNECT, S.DEAD),
    ]
)


class IllegalTransition(RuntimeError):
    """The session tried a transition that is not in the table."""


def check_transition(old: SessionState, new: SessionState) -> None:
    if (old, new) not in TRANSITIONS:
        raise IllegalTransition(f"{old.value} -> {new.value} is not a legal session transition")


def mermaid_diagram() -> str:
    """The transition table as a Mermaid state diagram (docs/session-states.md)."""
    lines = ["stateDiagram-v2", "    [*] --> DISCONNECTED"]
    order = list(SessionState)
    for old, new in sorted(TRANSITIONS, key=lambda t: (order.index(t[0]), order.index(t[1]))):
        lines.append(f"    {old.value} --> {new.value}")
    lines.append("    DEAD --> [*]")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(mermaid_diagram(), end="")
