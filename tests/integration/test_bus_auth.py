"""The bus with keys: the broker as a real process with a policy, and real CURVE clients with real keys.

Each attack an open bus allows is tried against a broker with keys and must be
refused, logged and published as ``audit.refused``: an unlisted key, a key
using another actor's name (to receive its traffic or send as it), a session
key sending a command or a deliver to a session it is not paired with, a key
reading events without the right, a forged event on another session's topic.
An operator's command goes through and is published as ``audit.command``
(who, what, when). An open bus still works, and its broker says so loudly.

Keys are made by ``fixmesh keys create`` (the real command); the policy is the
JSON file ``fixmesh broker --config`` writes, built here by hand so that a
key with unusual rights (``quiet``: a name but no right to read events) can be
in it. ``test_topology_derives_each_keys_rights`` checks what a topology
gives each key. Every socket has linger 0 and is closed; every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.gateway.bus import BusClient, CurveKeys, load_curve_keys
from actors.gateway.topology import ConfigError, load_topology
from broker import protocol
from broker.auth import Throttle
from broker.protocol import ANY, BusPolicy, Principal
from tests.integration.test_broker import (
    REPO_ROOT,
    WAIT_S,
    BrokerProcess,
    BusEndpoints,
    RawActor,
    Watcher,
)
from tests.integration.test_bus_client import Pump
from tests.interop import free_ports

FIXMESH = Path(sys.executable).parent / "fixmesh"
#: Long enough for several hello retries, heartbeats and reconnects: what is refused stays refused.
REFUSED_FOR_S = 2.0
KEYS = ("broker", "client", "venue", "other", "ops", "watcher", "quiet", "mallory")


def fixmesh(*args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FIXMESH), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s)


def public_key(keys_dir: Path, name: str) -> str:
    return load_curve_keys(name, keys_dir / f"{name}.key_secret", keys_dir / "broker.key").public_key.decode()


def policy_for(keys_dir: Path) -> BusPolicy:
    """The rights a topology gives a pair (client, venue), an operator and a subscriber, and two more keys:
    ``other``, a session in no pair, and ``quiet``, a name without the right to read events. ``mallory``
    has a key pair but is not listed."""
    def principal(name: str, **rights: Any) -> Principal:
        return Principal(name, public_key(keys_dir, name), **rights)

    return BusPolicy(str(keys_dir / "broker.key_secret"), (
        principal("client", names=frozenset({"client"}), deliver_to=frozenset({"venue"}), subscribe=True),
        principal("venue", names=frozenset({"venue"}), deliver_to=frozenset({"client"}), subscribe=True),
        principal("other", names=frozenset({"other"}), subscribe=True),
        principal("ops", name_prefixes=("ctl-ops-",), command_to=frozenset({ANY}), audit=True, subscribe=True),
        principal("watcher", subscribe=True),
        principal("quiet", names=frozenset({"quiet"})),
    ))


class SecureBus:
    """A broker with keys on random loopback ports, the keys folder, and a ZeroMQ context for the clients."""

    def __init__(self, directory: Path) -> None:
        self.keys_dir = directory / "keys"
        made = fixmesh("keys", "create", *KEYS, "--dir", str(self.keys_dir))
        assert made.returncode == 0, made.stderr
        self.policy_file = directory / "policy.json"
        self.policy_file.write_text(policy_for(self.keys_dir).to_json())
        self.endpoints = BusEndpoints.random()
        self.broker = BrokerProcess(self.endpoints, directory / "broker.log", policy=self.policy_file)
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._closing: list[Any] = []

    def keys(self, name: str) -> CurveKeys:
        return load_curve_keys(name, self.keys_dir / f"{name}.key_secret", self.keys_dir / "broker.key")

    def actor(self, name: str, key: str | None = None, identity: bytes | None = None) -> RawActor:
        """A raw DEALER with ``key``'s keys (default: the key named ``name``) that says it is ``name``."""
        actor = RawActor(self.ctx, self.endpoints.router, name, curve=self.keys(key or name), identity=identity)
        self._closing.append(actor)
        return actor

    def watcher(self, key: str, *prefixes: str) -> Watcher:
        watcher = Watcher(self.ctx, self.endpoints.xpub, *prefixes, curve=self.keys(key))
        self._closing.append(watcher)
        return watcher

    def audit(self) -> Watcher:
        """An operator's view of the audit events, ready (its subscription reached the broker)."""
        watcher = self.watcher("ops", protocol.AUDIT_TOPICS, protocol.broker_topic("heartbeat"))
        watcher.ready()
        return watcher

    def close(self) -> None:
        for item in self._closing:
            item.close()
        self.ctx.destroy(linger=0)
        if self.broker.alive:
            self.broker.terminate()


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[SecureBus]:
    secure = SecureBus(tmp_path)
    try:
        yield secure
    finally:
        secure.close()
        print(secure.broker.log())  # shown by pytest only when the test failed


def refused_event(audit: Watcher, reason: str, **fields: str) -> dict[str, Any]:
    """The next ``audit.refused`` event for ``reason`` whose body has ``fields``."""
    def match(topic: str, body: dict[str, Any]) -> bool:
        return topic == protocol.audit_topic("refused") and body.get("reason") == reason and \
            all(body.get(k) == v for k, v in fields.items())

    return audit.wait_for(match, what=f"audit.refused {reason} {fields}")[2]


def assert_nothing_for(actor: RawActor, seconds: float) -> None:
    env = actor.receive(seconds)
    assert env is None, f"{actor.name} received {env}"


# ----------------------------------------------------------------- who connects


def test_an_unlisted_key_is_refused_and_never_welcomed(bus: SecureBus) -> None:
    audit = bus.audit()
    mallory = bus.actor("mallory")
    with pytest.raises(AssertionError, match="no welcome"):
        mallory.join(timeout_s=REFUSED_FOR_S)
    fingerprint = protocol.key_fingerprint(public_key(bus.keys_dir, "mallory"))
    event = refused_event(audit, "unlisted key", key=fingerprint, plane="business plane (ROUTER)")
    assert event["actor"] == protocol.BROKER and isinstance(event["time_ns"], int)
    # Its events are refused at the handshake as well: nothing reaches the subscriber side either.
    reader = bus.watcher("mallory")
    with pytest.raises(AssertionError, match="no broker.heartbeat"):
        reader.wait_topic(protocol.broker_topic("heartbeat"), REFUSED_FOR_S)
    assert f"unlisted key {fingerprint} refused on the business plane" in bus.broker.log()


def test_a_client_without_curve_is_never_welcomed(bus: SecureBus) -> None:
    plain = RawActor(bus.ctx, bus.endpoints.router, "client")  # a DEALER with no keys, named like a session
    try:
        with pytest.raises(AssertionError, match="no welcome"):
            plain.join(timeout_s=REFUSED_FOR_S)
    finally:
        plain.close()


def test_a_key_without_the_subscribe_right_receives_no_events(bus: SecureBus) -> None:
    audit = bus.audit()
    quiet = bus.actor("quiet")
    quiet.join()  # listed: it may act as "quiet" on the business plane
    reader = bus.watcher("quiet")  # every topic
    with pytest.raises(AssertionError, match="no broker.heartbeat"):
        reader.wait_topic(protocol.broker_topic("heartbeat"), REFUSED_FOR_S)
    assert not reader.seen
    refused_event(audit, "no right on this plane", principal="quiet", plane="event plane (XPUB)")
    # A key with the right reads them, from the same broker at the same time.
    bus.watcher("watcher").ready()


# ----------------------------------------------------------------- which name


def test_a_key_cannot_take_another_actors_name(bus: SecureBus) -> None:
    audit = bus.audit()
    venue = bus.actor("venue")
    venue.join()
    # The client's key, its DEALER even naming itself "venue" the way an open bus would route by.
    thief = bus.actor("venue", key="client", identity=b"venue")
    thief.send(protocol.HELLO, id="take-over")
    refused = thief.expect(protocol.UNDELIVERABLE)
    assert refused.corr == "take-over" and refused.body["reason"] == protocol.REASON_FORBIDDEN
    event = refused_event(audit, "name not allowed", principal="client", src="venue")
    assert event["kind"] == protocol.HELLO
    assert "key client may not act as 'venue'" in bus.broker.log()
    # The venue keeps its name: what is sent to it reaches it, and nothing reaches the thief.
    client = bus.actor("client")
    client.join()
    client.send(protocol.DELIVER, dst="venue", id="order-1", body=b"35=D")
    got = venue.expect(protocol.DELIVER)
    assert (got.src, got.id, got.body) == ("client", "order-1", b"35=D")
    thief.send(protocol.COMMAND, dst="venue", id="c-1", body={"cmd": "status"})
    assert thief.expect(protocol.UNDELIVERABLE).body["reason"] == protocol.REASON_FORBIDDEN
    assert_nothing_for(thief, 0.5)
    assert_nothing_for(venue, 0.5)


def test_a_heartbeat_on_a_new_connection_moves_the_name_there(bus: SecureBus) -> None:
    """A cut link healed: the actor's DEALER connected again (with keys, a new routing identity) while the
    broker still had it up on the old connection, and it says no hello, since it never knew it was gone. Its
    heartbeat moves the name to the new connection and announces it up, so its peers resend."""
    venue = bus.actor("venue")
    venue.join()
    old = bus.actor("client")
    old.join()
    watcher = bus.watcher("watcher", protocol.actor_topic("client", "up"), protocol.broker_topic("heartbeat"))
    watcher.ready()
    new = bus.actor("client")
    new.send(protocol.HEARTBEAT)
    assert new.expect(protocol.WELCOME).dst == "client"
    watcher.wait_topic(protocol.actor_topic("client", "up"))
    venue.send(protocol.DELIVER, dst="client", id="report-1", body=b"35=8")
    got = new.expect(protocol.DELIVER)
    assert (got.src, got.id) == ("venue", "report-1")
    assert_nothing_for(old, 0.5)
    assert "heartbeat on a new connection" in bus.broker.log()


def test_a_deliver_as_another_session_or_to_a_stranger_is_refused(bus: SecureBus) -> None:
    audit = bus.audit()
    venue = bus.actor("venue")
    venue.join()
    # "other" is a session in no pair: as "client" (the venue's peer) it is refused by name ...
    forger = bus.actor("client", key="other")
    forger.send(protocol.DELIVER, dst="venue", id="forged-1", body=b"35=D|55=XYZ")
    assert forger.expect(protocol.UNDELIVERABLE).body["reason"] == protocol.REASON_FORBIDDEN
    refused_event(audit, "name not allowed", principal="other", src="client", dst="venue")
    # ... and as itself, by destination: it may deliver to no one.
    other = bus.actor("other")
    other.join()
    other.send(protocol.DELIVER, dst="venue", id="forged-2", body=b"35=D|55=XYZ")
    assert other.expect(protocol.UNDELIVERABLE).body["reason"] == protocol.REASON_FORBIDDEN
    refused_event(audit, "destination not allowed", principal="other", src="other", dst="venue")
    assert_nothing_for(venue, 1.0)


# ----------------------------------------------------------------- commands


def test_a_session_key_may_not_command_a_session(bus: SecureBus) -> None:
    audit = bus.audit()
    venue = bus.actor("venue")
    venue.join()
    client = bus.actor("client")
    client.join()
    client.send(protocol.COMMAND, dst="venue", id="c-logout", body={"cmd": "logout", "text": "gotcha"})
    refused = client.expect(protocol.UNDELIVERABLE)
    assert refused.corr == "c-logout"
    assert refused.body == {"dst": "venue", "reason": protocol.REASON_FORBIDDEN}
    event = refused_event(audit, "command not allowed", principal="client", dst="venue")
    assert event["command"] == "logout" and event["kind"] == protocol.COMMAND
    assert_nothing_for(venue, 1.0)
    assert "key client may not command venue" in bus.broker.log()


def test_an_operator_command_reaches_the_session_and_is_audited(bus: SecureBus) -> None:
    audit = bus.audit()
    venue = bus.actor("venue")
    venue.join()
    operator = bus.actor("ctl-ops-4242", key="ops")
    operator.join()
    before_ns = time.time_ns()
    operator.send(protocol.COMMAND, dst="venue", id="c-seq", body={"cmd": "set_seqnums", "next_sender": 120})
    command = venue.expect(protocol.COMMAND)
    assert (command.src, command.id, command.body) == ("ctl-ops-4242", "c-seq",
                                                       {"cmd": "set_seqnums", "next_sender": 120})
    venue.send(protocol.REPLY, dst="ctl-ops-4242", id="r-1", corr="c-seq", body={"ok": True})
    assert operator.expect(protocol.REPLY).corr == "c-seq"
    _, _, event = audit.wait_topic(protocol.audit_topic("command"))
    assert event["principal"] == "ops" and event["src"] == "ctl-ops-4242"  # who
    assert event["dst"] == "venue" and event["command"] == "set_seqnums"  # what
    assert event["args"] == {"next_sender": 120} and event["outcome"] == "forwarded"
    assert before_ns <= event["time_ns"] <= time.time_ns()  # when
    assert event["key"] == protocol.key_fingerprint(public_key(bus.keys_dir, "ops"))
    # The operator's key is bound to its own prefix: not another operator's tools, not a session.
    impostor = bus.actor("ctl-admin-1", key="ops")
    with pytest.raises(AssertionError, match="no welcome"):
        impostor.join(timeout_s=1.0)
    refused_event(audit, "name not allowed", principal="ops", src="ctl-admin-1")


# ----------------------------------------------------------------- events


def publisher(bus: SecureBus, key: str) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = bus.ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    bus.keys(key).apply(sock)
    sock.connect(bus.endpoints.xsub)
    bus._closing.append(sock)
    return sock


def publish(sock: zmq.Socket[bytes], topic: str, **body: Any) -> None:
    sock.send_multipart(protocol.encode_event(topic, {"time_ns": time.time_ns(), **body}))


def connected_publisher(bus: SecureBus, key: str, name: str, reader: Watcher) -> zmq.Socket[bytes]:
    """A PUB whose events are known to reach ``reader``: its own marker arrived (slow joiner, bounded)."""
    sock = publisher(bus, key)
    stop_at = time.monotonic() + WAIT_S
    while time.monotonic() < stop_at:
        publish(sock, protocol.session_topic(name, "marker"), actor=name)
        try:
            reader.wait_topic(protocol.session_topic(name, "marker"), 0.2)
            return sock
        except AssertionError:
            continue
    raise AssertionError(f"{key}'s events never reached the reader")


def test_a_forged_event_on_another_sessions_topic_is_dropped(bus: SecureBus) -> None:
    audit = bus.audit()
    reader = bus.watcher("watcher", "session.", "actor.", "broker.", "coordinator.", "pair.", "audit.command")
    reader.ready()
    pub = connected_publisher(bus, "client", "client", reader)
    forged = [protocol.session_topic("venue", "state"), protocol.actor_topic("venue", "heartbeat"),
              protocol.actor_topic("venue", "down"), protocol.broker_topic("started"),
              protocol.audit_topic("command"), "pair.client-venue.connect", "coordinator.started"]
    for topic in forged:
        publish(pub, topic, actor="venue", old="CONNECTED", new="DISCONNECTED", forged=True)
    # Events of one connection keep their order: once this one arrived, the forged ones were judged.
    publish(pub, protocol.session_topic("client", "state"), actor="client", old="CONNECTED", new="CONNECTED")
    reader.wait_topic(protocol.session_topic("client", "state"))
    assert not [topic for _, topic, body in reader.seen if body.get("forged")], reader.seen
    for topic in forged:
        refused_event(audit, "topic not allowed", principal="client", topic=topic)
    assert "key client may not publish 'session.venue.state'" in bus.broker.log()


# ----------------------------------------------------------------- the bus client


def test_bus_clients_with_keys_deliver_and_ack_through_the_broker(bus: SecureBus) -> None:
    ep = bus.endpoints
    client = BusClient("client", ep.router, ep.xsub, xpub_endpoint=ep.xpub, curve=bus.keys("client"))
    venue = BusClient("venue", ep.router, ep.xsub, xpub_endpoint=ep.xpub, curve=bus.keys("venue"))
    try:
        pump = Pump(client, venue)
        pump.welcomed()
        for i in range(20):
            client.deliver("venue", f"o-{i}", {"n": i})
        pump.until(lambda: client.pending == 0, what="20 delivers acked")
        # Duplicates are normal (the venue's ``up`` makes the client resend what was not acked yet).
        assert {env.body["n"] for env in pump.received["venue"]} == set(range(20))
        assert all(env.src == "client" and env.kind == protocol.DELIVER for env in pump.received["venue"])
        # A command from a session's client is refused by the broker: the answer is an undeliverable.
        command_id = client.command("venue", {"cmd": "status"})
        pump.until(lambda: any(e.kind == protocol.UNDELIVERABLE and e.corr == command_id
                               for e in pump.received["client"]), what="the command refused")
        assert not [e for e in pump.received["venue"] if e.kind == protocol.COMMAND]
    finally:
        client.close()
        venue.close()


# ----------------------------------------------------------------- an open bus, and refusing to start


def test_an_open_bus_works_and_its_broker_warns(tmp_path: Path) -> None:
    endpoints = BusEndpoints.random()
    broker = BrokerProcess(endpoints, tmp_path / "broker.log")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        actor = RawActor(ctx, endpoints.router, "client")
        actor.join()
        log = broker.log()
        assert "WARNING" in log and "NO KEYS: this bus is open" in log, log
        # Open means open: any local process publishes as any session (what keys stop above).
        reader = Watcher(ctx, endpoints.xpub, "session.venue.")
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.connect(endpoints.xsub)
        try:
            stop_at = time.monotonic() + WAIT_S
            while time.monotonic() < stop_at and not reader.seen:
                publish(pub, protocol.session_topic("venue", "state"), actor="venue", forged=True)
                try:
                    reader.wait_topic(protocol.session_topic("venue", "state"), 0.2)
                except AssertionError:
                    continue
            assert reader.seen and reader.seen[-1][2].get("forged") is True
        finally:
            pub.close(linger=0)
            reader.close()
            actor.close()
    finally:
        ctx.destroy(linger=0)
        broker.terminate()


def test_an_open_broker_refuses_to_bind_where_other_hosts_reach_it(tmp_path: Path) -> None:
    router, xsub, xpub = free_ports(3)
    result = subprocess.run([sys.executable, "-m", "broker", "--router", f"tcp://0.0.0.0:{router}",
                             "--xsub", f"tcp://127.0.0.1:{xsub}", "--xpub", f"tcp://127.0.0.1:{xpub}"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert f"--router tcp://0.0.0.0:{router} is reachable from other hosts" in result.stderr
    assert "refuses to start" in result.stderr


def test_a_broker_refuses_a_secret_key_others_may_read(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    assert fixmesh("keys", "create", *KEYS, "--dir", str(keys_dir)).returncode == 0
    policy = tmp_path / "policy.json"
    policy.write_text(policy_for(keys_dir).to_json())
    (keys_dir / "broker.key_secret").chmod(0o644)
    e = BusEndpoints.random()
    result = subprocess.run([sys.executable, "-m", "broker", "--router", e.router, "--xsub", e.xsub, "--xpub", e.xpub,
                             "--policy", str(policy)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"chmod 600 {keys_dir / 'broker.key_secret'}" in result.stderr


# ----------------------------------------------------------------- the topology


TOPOLOGY = """\
broker: {{router: {router}, xsub: tcp://127.0.0.1:5571, xpub: tcp://127.0.0.1:5572}}
{bus}sessions:
  client: {{role: handler, sender_comp_id: GW, target_comp_id: TRADER, port: 9876}}
  venue: {{role: driven, sender_comp_id: GW, target_comp_id: VENUE, port: 9877}}
  spare: {{role: initiator, sender_comp_id: GW, target_comp_id: OTHER, port: 9878}}
pairs:
  - {{handler: client, driven: venue}}
"""


def write_topology(path: Path, router: str, bus: str = "") -> Path:
    path.write_text(TOPOLOGY.format(router=router, bus=bus))
    return path


def test_a_topology_between_hosts_without_keys_is_refused(tmp_path: Path) -> None:
    topology = write_topology(tmp_path / "t.yaml", "tcp://10.1.2.3:5570")
    with pytest.raises(ConfigError, match=r"broker\.router: tcp://10\.1\.2\.3:5570 is not a loopback address.*"
                                          r"refuses to start without keys"):
        load_topology(topology)
    result = fixmesh("broker", "--config", str(topology))  # and the broker program says so, exit status 2
    assert result.returncode == 2 and "refuses to start without keys" in result.stderr
    secured = write_topology(tmp_path / "s.yaml", "tcp://10.1.2.3:5570", "bus: {keys_dir: keys}\n")
    assert load_topology(secured).bus is not None
    assert load_topology(write_topology(tmp_path / "l.yaml", "tcp://127.0.0.1:5570")).bus is None


def test_topology_derives_each_keys_rights(tmp_path: Path) -> None:
    bus = "bus: {keys_dir: keys, operators: [ops], subscribers: [watcher]}\n"
    topology = load_topology(write_topology(tmp_path / "t.yaml", "tcp://127.0.0.1:5570", bus))
    with pytest.raises(ConfigError, match=r"bus\.keys_dir: cannot read the public key of 'client' in "
                                          r".*keys/client\.key .*fixmesh keys create"):
        topology.bus_principals()
    with pytest.raises(ConfigError, match=r"cannot read the secret key of 'venue' in .*keys/venue\.key_secret"):
        topology.bus_keys("venue")
    made = fixmesh("keys", "create", "--config", str(tmp_path / "t.yaml"))
    assert made.returncode == 0, made.stderr
    listed = fixmesh("keys", "list", "--config", str(tmp_path / "t.yaml"))
    assert listed.returncode == 0, listed.stdout
    for name, role in (("broker", "broker"), ("client", "session (handler)"), ("coordinator", "coordinator"),
                       ("ops", "operator"), ("watcher", "subscriber")):
        line = next(line for line in listed.stdout.splitlines() if line.startswith(name + " "))
        assert role in line and "SHA256:" in line and "secret 0600" in line, line
    rights = {p.name: p for p in topology.bus_principals()}
    assert set(rights) == {"client", "venue", "spare", "coordinator", "ops", "watcher"}
    assert rights["client"].may_use("client") and not rights["client"].may_use("venue")
    assert rights["client"].may_deliver("venue") and not rights["client"].may_deliver("spare")
    assert not rights["spare"].may_deliver("venue") and not rights["client"].may_command("venue")
    assert rights["coordinator"].may_command("venue") and not rights["coordinator"].may_command("spare")
    assert rights["coordinator"].may_publish("pair.client-venue.connect")
    assert not rights["coordinator"].may_publish("session.venue.state")
    assert rights["ops"].may_use("ctl-ops-12") and rights["ops"].may_command("spare") and rights["ops"].audit
    assert not rights["watcher"].acts and rights["watcher"].subscribe
    assert all(not p.may_publish("audit.command") and not p.may_publish("broker.started") for p in rights.values())
    keys = topology.bus_keys("venue")
    assert keys is not None and keys.principal == "venue" and "secret_key" not in repr(keys)
    again = fixmesh("keys", "create", "client", "--dir", str(tmp_path / "keys"))
    assert again.returncode == 1 and "never overwritten" in again.stderr


# ----------------------------------------------------------------- the rules, without sockets


def test_principal_rules() -> None:
    ops = Principal("ops", "k" * 40, name_prefixes=("ctl-ops-",), command_to=frozenset({ANY}), audit=True)
    assert ops.may_use("ctl-ops-1") and not ops.may_use("ctl-ops-") and not ops.may_use("ctl-opsx-1")
    assert ops.may_command("anything") and not ops.may_deliver("venue")
    venue = Principal("venue", "v" * 40, names=frozenset({"venue"}), deliver_to=frozenset({"client"}))
    assert venue.may_use("venue") and not venue.may_use("broker") and not venue.may_use("venue2")
    assert venue.may_publish("session.venue.state") and venue.may_publish("actor.venue.heartbeat")
    assert not venue.may_publish("session.client.state") and not venue.may_publish("session.venue")
    assert not venue.may_publish("session.venue.x.state")  # names may hold dots: this one is "venue.x"
    assert not venue.may_publish("broker.heartbeat") and not venue.may_publish("audit.command")
    assert not venue.may_publish("pair.client-venue.connect")
    coordinator = Principal("coordinator", "c" * 40, names=frozenset({"coordinator"}), publish=("pair.",))
    assert coordinator.may_publish("pair.client-venue.connect") and not coordinator.may_publish("paired")


def test_policy_round_trip_and_refusals() -> None:
    principals = (Principal("venue", "v" * 40, names=frozenset({"venue"}), deliver_to=frozenset({"client"}),
                            subscribe=True),
                  Principal("ops", "o" * 40, name_prefixes=("ctl-ops-",), command_to=frozenset({ANY}), audit=True))
    policy = BusPolicy("/keys/broker.key_secret", principals)
    assert BusPolicy.from_json(policy.to_json()) == policy
    entry = principals[0].to_data()
    for change, problem in (({"names": ["broker"]}, "not actor names"), ({"public_key": "short"}, "40-character"),
                            ({"publish": ["session."]}, "published by name"), ({"publish": ["s"]}, "by name"),
                            ({"rights": True}, "unknown field 'rights'"), ({"subscribe": "yes"}, "true or false")):
        bad = {"version": 1, "secret_key_file": "/k", "principals": [{**entry, **change}]}
        with pytest.raises(protocol.ProtocolError, match=problem):
            BusPolicy.from_json(json.dumps(bad))
    twice = {"version": 1, "secret_key_file": "/k", "principals": [entry, {**entry, "name": "other"}]}
    with pytest.raises(protocol.ProtocolError, match="two principals have the public_key"):
        BusPolicy.from_json(json.dumps(twice))


def test_throttle_reports_the_first_then_once_per_interval_with_the_count() -> None:
    throttle = Throttle(every_s=60.0)
    assert throttle.report("k", 0.0) == 0
    assert [throttle.report("k", t) for t in (1.0, 2.0, 59.0)] == [None, None, None]
    assert throttle.report("other", 3.0) == 0
    assert throttle.report("k", 60.0) == 3
    assert throttle.report("k", 61.0) is None


def test_loopback_endpoints() -> None:
    for local in ("tcp://127.0.0.1:5570", "tcp://127.9.9.9:1", "tcp://localhost:5570", "tcp://[::1]:5570",
                  "ipc:///tmp/bus", "inproc://bus", "tcp://10.0.0.1:0;127.0.0.1:5570"):
        assert protocol.is_loopback_endpoint(local), local
    for remote in ("tcp://*:5570", "tcp://0.0.0.0:5570", "tcp://10.0.0.5:5570", "tcp://broker.example:5570",
                   "tcp://eth0:5570", "pgm://eth0;239.192.1.1:5555"):
        assert not protocol.is_loopback_endpoint(remote), remote
