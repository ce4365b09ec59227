"""What the session core hands back to its runner: actions and events.

The core never performs I/O. Each call returns a list of outputs that the
runner executes in order: ``Send`` (store first when ``store`` is set, then
write), ``Deliver`` (hand to the application, then persist the incoming
sequence number; a ``Deliver`` ends the outputs of a ``process`` call),
``Resend`` (read the range from the store, part by part, and call
``Session.answer_resend``), ``ResetStore``, ``Disconnect``, ``Withheld`` (a
stored message the application chose not to resend), ``PeerRejected`` (the
counterparty refused one of our messages with a session-level Reject), and
the events ``StateChanged`` / ``SessionEvent`` / ``Log`` that the runner
logs and publishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from actors.fix.message import Message
from actors.fix.states import SessionState


@dataclass(frozen=True, slots=True)
class Send:
    """Bytes for the counterparty.

    ``store``: a new message with sequence number ``seq`` that must be in the
    store before it is written (persist before send). ``transmit`` is False
    for a message created while the session is not logged on: it is stored
    and will reach the peer through the peer's ResendRequest.
    """

    data: bytes
    seq: int
    msg_type: str
    store: bool
    transmit: bool = True
    #: What the store keeps instead of ``data``, when the wire form holds a secret (a Logon's
    #: Password, masked): a session message is never resent, only gap-filled, so the copy is enough.
    stored: bytes | None = None


@dataclass(frozen=True, slots=True)
class Deliver:
    """An application message for the application, in sequence order."""

    message: Message
    seq: int


@dataclass(frozen=True, slots=True)
class Resend:
    """Stored messages ``begin``..``end`` (inclusive) to send again; the runner reads them.

    The runner answers it in parts (``Session.answer_resend(..., through=)``), reading the store
    a part at a time, and sends nothing new until the whole range is out: FIX wants the resent
    range contiguous, new messages after it.

    ``as_new``: messages stored while our Logon awaited its reply. They were
    numbered after the Logon but not written yet, so they go out exactly as
    stored, not as PossDup resends.
    """

    begin: int
    end: int
    as_new: bool = False


@dataclass(frozen=True, slots=True)
class ResetStore:
    """Both sequence numbers went back to ``next_sender``/``next_target``."""

    next_sender: int
    next_target: int
    utc_ns: int


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the TCP connection now; ``reason`` is for the log."""

    reason: str


@dataclass(frozen=True, slots=True)
class Withheld:
    """A stored application message the ``on_resend`` hook withheld: it was gap-filled, not resent.

    The application decides what else happens (a gateway sends it back to its
    origin as rejected); ``reason`` is the hook's own text.
    """

    message: Message
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class PeerRejected:
    """The counterparty's session-level Reject (35=3) of our message ``ref_seq``: it was not processed.

    For the application to tell whoever the message came from (a gateway: the user whose order it was).
    ``reason`` is the SessionRejectReason (373) and ``ref_tag`` the RefTagID (371), when given.
    """

    ref_seq: int
    text: str
    reason: int | None
    ref_tag: int | None


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: SessionState
    new: SessionState
    reason: str
    next_sender: int
    next_target: int
    utc_ns: int


#: Every ``SessionEvent.kind`` the session core emits (``session.<name>.<kind>`` on the bus).
EVENT_KINDS: Final = frozenset({
    "logon", "logout", "resend", "resend_request", "reject", "business_reject", "seqreset", "gap",
    "test_request", "heartbeat_timeout", "garbled", "logon_held", "resend_storm",
})


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """A session-level occurrence worth publishing; ``kind`` is one of ``EVENT_KINDS``."""

    kind: str
    text: str
    next_sender: int
    next_target: int
    utc_ns: int


@dataclass(frozen=True, slots=True)
class Log:
    level: str  # "debug" | "info" | "warning" | "error"
    text: str


Output = (Send | Deliver | Resend | ResetStore | Disconnect | Withheld | PeerRejected | StateChanged | SessionEvent
          | Log)
