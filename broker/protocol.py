"""The bus protocol: the one module that knows the envelope and calls msgpack.

Two planes, both ZeroMQ over TCP:

* **Business plane** (broker ROUTER, actors DEALER with their name as
  routing identity). Every frame is one msgpack envelope
  ``{"v", "kind", "src", "dst", "id", "corr", "body"}``. The broker reads only
  ``v``, ``kind``, ``src`` and ``dst``; ``body`` is opaque bytes or a small
  map, never FIX. Kinds:

  - ``hello``: an actor announces itself (also after a restart); the broker
    answers ``welcome`` and publishes ``actor.<name>.up``.
  - ``heartbeat``: actor -> broker, every ``HEARTBEAT_INTERVAL_S``; an actor
    silent for ``LIVENESS`` intervals is marked down (``actor.<name>.down``).
  - ``deliver``: addressed payload; ``id`` is chosen by the sender and is
    unique per sender (the origin of a forwarded FIX message).
  - ``ack``: the receiver persisted ``corr`` (the ``id`` it acknowledges)
    and every id in ``acks``. A ``deliver`` may carry ``acks`` too: acks
    owed to its ``dst`` ride on it instead of travelling alone.
  - ``undeliverable``: broker -> sender, ``dst`` is not up; the sender keeps
    the message and sends it again when ``actor.<dst>.up`` is published.
  - ``command`` / ``reply``: control of an actor (connect, disconnect, ...).

* **Event plane** (broker XSUB bound for publishers, XPUB bound for
  subscribers). Two frames: the topic (UTF-8, dot-separated, e.g.
  ``session.venue.state``) and a msgpack map with at least ``time_ns`` and
  ``actor``. ZeroMQ prefix subscriptions give topic filtering.

Unknown kinds or versions are reported as ``ProtocolError``; receivers log
and drop them, they never crash a process.

Bodies the broker itself writes (the only bodies it ever looks at):

* ``welcome``: ``{"instance", "heartbeat_interval_s", "liveness"}``;
  ``instance`` is new at every broker start, so a client that sees it change
  knows the broker restarted and resends what is not acknowledged.
* ``undeliverable``: ``{"dst", "reason"}``, ``corr`` is the refused ``id``;
  ``reason`` is ``down`` (``dst`` not up) or ``busy`` (its queue is full).

The broker publishes ``broker.started`` and, every ``HEARTBEAT_INTERVAL_S``,
``broker.heartbeat``, both with ``instance``; ``actor.<name>.up`` and
``actor.<name>.down``. Each actor publishes ``actor.<name>.heartbeat``.
See ``docs/bus.md``.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Any

import msgpack

VERSION = 1

HEARTBEAT_INTERVAL_S = 1.0
LIVENESS = 3

HELLO = "hello"
WELCOME = "welcome"
HEARTBEAT = "heartbeat"
DELIVER = "deliver"
ACK = "ack"
UNDELIVERABLE = "undeliverable"
COMMAND = "command"
REPLY = "reply"

KINDS = frozenset({HELLO, WELCOME, HEARTBEAT, DELIVER, ACK, UNDELIVERABLE, COMMAND, REPLY})

#: Reserved name of the broker itself as ``src``/``dst``.
BROKER = "broker"

DEFAULT_ROUTER_ENDPOINT = "tcp://127.0.0.1:5570"
DEFAULT_XSUB_ENDPOINT = "tcp://127.0.0.1:5571"
DEFAULT_XPUB_ENDPOINT = "tcp://127.0.0.1:5572"

#: Largest business frame accepted (ZeroMQ drops a peer that sends more), so
#: one bad sender cannot make the broker allocate without bound.
MAX_FRAME_BYTES = 1 << 20

#: Topic prefixes a bus client subscribes to for liveness and restarts.
ACTOR_TOPICS = "actor."
BROKER_TOPICS = "broker."
SESSION_TOPICS = "session."

#: ``undeliverable`` reasons.
REASON_DOWN = "down"
REASON_BUSY = "busy"


class ProtocolError(ValueError):
    """A frame that is not a valid envelope or event of this version."""


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: str
    src: str
    dst: str
    id: str = ""
    corr: str = ""
    body: Any = None
    #: Further ids the sender acknowledges to ``dst`` (on an ``ack`` or a ``deliver``).
    acks: tuple[str, ...] = ()
    v: int = VERSION

    def encode(self) -> bytes:
        data = {"v": self.v, "kind": self.kind, "src": self.src, "dst": self.dst,
                "id": self.id, "corr": self.corr, "body": self.body}
        if self.acks:
            data["acks"] = self.acks
        return msgpack.packb(data, use_bin_type=True)

    def acknowledged(self) -> list[str]:
        """Every id this envelope acknowledges: ``corr`` of an ``ack``, and ``acks``."""
        ids = list(self.acks)
        if self.kind == ACK and self.corr:
            ids.insert(0, self.corr)
        return ids

    def reply(self, kind: str, body: Any = None, id: str = "") -> Envelope:
        """An envelope back to this one's sender, correlated to its id."""
        return Envelope(kind=kind, src=self.dst, dst=self.src, id=id, corr=self.id, body=body)


def decode(frame: bytes) -> Envelope:
    try:
        data = msgpack.unpackb(frame, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"not msgpack: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("envelope is not a map")
    version = data.get("v")
    # ``True == 1`` and ``1.0 == 1`` in Python: only the integer itself is this version.
    if type(version) is not int or version != VERSION:
        raise ProtocolError(f"envelope version {version!r}, expected {VERSION}")
    kind = data.get("kind")
    # A list or map is unhashable, so the type is checked before the set lookup.
    if not isinstance(kind, str) or kind not in KINDS:
        raise ProtocolError(f"unknown envelope kind {kind!r}")
    src, dst = data.get("src"), data.get("dst")
    if not isinstance(src, str) or not isinstance(dst, str):
        raise ProtocolError("envelope src and dst must be strings")
    acks = data.get("acks") or ()
    if not isinstance(acks, list | tuple) or not all(isinstance(a, str) for a in acks):
        raise ProtocolError("envelope acks must be a list of strings")
    return Envelope(kind=kind, src=src, dst=dst, id=str(data.get("id") or ""),
                    corr=str(data.get("corr") or ""), body=data.get("body"), acks=tuple(acks))


# ----------------------------------------------------------------- events


def encode_event(topic: str, event: dict[str, Any]) -> list[bytes]:
    return [topic.encode("utf-8"), msgpack.packb(event, use_bin_type=True)]


def decode_event(frames: list[bytes]) -> tuple[str, dict[str, Any]]:
    if len(frames) != 2:
        raise ProtocolError(f"event has {len(frames)} frames, expected 2")
    try:
        topic = frames[0].decode("utf-8")
        body = msgpack.unpackb(frames[1], raw=False)
    except Exception as exc:
        raise ProtocolError(f"malformed event: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError("event body is not a map")
    return topic, body


def session_topic(name: str, what: str) -> str:
    """``session.<name>.<what>``: state, logon, logout, resend, reject, seqreset, ..."""
    return f"{SESSION_TOPICS}{name}.{what}"


def actor_topic(name: str, what: str) -> str:
    """``actor.<name>.<what>``: up, down, heartbeat."""
    return f"actor.{name}.{what}"


def parse_actor_topic(topic: str) -> tuple[str, str] | None:
    """``(name, what)`` of an ``actor.<name>.<what>`` topic, else None; a name may contain dots."""
    return _parse_named_topic(topic, ACTOR_TOPICS)


def parse_session_topic(topic: str) -> tuple[str, str] | None:
    """``(name, what)`` of a ``session.<name>.<what>`` topic, else None; a name may contain dots."""
    return _parse_named_topic(topic, SESSION_TOPICS)


def _parse_named_topic(topic: str, prefix: str) -> tuple[str, str] | None:
    if not topic.startswith(prefix):
        return None
    name, dot, what = topic[len(prefix):].rpartition(".")
    if not dot or not name or not what:
        return None
    return name, what


def broker_topic(what: str) -> str:
    """``broker.<what>``: started, heartbeat."""
    return f"{BROKER_TOPICS}{what}"


# ------------------------------------------------------- broker-written envelopes


def welcome(dst: str, *, corr: str, instance: str) -> Envelope:
    """The broker's answer to ``hello``; it carries the timing the broker judges liveness by."""
    return Envelope(kind=WELCOME, src=BROKER, dst=dst, corr=corr,
                    body={"instance": instance, "heartbeat_interval_s": HEARTBEAT_INTERVAL_S,
                          "liveness": LIVENESS})


def undeliverable(refused: Envelope, reason: str) -> Envelope:
    """Tells the sender of ``refused`` that it was not forwarded: the sender still owns it."""
    return Envelope(kind=UNDELIVERABLE, src=BROKER, dst=refused.src, corr=refused.id,
                    body={"dst": refused.dst, "reason": reason})


@dataclass
class IdSource:
    """Message ids unique per sender across restarts: ``<pid>-<start>-<n>``."""

    prefix: str = field(default_factory=lambda: f"{os.getpid():x}-{os.urandom(3).hex()}")
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def next(self) -> str:
        return f"{self.prefix}-{next(self._counter)}"
