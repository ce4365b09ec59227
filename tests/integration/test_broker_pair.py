"""Two broker processes as a pair on loopback: fail-over, fail-back, a cut link, a split that heals, leases.

The brokers are ``python -m broker --role primary|backup`` (``BrokerProcess``); the clients are
``BusClient``s of the test process driven by one poll loop (``Pump``), with both brokers' endpoints,
as actors run them. Between the brokers, each direction of their state link can go through a
``LinkProxy`` (a TCP forwarder in the test) so that a test can cut the link between the two brokers
alone while every client still reaches both. Every broker's own events (``broker.heartbeat`` each
second with its ``state``, ``broker.switch`` at each change) are read from both XPUBs throughout,
and no observation may show both brokers active unless the test cut their link.

Every wait is bounded; every process is stopped by its pid; every socket closed with linger 0.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.gateway.bus import BrokerAddress, BusClient, CurveKeys, Outcome, load_curve_keys
from broker import protocol
from broker.protocol import BusPolicy, Envelope, Principal
from tests.integration.test_broker import HOST, BrokerProcess, BusEndpoints, RawActor, Watcher
from tests.integration.test_bus_auth import fixmesh
from tests.integration.test_bus_client import Pump
from tests.interop import free_ports

#: What the brief promises: the backup serves within this long of the primary's loss.
FAILOVER_BOUND_S = 5.0
START_S = 15.0
#: The longest a LinkProxy lives, whatever the test does.
PROXY_LIFE_S = 300.0


# ----------------------------------------------------------------- harness


class LinkProxy:
    """A TCP forwarder in front of one broker's state endpoint; ``cut`` drops every connection and refuses
    new ones, ``heal`` listens again on the same port. One thread, ended by ``close`` or after its life."""

    def __init__(self, target_port: int) -> None:
        self.port = free_ports(1)[0]
        self.target_port = target_port
        self._want_open = True
        self._stop = threading.Event()
        self._settled = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"link-proxy-{self.port}", daemon=True)
        self._thread.start()
        assert self._settled.wait(5.0), "the proxy did not start"

    @property
    def endpoint(self) -> str:
        return f"tcp://{HOST}:{self.port}"

    def cut(self) -> None:
        self._settled.clear()
        self._want_open = False
        assert self._settled.wait(5.0), "the proxy did not cut"

    def heal(self) -> None:
        self._settled.clear()
        self._want_open = True
        assert self._settled.wait(5.0), "the proxy did not heal"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        listener: socket.socket | None = None
        pairs: dict[socket.socket, socket.socket] = {}
        stop_at = time.monotonic() + PROXY_LIFE_S
        try:
            while not self._stop.is_set() and time.monotonic() < stop_at:
                if self._want_open and listener is None:
                    listener = socket.create_server((HOST, self.port), reuse_port=False)
                    listener.setblocking(False)
                elif not self._want_open and listener is not None:
                    listener.close()
                    listener = None
                    for sock in list(pairs):
                        sock.close()
                    pairs.clear()
                self._settled.set()
                readable, _, _ = select.select([*([listener] if listener else []), *pairs], [], [], 0.02)
                for sock in readable:
                    if sock is listener:
                        self._accept(listener, pairs)
                    elif sock in pairs:
                        self._forward(sock, pairs)
        finally:
            if listener is not None:
                listener.close()
            for sock in pairs:
                sock.close()

    def _accept(self, listener: socket.socket, pairs: dict[socket.socket, socket.socket]) -> None:
        try:
            client, _ = listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection((HOST, self.target_port), timeout=1.0)
        except OSError:
            client.close()
            return
        pairs[client], pairs[upstream] = upstream, client

    @staticmethod
    def _forward(sock: socket.socket, pairs: dict[socket.socket, socket.socket]) -> None:
        other = pairs[sock]
        try:
            data = sock.recv(65536)
            if data:
                other.sendall(data)
                return
        except OSError:
            pass
        for end in (sock, other):
            pairs.pop(end, None)
            end.close()


class BrokerPair:
    """A primary and a backup on random loopback ports; with ``proxied`` their state link goes through proxies."""

    def __init__(self, directory: Path, *, proxied: bool = False, policy: Path | None = None) -> None:
        ports = [f"tcp://{HOST}:{port}" for port in free_ports(8)]
        self.endpoints = {"primary": BusEndpoints(*ports[0:3]), "backup": BusEndpoints(*ports[4:7])}
        peer = {"primary": ports[3], "backup": ports[7]}
        self.proxies: dict[str, LinkProxy] = {}
        if proxied:
            # The proxy in front of each broker's state endpoint: the other broker connects through it.
            self.proxies = {role: LinkProxy(int(peer[role].rsplit(":", 1)[1])) for role in ("primary", "backup")}
        heard_at = {role: self.proxies[role].endpoint if proxied else peer[role] for role in peer}
        self.brokers = {
            role: BrokerProcess(self.endpoints[role], directory / f"{role}.log", policy, extra=(
                "--role", role, "--peer-bind", peer[role], "--peer-connect", heard_at[other]))
            for role, other in (("primary", "backup"), ("backup", "primary"))}

    @property
    def primary(self) -> BrokerProcess:
        return self.brokers["primary"]

    @property
    def backup(self) -> BrokerProcess:
        return self.brokers["backup"]

    def address(self, role: str) -> BrokerAddress:
        ep = self.endpoints[role]
        return BrokerAddress(ep.router, ep.xsub, ep.xpub)

    def client(self, name: str, **options: Any) -> BusClient:
        p = self.endpoints["primary"]
        return BusClient(name, p.router, p.xsub, xpub_endpoint=p.xpub, backup=self.address("backup"), **options)

    def cut(self) -> None:
        for proxy in self.proxies.values():
            proxy.cut()

    def heal(self) -> None:
        for proxy in self.proxies.values():
            proxy.heal()

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()
        for broker in self.brokers.values():
            if broker.alive:
                broker.terminate()


class PairWatch:
    """Both brokers' own events, read without blocking; the last state each live broker said, and a check
    at every observation that the two are never both active."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], pair: BrokerPair, curve: CurveKeys | None = None) -> None:
        self.subs = {role: ctx.socket(zmq.SUB) for role in ("primary", "backup")}
        for role, sub in self.subs.items():
            sub.setsockopt(zmq.LINGER, 0)
            if curve is not None:
                curve.apply(sub)
            sub.connect(pair.endpoints[role].xpub)
            sub.setsockopt(zmq.SUBSCRIBE, protocol.BROKER_TOPICS.encode())
        #: role -> the state its broker said last; None: not heard, or its process is gone.
        self.state: dict[str, str | None] = {"primary": None, "backup": None}
        self.events: list[tuple[float, str, str, dict[str, Any]]] = []
        self.split_brain: list[str] = []
        self.allow_two = False

    def poll(self) -> None:
        for role, sub in self.subs.items():
            for _ in range(100):
                try:
                    frames = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                topic, body = protocol.decode_event(frames)
                self.events.append((time.monotonic(), role, topic, body))
                state = body.get("state")
                if isinstance(state, str):
                    self.state[role] = state
                if not self.allow_two and all(s == protocol.STATE_ACTIVE for s in self.state.values()):
                    self.split_brain.append(f"{topic} from the {role}: both brokers say they are active")

    def gone(self, role: str) -> None:
        """The test killed ``role``'s process: what it said last no longer counts."""
        self.poll()
        self.state[role] = None

    def wait(self, condition: Callable[[], bool], what: str, timeout_s: float = START_S,
             pump: Pump | None = None) -> None:
        stop_at = time.monotonic() + timeout_s
        while time.monotonic() < stop_at:
            self.poll()
            if condition():
                return
            if pump is not None:
                pump.once()
            else:
                time.sleep(0.02)
        raise AssertionError(f"{what} not within {timeout_s} s; states {self.state}; "
                             f"last events {[(r, t, b.get('state')) for _, r, t, b in self.events[-10:]]}")

    def switches(self, role: str) -> list[dict[str, Any]]:
        return [b for _, r, t, b in self.events if r == role and t == protocol.broker_topic("switch")]

    def close(self) -> None:
        for sub in self.subs.values():
            sub.close(linger=0)


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        yield context
    finally:
        context.destroy(linger=0)


@contextlib.contextmanager
def running_pair(directory: Path, ctx: zmq.Context[zmq.Socket[bytes]], **options: Any) -> Iterator[
        tuple[BrokerPair, PairWatch]]:
    pair = BrokerPair(directory, **options)
    watch = PairWatch(ctx, pair)
    try:
        watch.wait(lambda: watch.state == {"primary": "active", "backup": "passive"}, "primary active, backup passive")
        yield pair, watch
    finally:
        watch.close()
        pair.close()
        for role, broker in pair.brokers.items():
            print(f"--- {role} ---\n{broker.log()}")  # shown by pytest only when the test failed


class Flow:
    """Delivers both ways between two clients, counted the way actors dedupe: by (src, id)."""

    def __init__(self, a: BusClient, b: BusClient) -> None:
        self.clients = {"a": a, "b": b}
        self.peer = {"a": "b", "b": "a"}
        self.sent = {"a": 0, "b": 0}
        self.first_seen: dict[str, set[str]] = {"a": set(), "b": set()}
        self.copies = Counter[str]()
        self.outcomes = Counter[Outcome]()

    def receive(self, client: BusClient, env: Envelope) -> None:
        if env.kind != protocol.DELIVER:
            return
        assert env.src == self.peer[client.name]
        self.copies[client.name] += 1
        self.first_seen[client.name].add(env.id)
        client.ack(env)

    def send(self, upto: int, per_turn: int = 32) -> None:
        for name, client in self.clients.items():
            for _ in range(per_turn):
                if self.sent[name] >= upto:
                    break
                outcome = client.deliver(self.peer[name], f"{name}-{self.sent[name]}", {"n": self.sent[name]})
                self.outcomes[outcome] += 1
                if outcome is Outcome.FULL:
                    break
                self.sent[name] += 1

    def received(self, upto: int) -> bool:
        return all(len(s) >= upto for s in self.first_seen.values())

    def done(self, upto: int) -> bool:
        return (all(n >= upto for n in self.sent.values()) and all(c.pending == 0 for c in self.clients.values())
                and self.received(upto))

    def check(self, total: int) -> None:
        for name, other in self.peer.items():
            assert self.first_seen[name] == {f"{other}-{n}" for n in range(total)}, f"{name} missed delivers"


def on(clients: list[BusClient], index: int) -> Callable[[], bool]:
    return lambda: all(c.welcomed and c.broker_index == index for c in clients)


# ----------------------------------------------------------------- tests


def test_the_primary_serves_and_the_backup_sends_clients_away(
        tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    with running_pair(tmp_path, ctx) as (pair, watch):
        refused = RawActor(ctx, pair.endpoints["backup"].router, "early")
        try:
            refused.send(protocol.HELLO, id="h1")
            answer = refused.expect(protocol.PASSIVE)
            assert answer.corr == "h1" and answer.body["role"] == "backup" and answer.body["state"] == "passive"
        finally:
            refused.close()
        served = RawActor(ctx, pair.endpoints["primary"].router, "early")
        try:
            welcome = served.join()
            assert welcome.body["instance"] != answer.body["instance"]
        finally:
            served.close()
        def beats() -> set[tuple[str, str]]:
            return {(b["role"], b["state"]) for _, r, t, b in watch.events if t == "broker.heartbeat"}

        watch.wait(lambda: beats() >= {("primary", "active"), ("backup", "passive")}, "both brokers' heartbeats")
        assert "starting -> active" in pair.primary.log() and not watch.split_brain


TOTAL = 900
KILL_AT = 300
BACK_AT = 600


def test_the_clients_follow_the_active_broker_over_the_primarys_loss_its_return_and_the_backups_loss(
        tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    """kill -9 of the primary mid-stream (it stays dead: its host is lost): both clients are on the backup
    within FAILOVER_BOUND_S. The primary comes back passive: no split brain, the clients stay. Then the
    backup is killed: the clients go back to the primary. Every deliver arrives; deduped by (src, id), once."""
    with running_pair(tmp_path, ctx) as (pair, watch):
        a, b = pair.client("a", max_outbox=256), pair.client("b", max_outbox=256)
        flow = Flow(a, b)
        pump = Pump(a, b, handler=flow.receive)
        on_backup = Watcher(ctx, pair.endpoints["backup"].xpub, "session.a.")  # subscribed long before the move
        try:
            watch.wait(on([a, b], 0), "both clients welcomed by the primary", pump=pump)
            first = a.broker_instance

            def stream(upto: int) -> Callable[[], bool]:
                def step() -> bool:
                    flow.send(upto)
                    return flow.received(upto)
                return step

            watch.wait(stream(KILL_AT), f"{KILL_AT} each way", pump=pump)
            pair.primary.kill()
            killed_s = time.monotonic()
            watch.gone("primary")
            watch.wait(lambda: stream(TOTAL)() or on([a, b], 1)(), "both clients on the backup", pump=pump)
            failover_s = time.monotonic() - killed_s
            print(f"fail-over to the backup: {failover_s:.2f} s")
            assert on([a, b], 1)() and failover_s < FAILOVER_BOUND_S
            assert a.broker_instance not in (None, first)
            assert [s["to"] for s in watch.switches("backup")][-1] == "active"
            a.publish("session.a.moved", {"to": "backup"})  # held until the backup's XSUB has subscribed a's XPUB
            watch.wait(lambda: a.events_held == 0 and bool(on_backup.socket.poll(0)), "a's event through the backup",
                       pump=pump)
            assert on_backup.wait_topic("session.a.moved")[2]["to"] == "backup"

            watch.wait(stream(BACK_AT), f"{BACK_AT} each way through the backup", timeout_s=30, pump=pump)
            pair.primary.start()  # the primary's host is back
            watch.wait(lambda: stream(TOTAL)() or watch.state["primary"] == "passive", "the primary back, passive",
                       pump=pump)
            assert on([a, b], 1)(), "the clients stay on the active backup"

            watch.wait(lambda: stream(TOTAL)() and flow.done(TOTAL), f"{TOTAL} each way, all acked", timeout_s=60,
                       pump=pump)
            pair.backup.kill()
            killed_s = time.monotonic()
            watch.gone("backup")
            watch.wait(on([a, b], 0), "both clients back on the primary", pump=pump)
            failback_s = time.monotonic() - killed_s
            print(f"fail-over back to the primary: {failback_s:.2f} s")
            assert failback_s < FAILOVER_BOUND_S
            more = TOTAL + 200
            watch.wait(lambda: stream(more)() and flow.done(more), f"{more} each way", timeout_s=60, pump=pump)
        finally:
            a.close()
            b.close()
            on_backup.close()
        flow.check(more)
        assert flow.outcomes[Outcome.QUEUED] + flow.outcomes[Outcome.FULL] > 0, "the outages were not felt"
        assert not watch.split_brain, watch.split_brain
        assert "yields" not in pair.primary.log() + pair.backup.log(), "two actives had to be resolved"
        assert "Traceback" not in pair.primary.log() + pair.backup.log()


def test_a_cut_between_the_brokers_alone_leaves_the_backup_passive(
        tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    with running_pair(tmp_path, ctx, proxied=True) as (pair, watch):
        a, b = pair.client("a"), pair.client("b")
        flow = Flow(a, b)
        pump = Pump(a, b, handler=flow.receive)
        try:
            watch.wait(on([a, b], 0), "both clients on the primary", pump=pump)
            pair.cut()
            cut_s = time.monotonic()
            sent = 0

            def trickle() -> bool:
                nonlocal sent
                sent += 1
                flow.send(min(sent // 10, 2000), per_turn=1)
                return time.monotonic() - cut_s > 4 * protocol.HEARTBEAT_INTERVAL_S * protocol.PEER_LIVENESS

            watch.wait(trickle, "the cut held for a while", timeout_s=30, pump=pump)
            assert "peer is silent" in pair.backup.log(), "the cut did not reach the backup"
            assert on([a, b], 0)(), "the clients left the primary"
            assert watch.state == {"primary": "active", "backup": "passive"}
            pair.heal()
            upto = flow.sent["a"]
            watch.wait(lambda: flow.done(upto), "every deliver acked", timeout_s=20, pump=pump)
            watch.wait(lambda: pump.run_for(2 * protocol.HEARTBEAT_INTERVAL_S) is None, "healed", pump=pump)
        finally:
            a.close()
            b.close()
        flow.check(upto)
        assert [s["to"] for s in watch.switches("backup")] in ([], ["passive"]), "the backup changed its state"
        assert not watch.split_brain and "-> active" not in pair.backup.log()


def test_after_a_split_with_a_client_on_each_side_the_backup_yields_and_sends_it_back(
        tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    """Two actives are possible only when the link between the brokers is cut and a client votes at the
    backup; as soon as they hear each other again, the backup yields and tells its clients to go."""
    with running_pair(tmp_path, ctx, proxied=True) as (pair, watch):
        pair.cut()
        watch.allow_two = True
        lonely = RawActor(ctx, pair.endpoints["backup"].router, "lonely")
        try:
            watch.wait(lambda: "peer is silent" in pair.backup.log(), "the backup counts its peer gone")
            welcome = lonely.join()
            assert welcome.kind == protocol.WELCOME
            watch.wait(lambda: watch.state == {"primary": "active", "backup": "active"}, "two actives (split)")
            pair.heal()
            told = lonely.expect(protocol.PASSIVE, timeout_s=10)
            assert told.corr == "" and told.body["role"] == "backup"
            watch.wait(lambda: watch.state == {"primary": "active", "backup": "passive"}, "one active again")
        finally:
            lonely.close()
        assert "yields" in pair.backup.log()
        assert "active ->" not in pair.primary.log(), "the primary never stopped serving"


def heartbeat(*actors: RawActor) -> None:
    for actor in actors:
        actor.send(protocol.HEARTBEAT, body={protocol.LEASE: "coordinator"} if "coord" in actor.name else None)


def test_only_the_lease_holder_commands_and_the_lease_passes_when_it_falls_silent(
        tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    endpoints = BusEndpoints.random()
    broker = BrokerProcess(endpoints, tmp_path / "broker.log")
    first, second, venue = (RawActor(ctx, endpoints.router, n) for n in ("coordinator", "coordinator-b", "venue"))
    try:
        lease = {protocol.LEASE: "coordinator"}
        first.socket.send(Envelope(kind=protocol.HELLO, src="coordinator", dst="broker", id="h", body=lease).encode())
        held = first.expect(protocol.WELCOME, timeout_s=START_S)
        assert held.body[protocol.LEASE_HELD] is True
        second.send(protocol.HELLO, id="h2", body=lease)
        assert second.expect(protocol.WELCOME).body[protocol.LEASE_HELD] is False
        venue.join()

        second.send(protocol.COMMAND, dst="venue", id="c2", body={"cmd": "status"})
        refused = second.expect(protocol.UNDELIVERABLE)
        assert refused.corr == "c2" and refused.body["reason"] == protocol.REASON_STANDBY
        first.send(protocol.COMMAND, dst="venue", id="c1", body={"cmd": "status"})
        assert venue.expect(protocol.COMMAND).id == "c1"

        # The holder falls silent; the broker marks it down after its liveness and passes the lease on.
        silent_from = time.monotonic()
        granted: Envelope | None = None
        for _ in range(100):
            heartbeat(second, venue)
            env = second.receive(0.2)
            while env is not None and env.kind == protocol.HEARTBEAT:  # the broker's answers to the heartbeats
                env = second.receive(0.05)
            if env is not None and env.kind == protocol.WELCOME:
                granted = env
                break
        assert granted is not None and granted.body[protocol.LEASE_HELD] is True and granted.corr == ""
        assert time.monotonic() - silent_from < protocol.HEARTBEAT_INTERVAL_S * protocol.LIVENESS + 2
        second.send(protocol.COMMAND, dst="venue", id="c3", body={"cmd": "status"})
        assert venue.expect(protocol.COMMAND).id == "c3"
        # The old holder wakes up: its heartbeat brings it back as a candidate, its commands are refused.
        heartbeat(first)
        assert first.expect(protocol.WELCOME).body[protocol.LEASE_HELD] is False
        first.send(protocol.COMMAND, dst="venue", id="c4", body={"cmd": "status"})
        assert first.expect(protocol.UNDELIVERABLE).body["reason"] == protocol.REASON_STANDBY
        reached = [env.id for env in iter(lambda: venue.receive(0.3), None)]
        assert "c4" not in reached, "a refused command reached the session"
        assert "lease coordinator passed to coordinator-b" in broker.log()
    finally:
        for actor in (first, second, venue):
            actor.close()
        if broker.alive:
            broker.terminate()


def test_a_pair_with_keys_talks_over_curve_and_nobody_else_hears_its_link(
        tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    keys_dir = tmp_path / "keys"
    made = fixmesh("keys", "create", "broker", "watcher", "client", "--dir", str(keys_dir))
    assert made.returncode == 0, made.stderr

    def keys(name: str) -> CurveKeys:
        return load_curve_keys(name, keys_dir / f"{name}.key_secret", keys_dir / "broker.key")

    principals = (Principal("watcher", keys("watcher").public_key.decode(), subscribe=True),
                  Principal("client", keys("client").public_key.decode(), names=frozenset({"client"}),
                            subscribe=True))
    policy = tmp_path / "policy.json"
    policy.write_text(BusPolicy(str(keys_dir / "broker.key_secret"), principals).to_json())
    pair = BrokerPair(tmp_path, policy=policy)
    watch = PairWatch(ctx, pair, curve=keys("watcher"))
    eavesdropper = ctx.socket(zmq.SUB)
    audit = Watcher(ctx, pair.endpoints["primary"].xpub, protocol.AUDIT_TOPICS, protocol.broker_topic("heartbeat"),
                    curve=keys("watcher"))
    try:
        watch.wait(lambda: watch.state == {"primary": "active", "backup": "passive"},
                   "the pair formed over its CURVE link")
        audit.ready()
        eavesdropper.setsockopt(zmq.LINGER, 0)
        keys("client").apply(eavesdropper)
        peer_endpoint = pair.primary.extra[pair.primary.extra.index("--peer-bind") + 1]
        eavesdropper.connect(peer_endpoint)
        eavesdropper.setsockopt(zmq.SUBSCRIBE, b"")
        refusal = audit.wait_for(lambda t, b: t == "audit.refused" and "pair link" in b.get("plane", ""),
                                 timeout_s=5, what="the pair link's refusal")[2]
        assert refusal["reason"] == "unlisted key"
        assert eavesdropper.poll(int(2.5 * protocol.HEARTBEAT_INTERVAL_S * 1000)) == 0, "a stranger heard the link"
        client = pair.client("client", curve=keys("client"))
        try:
            Pump(client).until(lambda: client.welcomed and client.broker_index == 0, what="welcome with keys")
        finally:
            client.close()
    finally:
        eavesdropper.close(linger=0)
        audit.close()
        watch.close()
        pair.close()
    assert not watch.split_brain


def test_the_brokers_log_each_change_and_the_instance_that_caused_it(
        tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    with running_pair(tmp_path, ctx) as (pair, _):
        text = pair.primary.log()
    assert re.search(r"primary broker \w+: starting -> active: .* \(peer \w+ is (starting|passive)\)", text), text


def test_a_primary_restarted_at_once_serves_again_and_nothing_is_lost(
        tmp_path: Path, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    """supervisord restarts a killed primary within a second: the clients end on it or on the backup, never
    on two actives, and every deliver arrives."""
    with running_pair(tmp_path, ctx) as (pair, watch):
        a, b = pair.client("a", max_outbox=256), pair.client("b", max_outbox=256)
        flow = Flow(a, b)
        pump = Pump(a, b, handler=flow.receive)
        try:
            watch.wait(on([a, b], 0), "both clients on the primary", pump=pump)
            watch.wait(lambda: (flow.send(200), flow.received(200))[1], "200 each way", pump=pump)
            pair.primary.kill()
            watch.gone("primary")
            restarted_s = time.monotonic()
            pair.primary.start()
            watch.wait(lambda: (flow.send(600), flow.done(600))[1], "600 each way, all acked", timeout_s=30,
                       pump=pump)
            served_s = time.monotonic() - restarted_s
            print(f"600 each way {served_s:.2f} s after the restart; clients on broker {a.broker_index}")
            index = a.broker_index
            assert on([a, b], index)(), "the clients ended on different brokers"
            served_by = "primary" if index == 0 else "backup"
            watch.wait(lambda: watch.state[served_by] == "active", f"the {served_by} saying it is active", pump=pump)
        finally:
            a.close()
            b.close()
        flow.check(600)
        assert not watch.split_brain, watch.split_brain
        assert "yields" not in pair.primary.log() + pair.backup.log()
