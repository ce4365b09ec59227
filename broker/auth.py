"""The bus with keys: CURVE on every broker socket, a ZAP handler in the broker's own loop, and the rules.

Rules (the whole of it; ``docs/bus.md`` says what each one stops):

* **Who connects.** Every broker socket is a CURVE server. ZeroMQ asks the
  ZAP handler (``ZapHandler``, pyzmq's ``zmq.auth.Authenticator`` driven by
  the broker's poll loop: no thread) about each new connection, per plane
  (its ZAP domain): the ROUTER admits a listed key that may use some actor
  name, the XSUB the same, the XPUB only a key with the ``subscribe`` right.
  Anything else never completes the handshake. An admitted connection's
  messages carry the key's principal name as their ``User-Id``.
* **Which name.** The business plane does not trust the name a DEALER gives
  itself: with keys the ROUTER hands out its own random routing identities
  (the clients set none, and ``ROUTER_HANDOVER`` is off, so no connection
  can take over another's identity), and the broker maps actor names to
  those identities only at a hello from a key that may use the name. So no
  key can receive another actor's traffic. ZeroMQ's ZAP request does not
  carry the peer's routing identity (its identity frame is the broker
  socket's own), which is why the name is bound at the hello and not at the
  handshake.
* **What it sends.** Per envelope, the ``User-Id`` of the connection (read
  once per connection, then cached by routing identity) is the principal:
  ``src`` must be a name it may use; a ``deliver`` or ``ack`` must go to a
  ``dst`` it may deliver to; a ``command`` to one it may command. A refused
  hello, deliver or command is answered ``undeliverable`` with reason
  ``forbidden``, logged and published as ``audit.refused``; a refused ack or
  reply is dropped the same way. A command of an audited key (an operator)
  is published as ``audit.command`` with who, what and when.
* **What it publishes.** Per event, the ``User-Id`` of the event is the
  principal; a topic it may not publish (``Principal.may_publish``) is
  dropped, logged and published as ``audit.refused``.
* **The pair's link.** Two brokers of a pair both hold the broker's key
  pair. Each one's state PUB is a CURVE server (domain ``fixmesh.peer``)
  that admits that key only, and each one's SUB connects as a CURVE client
  with it and trusts only a server that proves it holds the same key; no
  principal's key reaches this link.
* **Noise.** Refusals repeat (a refused client reconnects every 100 ms, a
  refused hello comes back every second): ``Throttle`` lets the first of a
  kind through and then one a minute with the count in between.

Without a policy the broker runs as before (no CURVE, names are routing
identities) and warns at start that the bus is open to any local process.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.auth
from zmq.utils import z85

from broker import protocol
from broker.protocol import BusPolicy, Principal, ProtocolError

log = logging.getLogger("fixmesh.broker")

#: ZAP domains, one per plane, so the handler knows which socket a connection is for.
DOMAIN_BUSINESS = "fixmesh.business"
DOMAIN_PUBLISH = "fixmesh.publish"
DOMAIN_SUBSCRIBE = "fixmesh.subscribe"
#: The link between the two brokers of a pair: only the broker's own key (which both brokers hold) connects.
DOMAIN_PEER = "fixmesh.peer"
PLANE_OF_DOMAIN = {DOMAIN_BUSINESS: "business plane (ROUTER)", DOMAIN_PUBLISH: "event plane (XSUB)",
                   DOMAIN_SUBSCRIBE: "event plane (XPUB)", DOMAIN_PEER: "pair link (peer state)"}

#: A repeated refusal is reported again after this long, with the count in between.
REPORT_EVERY_S = 60.0
#: Distinct refusals remembered by the throttle; beyond that it starts afresh (and reports again).
THROTTLE_KEYS = 10_000
#: Routing identities remembered with their principal; beyond that the cache starts afresh.
IDENTITY_CACHE = 65_536
#: ZAP requests answered per wake-up.
ZAP_BATCH = 100
#: Audit values longer than this are cut, so one command cannot make a large event.
AUDIT_TEXT_CHARS = 200
AUDIT_ARGS = 16

#: ``audit.refused`` reasons.
REFUSED_UNLISTED = "unlisted key"
REFUSED_PLANE = "no right on this plane"
REFUSED_NAME = "name not allowed"
REFUSED_DESTINATION = "destination not allowed"
REFUSED_COMMAND = "command not allowed"
REFUSED_TOPIC = "topic not allowed"


class PolicyError(ValueError):
    """A policy file or key file the broker cannot start with; the message names the file and the fix."""


class Policy:
    """The principals by key and by name, and the broker's own key pair (Z85)."""

    def __init__(self, public_key: bytes, secret_key: bytes, principals: tuple[Principal, ...]) -> None:
        self.public_key = public_key
        self.secret_key = secret_key
        self.principals = principals
        self._by_key = {p.public_key.encode("ascii"): p for p in principals}
        self._by_name = {p.name: p for p in principals}

    def __repr__(self) -> str:  # never the secret key
        return f"Policy({len(self.principals)} principals, broker key {protocol.key_fingerprint(self.public_key)})"

    def by_key(self, public_key_z85: bytes) -> Principal | None:
        return self._by_key.get(public_key_z85)

    def by_name(self, name: str) -> Principal | None:
        return self._by_name.get(name)

    def admits(self, domain: str, principal: Principal) -> bool:
        """Whether a listed key may connect to the plane of ``domain``."""
        if domain == DOMAIN_SUBSCRIBE:
            return principal.subscribe
        if domain == DOMAIN_PUBLISH:
            return principal.acts or bool(principal.publish)
        return principal.acts


def load_policy(path: str) -> Policy:
    """The policy file and the broker's secret key it names; ``PolicyError`` says what is wrong and how to fix it."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the bus policy ({exc.strerror}); `fixmesh broker --config "
                          "TOPOLOGY` writes it, or give the path of one") from None
    try:
        policy = BusPolicy.from_json(text)
    except ProtocolError as exc:
        raise PolicyError(f"{path}: {exc}") from None
    public_key, secret_key = load_secret_key(policy.secret_key_file)
    if any(p.public_key.encode("ascii") == public_key for p in policy.principals):
        raise PolicyError(f"{path}: the broker's own key {policy.secret_key_file} is also a principal's; "
                          "give the broker a key pair of its own")
    return Policy(public_key, secret_key, policy.principals)


def load_secret_key(path: str) -> tuple[bytes, bytes]:
    """(public, secret) Z85 of a ``.key_secret`` file that only its owner may read."""
    fix = "create it with `fixmesh keys create NAME --dir DIR`"
    try:
        mode = os.stat(path).st_mode
        public_key, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{path}: cannot read the broker's secret key ({exc}); {fix}") from None
    if secret_key is None:
        raise PolicyError(f"{path}: holds no secret key (a public .key file?); give the .key_secret file; {fix}")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PolicyError(f"{path}: other users may read this secret key (mode {stat.S_IMODE(mode):04o}); "
                          f"chmod 600 {path}")
    return public_key, secret_key


def curve_server(sock: zmq.Socket[bytes], policy: Policy, domain: str) -> None:
    """Make ``sock`` a CURVE server whose connections the ZAP handler judges under ``domain``. Before ``bind``."""
    sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode("ascii"))
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, policy.public_key)
    sock.setsockopt(zmq.CURVE_SECRETKEY, policy.secret_key)


class Throttle:
    """Which refusals to report: the first of each kind, then one per ``every_s`` with the count between.

    Pure: time is an argument (monotonic seconds).
    """

    def __init__(self, every_s: float = REPORT_EVERY_S, max_keys: int = THROTTLE_KEYS) -> None:
        self.every_s = every_s
        self.max_keys = max_keys
        #: key -> (monotonic seconds of the last report, refusals not reported since)
        self._seen: dict[Any, tuple[float, int]] = {}

    def report(self, key: Any, now_s: float) -> int | None:
        """None: stay silent. Otherwise report now; the number is how many were held back since the last report."""
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= self.max_keys:
                self._seen.clear()
            self._seen[key] = (now_s, 0)
            return 0
        last_s, held = seen
        if now_s - last_s < self.every_s:
            self._seen[key] = (last_s, held + 1)
            return None
        self._seen[key] = (now_s, 0)
        return held


@dataclass(frozen=True, slots=True)
class Refusal:
    """What the broker refused: logged (throttled) and published as ``audit.refused``."""

    reason: str
    text: str
    principal: str = ""
    key: str = ""
    plane: str = ""
    address: str = ""
    kind: str = ""
    src: str = ""
    dst: str = ""
    command: str = ""
    topic: str = ""

    def body(self) -> dict[str, Any]:
        """The event body's fields (the broker adds ``time_ns``, ``actor`` and ``instance``); empty ones left out."""
        fields = {"reason": self.reason, "text": self.text, "principal": self.principal, "key": self.key,
                  "plane": self.plane, "address": self.address, "kind": self.kind, "src": self.src,
                  "dst": self.dst, "command": self.command, "topic": self.topic}
        return {key: value for key, value in fields.items() if value}

    def throttle_key(self) -> tuple[str, ...]:
        return (self.reason, self.principal, self.key, self.plane, self.kind, self.src, self.dst, self.topic)


def command_audit(principal: Principal, env: protocol.Envelope, outcome: str) -> dict[str, Any]:
    """The ``audit.command`` fields: who (principal, src), what (dst, command, its arguments), and the outcome.

    The broker never looks into a forwarded body but here, and only at a command's top level: the
    ``cmd`` field names the command, scalar fields are its arguments (cut to a few, short ones).
    """
    body = env.body if isinstance(env.body, dict) else {}
    name = body.get("cmd")
    args: dict[str, Any] = {}
    for key, value in body.items():
        if key == "cmd" or not isinstance(key, str) or len(args) >= AUDIT_ARGS:
            continue
        if isinstance(value, str):
            args[key] = value[:AUDIT_TEXT_CHARS]
        elif value is None or isinstance(value, (bool, int, float)):
            args[key] = value
    return {"principal": principal.name, "key": protocol.key_fingerprint(principal.public_key), "src": env.src,
            "dst": env.dst, "id": env.id, "command": name[:AUDIT_TEXT_CHARS] if isinstance(name, str) else "",
            "args": args, "outcome": outcome}


class ZapHandler(zmq.auth.Authenticator):
    """pyzmq's ZAP authenticator, driven by the broker's poll loop instead of a thread.

    Its ZAP socket (``zap_socket``) is polled with the broker's other sockets; ``handle_ready`` answers
    what is waiting. A key is admitted by the policy (``callback``, pyzmq's credentials-provider hook,
    per ZAP domain) and its principal's name becomes the ``User-Id`` of every message of the connection.
    """

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], policy: Policy,
                 on_refused: Callable[[Refusal], None]) -> None:
        super().__init__(context, log=logging.getLogger("fixmesh.broker.zap"))
        self.policy = policy
        self._on_refused = on_refused
        self._address = ""
        for domain in PLANE_OF_DOMAIN:
            self.configure_curve_callback(domain, self)

    # pyzmq's credentials-provider interface: ``callback(domain, z85_key) -> bool``.
    def callback(self, domain: str, key: bytes) -> bool:
        plane = PLANE_OF_DOMAIN.get(domain, domain)
        fingerprint = protocol.key_fingerprint(key)
        if domain == DOMAIN_PEER:
            if key == self.policy.public_key:
                return True
            self._on_refused(Refusal(REFUSED_UNLISTED, f"key {fingerprint} refused on the {plane} from "
                                     f"{self._address}: only the broker's own key may", key=fingerprint, plane=plane,
                                     address=self._address))
            return False
        principal = self.policy.by_key(key)
        if principal is None:
            self._on_refused(Refusal(REFUSED_UNLISTED, f"unlisted key {fingerprint} refused on the {plane} "
                                     f"from {self._address}", key=fingerprint, plane=plane, address=self._address))
            return False
        if not self.policy.admits(domain, principal):
            self._on_refused(Refusal(REFUSED_PLANE, f"key {principal.name} ({fingerprint}) has no right on the "
                                     f"{plane}; refused from {self._address}", principal=principal.name,
                                     key=fingerprint, plane=plane, address=self._address))
            return False
        return True

    def curve_user_id(self, client_public_key: bytes) -> str:
        key = z85.encode(client_public_key)
        if key == self.policy.public_key:
            return protocol.BROKER
        principal = self.policy.by_key(key)
        return principal.name if principal is not None else ""

    def handle_ready(self) -> None:
        """Answer the ZAP requests waiting, at most ``ZAP_BATCH``."""
        for _ in range(ZAP_BATCH):
            try:
                request = self.zap_socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.handle(request)

    def handle(self, request: list[bytes]) -> None:
        if len(request) >= 6 and request[5] != b"CURVE":
            # Every broker socket is a CURVE server; anything else is refused, never waved through.
            self._send_zap_reply(request[1], b"400", b"CURVE only")
            return
        self._address = request[3].decode("utf-8", "replace") if len(request) > 3 else ""
        # The base class's handler is a coroutine; with a synchronous credentials provider it never
        # suspends, so it runs to completion in one step.
        step = self.handle_zap_message(request)
        try:
            step.send(None)
        except StopIteration:
            return
        step.close()
        raise RuntimeError("the ZAP handler suspended; it must answer at once")
