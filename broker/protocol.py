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
    The broker answers each with a ``heartbeat`` of its own (``broker_heartbeat``),
    so an actor knows its broker alive, and the same instance, at its own
    pace: a deployment's actors are not all woken at once by a broadcast.
  - ``deliver``: addressed payload; ``id`` is chosen by the sender and is
    unique per sender (the origin of a forwarded FIX message).
    A ``deliver`` may carry ``more``: further ``[id, body]`` delivers from
    the same ``src`` to the same ``dst``, each one as if it had come in an
    envelope of its own, in order after the first. A sender's delivers of
    one turn of its loop travel so: one frame through the broker instead of
    one each. The broker routes it as any deliver (by ``dst``); its
    ``undeliverable`` names the first id, and the sender keeps the others
    all the same (they are as refused as the first).
  - ``ack``: the receiver persisted ``corr`` (the ``id`` it acknowledges)
    and every id in ``acks``. A ``deliver`` may carry ``acks`` too: acks
    owed to its ``dst`` ride on it instead of travelling alone.
  - ``undeliverable``: broker -> sender, ``dst`` is not up; the sender keeps
    the message and sends it again when ``actor.<dst>.up`` is published.
  - ``command`` / ``reply``: control of an actor (connect, disconnect, ...).
  - ``passive``: broker -> actor, this broker is one of a pair and does not
    serve now (it is passive, or still starting): try the other one. Also
    sent, unasked, to every actor of a broker that stops being active.

* **Event plane** (broker XSUB bound for publishers, XPUB bound for
  subscribers). Two frames: the topic (UTF-8, dot-separated, e.g.
  ``session.venue.state``) and a msgpack map with at least ``time_ns`` and
  ``actor``. ZeroMQ prefix subscriptions give topic filtering.

Unknown kinds or versions are reported as ``ProtocolError``; receivers log
and drop them, they never crash a process.

Bodies the broker itself writes (the only bodies it ever looks at):

* ``welcome``: ``{"instance", "heartbeat_interval_s", "liveness"}``;
  ``instance`` is new at every broker start, so a client that sees it change
  knows the broker restarted and resends what is not acknowledged. A hello
  (or heartbeat) whose body asks for a lease (``{"lease": NAME}``) is
  welcomed with ``lease_held`` too; a lease passed on later comes as another
  ``welcome`` with ``lease_held: true``.
* ``heartbeat`` (the answer): ``{"instance"}``, plus ``role`` and ``state``
  in a broker of a pair, as in its ``broker.heartbeat`` event.
* ``passive``: ``{"instance", "role", "state"}`` of the broker that refused.
* ``undeliverable``: ``{"dst", "reason"}``, ``corr`` is the refused ``id``;
  ``reason`` is ``down`` (``dst`` not up), ``busy`` (its queue is full) or,
  on a bus with keys, ``forbidden`` (the sender's key may not do that).

With keys (CURVE), each key is a ``Principal``: the actor names it may use,
whom it may deliver to and command, what it may publish, whether it may
subscribe. The broker enforces them (``broker/auth.py``); the gateway
derives them from the topology; ``BusPolicy`` is the file between the two.
The broker publishes ``audit.command`` for every command of an audited key
and ``audit.refused`` for what it refused.

The broker publishes ``broker.started`` and, every ``HEARTBEAT_INTERVAL_S``,
``broker.heartbeat``, both with ``instance``; ``actor.<name>.up`` and
``actor.<name>.down``. Each actor publishes ``actor.<name>.heartbeat``.
A broker of a pair adds ``role`` and ``state`` to its own events and
publishes ``broker.switch`` at each change of its state.

Two brokers may run as a pair (``broker.pair``): they exchange ``PeerState``
frames every ``HEARTBEAT_INTERVAL_S`` on a PUB/SUB link of their own.
See ``docs/bus.md``.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
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
PASSIVE = "passive"

KINDS = frozenset({HELLO, WELCOME, HEARTBEAT, DELIVER, ACK, UNDELIVERABLE, COMMAND, REPLY, PASSIVE})

#: Reserved name of the broker itself as ``src``/``dst``.
BROKER = "broker"

DEFAULT_ROUTER_ENDPOINT = "tcp://127.0.0.1:5570"
DEFAULT_XSUB_ENDPOINT = "tcp://127.0.0.1:5571"
DEFAULT_XPUB_ENDPOINT = "tcp://127.0.0.1:5572"

#: Largest business frame accepted (ZeroMQ drops a peer that sends more), so
#: one bad sender cannot make the broker allocate without bound. Twice the
#: largest FIX message a session takes (1 MiB, ``actors.fix.codec``): as a
#: forward's msgpack pairs a message grows by at most a quarter (a field
#: ``1=a<SOH>``, 4 bytes, is 5), and one deliver alone is a frame. A frame
#: past the limit would never get through: its sender would send it again and
#: again, and every later forward of its peer would wait behind it.
MAX_FRAME_BYTES = 2 << 20

#: Topic prefixes a bus client subscribes to for liveness and restarts.
ACTOR_TOPICS = "actor."
BROKER_TOPICS = "broker."
SESSION_TOPICS = "session."
#: Written by the broker only: who commanded what, and what the broker refused.
AUDIT_TOPICS = "audit."

#: ``undeliverable`` reasons.
REASON_DOWN = "down"
REASON_BUSY = "busy"
#: The sender's key may not send that (a bus with keys only).
REASON_FORBIDDEN = "forbidden"
#: A ``command`` from an actor that asked for a lease (``LEASE``) and does not hold it now.
REASON_STANDBY = "standby"

#: In a ``hello`` or ``heartbeat`` body: the lease the actor asks for (``{"lease": NAME}``); the broker grants
#: each lease to one live actor at a time, and only its holder's commands pass (``broker.routing.Leases``).
LEASE = "lease"
#: In a ``welcome`` body answering a hello that asked for a lease: whether the actor holds it now.
LEASE_HELD = "lease_held"

# ------------------------------------------------------------ a pair of brokers

#: A broker's role in a pair (``python -m broker --role``), fixed for its life.
ROLE_PRIMARY = "primary"
ROLE_BACKUP = "backup"
PAIR_ROLES = (ROLE_PRIMARY, ROLE_BACKUP)
#: A broker's state in a pair: ``starting`` until it has heard its peer (or a client voted), then ``active``
#: (it serves) or ``passive`` (it refuses clients with ``passive``). A broker without a peer is always active.
STATE_STARTING = "starting"
STATE_ACTIVE = "active"
STATE_PASSIVE = "passive"
PAIR_STATES = (STATE_STARTING, STATE_ACTIVE, STATE_PASSIVE)
#: Intervals without a ``PeerState`` after which a broker counts its peer gone. Fewer than ``LIVENESS``, the
#: intervals of silence after which a client leaves its broker: by the time the clients of a lost broker
#: come to its peer, the peer already counts it gone and lets them in.
PEER_LIVENESS = 2


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
    #: Further delivers to ``dst`` in the same frame, ``(id, body)`` each, after this one (``deliver`` only).
    more: tuple[tuple[str, Any], ...] = ()

    def encode(self) -> bytes:
        data = {"v": self.v, "kind": self.kind, "src": self.src, "dst": self.dst,
                "id": self.id, "corr": self.corr, "body": self.body}
        if self.acks:
            data["acks"] = self.acks
        if self.more:
            data["more"] = self.more
        return msgpack.packb(data, use_bin_type=True)

    def delivers(self) -> list[Envelope]:
        """A ``deliver`` and those it carries in ``more``, each an envelope of its own, in order."""
        if not self.more:
            return [self]
        src, dst = self.src, self.dst
        return [Envelope(DELIVER, src, dst, self.id, body=self.body),
                *(Envelope(DELIVER, src, dst, id, body=body) for id, body in self.more)]

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
    more = data.get("more") or ()
    if more:
        if kind != DELIVER or not isinstance(more, list) \
                or not all(isinstance(m, list) and len(m) == 2 and isinstance(m[0], str) and m[0] for m in more):
            raise ProtocolError("envelope more must be a list of [id, body] on a deliver")
        more = tuple((m[0], m[1]) for m in more)
    return Envelope(kind=kind, src=src, dst=dst, id=str(data.get("id") or ""),
                    corr=str(data.get("corr") or ""), body=data.get("body"), acks=tuple(acks), more=more)


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
    """``broker.<what>``: started, heartbeat, switch (a broker of a pair changed state)."""
    return f"{BROKER_TOPICS}{what}"


def audit_topic(what: str) -> str:
    """``audit.<what>``: command (an audited key's command), refused (what the broker refused)."""
    return f"{AUDIT_TOPICS}{what}"


# ------------------------------------------------------- broker-written envelopes


def welcome(dst: str, *, corr: str, instance: str, lease_held: bool | None = None) -> Envelope:
    """The broker's answer to ``hello``; it carries the timing the broker judges liveness by.

    ``lease_held``: for an actor that asked for a lease, whether it holds it now (None: it asked for none).
    """
    body: dict[str, Any] = {"instance": instance, "heartbeat_interval_s": HEARTBEAT_INTERVAL_S, "liveness": LIVENESS}
    if lease_held is not None:
        body[LEASE_HELD] = lease_held
    return Envelope(kind=WELCOME, src=BROKER, dst=dst, corr=corr, body=body)


def broker_heartbeat(dst: str, body: dict[str, Any]) -> Envelope:
    """The broker's answer to an actor's heartbeat: ``body`` names its instance (and pair state)."""
    return Envelope(kind=HEARTBEAT, src=BROKER, dst=dst, body=body)


def passive(dst: str, *, corr: str, instance: str, role: str, state: str) -> Envelope:
    """A broker of a pair that does not serve now tells ``dst`` so: try the other broker."""
    return Envelope(kind=PASSIVE, src=BROKER, dst=dst, corr=corr,
                    body={"instance": instance, "role": role, "state": state})


def lease_asked(env: Envelope) -> str | None:
    """The lease a ``hello`` or ``heartbeat`` asks for (its body's ``lease``), else None."""
    body = env.body
    if not isinstance(body, dict):
        return None
    lease = body.get(LEASE)
    return lease if isinstance(lease, str) and lease else None


@dataclass(frozen=True, slots=True)
class PeerState:
    """What one broker of a pair tells the other every interval, and at once when its state changes."""

    role: str
    state: str
    instance: str
    #: The instance of the peer this broker has heard lately; empty when none.
    heard: str = ""

    def encode(self) -> bytes:
        return msgpack.packb({"v": VERSION, "role": self.role, "state": self.state, "instance": self.instance,
                              "heard": self.heard}, use_bin_type=True)

    @classmethod
    def decode(cls, frame: bytes) -> PeerState:
        """``ProtocolError`` for anything but a peer state of this version with a known role and state."""
        try:
            data = msgpack.unpackb(frame, raw=False)
        except Exception as exc:
            raise ProtocolError(f"peer state is not msgpack: {exc}") from None
        if not isinstance(data, dict):
            raise ProtocolError("peer state is not a map")
        version = data.get("v")
        if type(version) is not int or version != VERSION:
            raise ProtocolError(f"peer state version {version!r}, expected {VERSION}")
        role, state, instance, heard = data.get("role"), data.get("state"), data.get("instance"), data.get("heard", "")
        if not isinstance(role, str) or role not in PAIR_ROLES:
            raise ProtocolError(f"peer state role {role!r}, expected one of {', '.join(PAIR_ROLES)}")
        if not isinstance(state, str) or state not in PAIR_STATES:
            raise ProtocolError(f"peer state state {state!r}, expected one of {', '.join(PAIR_STATES)}")
        if not isinstance(instance, str) or not isinstance(heard, str):
            raise ProtocolError("peer state instance and heard must be strings")
        return cls(role, state, instance, heard)


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


# ------------------------------------------------------------------ keys and rights


def is_loopback_endpoint(endpoint: str) -> bool:
    """True for an endpoint only this host can reach: ``tcp://`` on a loopback address, ``ipc://``, ``inproc://``.

    ``tcp://*:5570``, ``tcp://0.0.0.0:5570`` and any other host name or address are not: a bus on
    them is reachable from other hosts and must not run without keys.
    """
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    address = endpoint[len("tcp://"):]
    if ";" in address:  # ``tcp://source;destination``: judge the destination
        address = address.rsplit(";", 1)[1]
    host = address.rsplit(":", 1)[0] if ":" in address else address
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_fingerprint(public_key: str | bytes) -> str:
    """A short, stable name for a CURVE public key (its Z85 text): ``SHA256:`` and 16 hex digits."""
    text = public_key.decode("ascii") if isinstance(public_key, bytes) else public_key
    import hashlib  # OpenSSL's libcrypto, about 3.5 MB resident: only a bus with keys needs it

    return "SHA256:" + hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


#: In ``deliver_to`` and ``command_to``: every actor.
ANY = "*"
#: Topics whose second part names the actor they are about; only a key that may use that name publishes them.
NAMED_TOPICS = (ACTOR_TOPICS, SESSION_TOPICS)
#: Topics only the broker publishes.
BROKER_ONLY_TOPICS = (BROKER_TOPICS, AUDIT_TOPICS)


@dataclass(frozen=True, slots=True)
class Principal:
    """One key of a bus with keys and what it may do; the broker names it in logs and audit events.

    Rules (the broker enforces them; ``docs/bus.md``):

    * ``may_use(name)``: the actor names the key may say hello as and send as
      (``src``): one of ``names``, or a name longer than one of ``name_prefixes``
      that starts with it. Never ``broker``.
    * ``may_deliver(dst)``: ``deliver`` and ``ack`` only to ``deliver_to``
      (``*``: anyone). ``reply`` may go to anyone (it answers a command).
    * ``may_command(dst)``: ``command`` only to ``command_to`` (``*``: anyone).
      ``audit``: every command of this key is published as ``audit.command``.
    * ``may_publish(topic)``: ``actor.<n>.*`` and ``session.<n>.*`` for a name
      ``n`` it may use; other topics under one of ``publish``; ``broker.*``
      and ``audit.*`` never.
    * ``subscribe``: may connect to the event plane's XPUB and read every event.
    """

    name: str
    #: The key's Z85 text (40 characters), as in the ``.key`` file.
    public_key: str
    names: frozenset[str] = frozenset()
    name_prefixes: tuple[str, ...] = ()
    deliver_to: frozenset[str] = frozenset()
    command_to: frozenset[str] = frozenset()
    publish: tuple[str, ...] = ()
    audit: bool = False
    subscribe: bool = False

    def may_use(self, name: str) -> bool:
        if name == BROKER:
            return False
        return name in self.names or any(name.startswith(p) and len(name) > len(p) for p in self.name_prefixes)

    def may_deliver(self, dst: str) -> bool:
        return dst in self.deliver_to or ANY in self.deliver_to

    def may_command(self, dst: str) -> bool:
        return dst in self.command_to or ANY in self.command_to

    def may_publish(self, topic: str) -> bool:
        if topic.startswith(BROKER_ONLY_TOPICS):
            return False
        if topic.startswith(NAMED_TOPICS):
            named = parse_actor_topic(topic) or parse_session_topic(topic)
            return named is not None and self.may_use(named[0])
        return any(topic.startswith(prefix) for prefix in self.publish)

    @property
    def acts(self) -> bool:
        """True when the key may use some actor name, so it has business on the ROUTER and the XSUB."""
        return bool(self.names or self.name_prefixes)

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "public_key": self.public_key, "names": sorted(self.names),
                "name_prefixes": list(self.name_prefixes), "deliver_to": sorted(self.deliver_to),
                "command_to": sorted(self.command_to), "publish": list(self.publish), "audit": self.audit,
                "subscribe": self.subscribe}

    @classmethod
    def from_data(cls, data: Any, where: str = "principal") -> Principal:
        """The principal of a policy file's entry; ``ProtocolError`` names ``where`` and the field."""
        if not isinstance(data, dict):
            raise ProtocolError(f"{where}: expected a map")
        unknown = sorted(set(data) - _PRINCIPAL_FIELDS)
        if unknown:
            raise ProtocolError(f"{where}: unknown field {unknown[0]!r}")

        def text(key: str) -> str:
            value = data.get(key)
            if not isinstance(value, str) or not value:
                raise ProtocolError(f"{where}.{key}: expected text, got {value!r}")
            return value

        def texts(key: str) -> list[str]:
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ProtocolError(f"{where}.{key}: expected a list of non-empty texts, got {value!r}")
            return value

        def flag(key: str) -> bool:
            value = data.get(key, False)
            if not isinstance(value, bool):
                raise ProtocolError(f"{where}.{key}: expected true or false, got {value!r}")
            return value

        name, public_key = text("name"), text("public_key")
        if len(public_key) != 40:
            raise ProtocolError(f"{where}.public_key: expected the 40-character Z85 text of a CURVE key")
        names = texts("names")
        if BROKER in names or ANY in names:
            raise ProtocolError(f"{where}.names: {BROKER!r} and {ANY!r} are not actor names")
        publish = texts("publish")
        reserved = [p for p in publish if p.startswith(NAMED_TOPICS + BROKER_ONLY_TOPICS)
                    or any(t.startswith(p) for t in NAMED_TOPICS + BROKER_ONLY_TOPICS)]
        if reserved:
            raise ProtocolError(f"{where}.publish: {reserved[0]!r} covers topics that are published by name "
                                "(actor., session.) or by the broker only (broker., audit.)")
        return cls(name=name, public_key=public_key, names=frozenset(names),
                   name_prefixes=tuple(texts("name_prefixes")), deliver_to=frozenset(texts("deliver_to")),
                   command_to=frozenset(texts("command_to")), publish=tuple(publish), audit=flag("audit"),
                   subscribe=flag("subscribe"))


_PRINCIPAL_FIELDS = frozenset({"name", "public_key", "names", "name_prefixes", "deliver_to", "command_to", "publish",
                               "audit", "subscribe"})
POLICY_VERSION = 1


@dataclass(frozen=True, slots=True)
class BusPolicy:
    """What a broker with keys needs: its own secret key file and every principal (JSON, ``python -m broker --policy``).

    The gateway writes it from the topology (``fixmesh broker --config``); the broker reads it at start.
    """

    #: The broker's own ``.key_secret`` file (made by ``fixmesh keys create``).
    secret_key_file: str
    principals: tuple[Principal, ...]

    def to_json(self) -> str:
        return json.dumps({"version": POLICY_VERSION, "secret_key_file": self.secret_key_file,
                           "principals": [p.to_data() for p in self.principals]}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BusPolicy:
        """``ProtocolError`` for anything but a valid policy of this version, naming what is wrong."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ProtocolError(f"not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != POLICY_VERSION:
            raise ProtocolError(f"not a bus policy of version {POLICY_VERSION}")
        secret = data.get("secret_key_file")
        if not isinstance(secret, str) or not secret:
            raise ProtocolError("secret_key_file: expected the path of the broker's .key_secret file")
        raw = data.get("principals")
        if not isinstance(raw, list):
            raise ProtocolError("principals: expected a list")
        principals = tuple(Principal.from_data(item, f"principals[{i}]") for i, item in enumerate(raw))
        names, keys = [p.name for p in principals], [p.public_key for p in principals]
        for kind, values in (("name", names), ("public_key", keys)):
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ProtocolError(f"principals: two principals have the {kind} {twice[0]!r}")
        return cls(secret, principals)
