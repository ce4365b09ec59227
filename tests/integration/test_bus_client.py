"""``BusClient`` against the real broker process: round trips, absent peers, back pressure, retransmits, kill -9.

The clients run in the test process, driven by one poll loop the way an actor
drives its own (``Pump``); the broker is ``python -m broker`` on random
loopback ports (``BrokerProcess`` from ``test_broker.py``). Timers that the
test needs to control run on a fake clock, so no test sleeps to wait for a
retransmit; every loop is bounded in iterations and in time.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.fix.timefmt import Instant
from actors.gateway import bus
from actors.gateway.bus import BusClient, Outcome
from actors.gateway.outbox import BROKER_SILENCE_S
from actors.gateway.publisher import HELD_EVENTS, HELD_RETRY_S, STUCK_REPEAT_S, STUCK_WARNING_S, Publisher
from bench.ports import free_port
from broker import protocol
from broker.protocol import Envelope
from tests.integration.test_broker import WAIT_S, BrokerProcess, BusEndpoints, Watcher

POLL_MS = 10
MAX_ITERATIONS = 200_000


class FakeClock:
    """Both clocks, stepped by the test."""

    def __init__(self) -> None:
        self.mono_s = 1000.0
        self.utc_ns = 1_700_000_000_000_000_000

    def __call__(self) -> Instant:
        return Instant(self.mono_s, self.utc_ns)

    def advance(self, seconds: float) -> None:
        self.mono_s += seconds
        self.utc_ns += int(seconds * 1e9)


Handler = Callable[[BusClient, Envelope], None]


def ack_everything(client: BusClient, env: Envelope) -> None:
    if env.kind == protocol.DELIVER:
        client.ack(env)


class Pump:
    """One poll loop over several clients, as each actor process runs its own."""

    def __init__(self, *clients: BusClient, handler: Handler = ack_everything) -> None:
        self.clients = list(clients)
        self.handler = handler
        self.received: dict[str, list[Envelope]] = {c.name: [] for c in clients}

    def add(self, client: BusClient) -> None:
        self.clients.append(client)
        self.received[client.name] = []

    def once(self) -> None:
        poller = zmq.Poller()
        for client in self.clients:
            for sock in client.sockets:
                poller.register(sock, zmq.POLLIN)
        poller.poll(POLL_MS)
        for client in self.clients:
            client.on_timer()
            for env in client.handle_readable():
                self.received[client.name].append(env)
                self.handler(client, env)

    def until(self, done: Callable[[], bool], timeout_s: float = WAIT_S, what: str = "condition") -> None:
        stop_at = time.monotonic() + timeout_s
        for _ in range(MAX_ITERATIONS):
            if done():
                return
            if time.monotonic() > stop_at:
                break
            self.once()
        raise AssertionError(f"{what} not reached within {timeout_s} s")

    def run_for(self, seconds: float) -> None:
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            self.once()

    def welcomed(self, fake: FakeClock | None = None) -> None:
        """Until every client is welcomed; a fake clock, if one is given, moves for the hello retries."""
        def done() -> bool:
            if fake is not None:
                fake.advance(0.1)
            return all(c.welcomed for c in self.clients)

        self.until(done, what="welcome")


@pytest.fixture
def endpoints() -> BusEndpoints:
    return BusEndpoints.random()


@pytest.fixture
def broker(endpoints: BusEndpoints, tmp_path: Path) -> Iterator[BrokerProcess]:
    process = BrokerProcess(endpoints, tmp_path / "broker.log")
    try:
        yield process
    finally:
        if process.alive:
            process.terminate()
        print(process.log())  # shown by pytest only when the test failed


@pytest.fixture
def connect(endpoints: BusEndpoints) -> Iterator[Callable[..., BusClient]]:
    """Makes clients on the test's endpoints and closes every one of them."""
    made: list[BusClient] = []

    def make(name: str, **options: Any) -> BusClient:
        client = BusClient(name, endpoints.router, endpoints.xsub, xpub_endpoint=endpoints.xpub, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_deliver_and_ack_round_trip(broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    a, b = connect("a"), connect("b")
    pump = Pump(a, b)
    pump.welcomed()
    assert a.deliver("b", "m-1", {"fix": b"8=FIX.4.4\x01"}) is Outcome.SENT
    assert a.pending == 1 and a.is_pending("m-1")
    pump.until(lambda: a.pending == 0, what="ack")
    # Usually one copy; a second when ``actor.b.up`` reached a after the deliver left: a resends on it.
    expected = Envelope(kind=protocol.DELIVER, src="a", dst="b", id="m-1", body={"fix": b"8=FIX.4.4\x01"})
    assert pump.received["b"] and all(copy == expected for copy in pump.received["b"])


def test_a_deliver_past_the_frame_limit_is_said_and_not_sent_and_the_link_stays_up(
        broker: BrokerProcess, connect: Callable[..., BusClient], caplog: pytest.LogCaptureFixture) -> None:
    a, b = connect("a"), connect("b")
    pump = Pump(a, b)
    pump.welcomed()
    with caplog.at_level(logging.ERROR, logger="fixmesh.bus"):
        assert a.deliver("b", "huge-1", {"fix": b"x" * protocol.MAX_FRAME_BYTES}) is Outcome.SENT
    assert "is past the bus's limit of 2097152 and cannot be delivered" in caplog.text
    # Sent, it would make the broker drop a's connection, at every retransmit; the next deliver goes through.
    assert a.deliver("b", "m-2", {"n": 2}) is Outcome.SENT
    pump.until(lambda: any(env.id == "m-2" for env in pump.received["b"]), what="the next deliver")
    assert not any(env.id == "huge-1" for env in pump.received["b"])


def test_gathered_delivers_cross_the_broker_as_one_frame_per_peer_and_each_is_acked(
        broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    a, b, c = connect("a"), connect("b"), connect("c")
    pump = Pump(a, b, c)
    pump.welcomed()
    for dst, id in [("b", "m-1"), ("c", "n-1"), ("b", "m-2"), ("b", "m-3")]:
        assert a.gather(dst, id, {"n": id}) is Outcome.QUEUED
    assert a.pending == 4
    a.send_gathered()
    pump.until(lambda: a.pending == 0, what="every gathered deliver acked")
    assert [(e.id, e.body) for e in pump.received["b"]][:3] == [("m-1", {"n": "m-1"}), ("m-2", {"n": "m-2"}),
                                                              ("m-3", {"n": "m-3"})]
    assert [e.id for e in pump.received["c"]][:1] == ["n-1"]


def test_delayed_acks_ride_on_the_next_deliver_to_their_peer(
        broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    """b owes a's ack; b's next deliver to a carries it, so no ack envelope travels on its own."""
    fake = FakeClock()
    acked: list[str] = []
    a = connect("a", on_ack=acked.append, retransmit_after_s=60.0)
    b = connect("b", now=fake, ack_delay_s=0.5)
    pump = Pump(a, b)
    pump.welcomed(fake)
    assert a.deliver("b", "order-1", b"order") is Outcome.SENT
    pump.until(lambda: bool(pump.received["b"]), what="order at b")
    pump.run_for(0.2)  # b's clock does not move: the ack stays owed
    assert a.is_pending("order-1") and not acked
    assert b.deliver("a", "report-1", b"report") is Outcome.SENT
    pump.until(lambda: not a.is_pending("order-1"), what="ack carried by b's deliver")
    assert acked == ["order-1"]
    report = next(e for e in pump.received["a"] if e.id == "report-1")
    assert report.acks == ("order-1",) and report.body == b"report"


def test_delayed_acks_leave_together_when_the_delay_is_up(
        broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    fake = FakeClock()
    a = connect("a", retransmit_after_s=60.0)
    b = connect("b", now=fake, ack_delay_s=0.5)
    pump = Pump(a, b)
    pump.welcomed(fake)
    for n in range(3):
        assert a.deliver("b", f"m-{n}", b"x") is Outcome.SENT
    pump.until(lambda: len({e.id for e in pump.received["b"]}) == 3, what="three delivers at b")
    assert b.next_deadline() <= fake.mono_s + 0.5
    pump.run_for(0.2)
    assert a.pending == 3, "nothing acked before the delay"
    fake.advance(0.5)
    pump.until(lambda: a.pending == 0, what="one ack envelope for all three")


def test_a_delayed_ack_leaves_at_once_when_many_are_owed(
        broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    fake = FakeClock()
    count = bus.MAX_ACKS_PER_ENVELOPE
    a = connect("a", retransmit_after_s=60.0)
    b = connect("b", now=fake, ack_delay_s=60.0)
    pump = Pump(a, b)
    pump.welcomed(fake)
    for n in range(count):
        assert a.deliver("b", f"m-{n}", b"x") is Outcome.SENT
    pump.until(lambda: a.pending == 0, what="a full envelope of acks")


def test_a_watching_client_hears_no_heartbeat_and_knows_its_broker_alive_by_its_answers(
        broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    """An actor that watches its peer is woken by no heartbeat event, the broker's included (every actor of
    the broker would wake with it, at once); the broker answers each of its heartbeats instead."""
    heard: list[str] = []
    a = connect("a", watch=["b"], on_event=lambda topic, _: heard.append(topic))
    c = connect("c")
    pump = Pump(a, c)
    pump.welcomed()
    # ZeroMQ passes a's subscriptions on once its SUB socket has connected: a hears c's probe only after
    # that, and only then may b come up (its ``up`` would otherwise be gone before a listens).
    a.subscribe("test.")
    pump.until(lambda: (c.publish("test.probe", {}), "test.probe" in heard)[1], what="a's subscriptions")
    b = connect("b")
    pump.add(b)
    pump.welcomed()
    pump.until(lambda: "actor.b.up" in heard, what="b's up at a")
    # Longer than the silence after which a client leaves its broker: only the answers keep a there.
    pump.run_for(BROKER_SILENCE_S + 1.0)
    assert a.welcomed and a.broker_instance is not None
    assert not [topic for topic in heard if topic.endswith(".heartbeat")], heard
    assert {topic.split(".")[1] for topic in heard if topic.startswith("actor.")} == {"b"}, heard
    # Each side still hears what its outbox acts on: b going away and coming back is resent to.
    assert a.deliver("b", "m-1", b"x") is Outcome.SENT
    pump.until(lambda: a.pending == 0, what="b's ack")


def test_a_client_reads_only_the_socket_the_loop_found_readable(
        broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    """An actor reads its SUB socket only when it has an event, not at every deliver."""
    heard: list[str] = []
    a = connect("a", on_event=lambda topic, _: heard.append(topic))
    b = connect("b")
    pump = Pump(a, b)
    pump.welcomed()
    a.subscribe("test.")
    pump.until(lambda: (b.publish("test.probe", {}), "test.probe" in heard)[1], what="a's subscription")
    pump.run_for(0.2)  # the probes still on their way
    heard.clear()
    assert b.deliver("a", "m-1", b"x") is Outcome.SENT
    b.publish("test.event", {})
    stop_at = time.monotonic() + WAIT_S
    while not (a.dealer.poll(0) and a.sub.poll(0)) and time.monotonic() < stop_at:
        time.sleep(0.01)
    assert a.dealer.poll(0) and a.sub.poll(0), "the deliver and the event did not both arrive"

    assert [env.id for env in a.handle_readable(a.dealer)] == ["m-1"]
    assert heard == [] and a.sub.poll(0), "the SUB socket was read with the DEALER"
    assert a.handle_readable(a.sub) == []
    assert heard == ["test.event"]


def test_command_and_reply(broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    def answer(client: BusClient, env: Envelope) -> None:
        if env.kind == protocol.COMMAND:
            assert client.reply(env, {"done": env.body["op"]})

    a, b = connect("a"), connect("b")
    pump = Pump(a, b, handler=answer)
    pump.welcomed()
    command_id = a.command("b", {"op": "connect"})
    assert command_id is not None
    pump.until(lambda: bool(pump.received["a"]), what="reply")
    [reply] = pump.received["a"]
    assert (reply.kind, reply.src, reply.corr, reply.body) == (protocol.REPLY, "b", command_id, {"done": "connect"})
    # A command to nobody comes back as undeliverable, correlated to its id.
    lost = a.command("nobody", {"op": "connect"})
    pump.until(lambda: len(pump.received["a"]) == 2, what="undeliverable")
    assert (pump.received["a"][1].kind, pump.received["a"][1].corr) == (protocol.UNDELIVERABLE, lost)


def test_absent_peer_is_undeliverable_then_served_when_it_comes_up(
        broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    refused: list[Envelope] = []
    events: list[str] = []
    # A retransmit timeout far beyond the test: only ``actor.late.up`` can bring the message over.
    a = connect("a", retransmit_after_s=60.0, on_undeliverable=refused.append,
                on_event=lambda topic, _: events.append(topic))
    pump = Pump(a)
    pump.welcomed()
    pump.until(lambda: "broker.heartbeat" in events, what="a's subscription")
    assert a.deliver("late", "m-1", b"hello later") is Outcome.SENT
    pump.until(lambda: bool(refused), what="undeliverable")
    assert (refused[0].corr, refused[0].body) == ("m-1", {"dst": "late", "reason": protocol.REASON_DOWN})
    assert a.is_pending("m-1")

    late = connect("late")
    pump.add(late)
    pump.until(lambda: a.pending == 0, what="delivery after actor.late.up")
    assert [e.id for e in pump.received["late"]] == ["m-1"]


def test_a_full_outbox_refuses_with_a_value() -> None:
    """No broker at all: delivers are kept (QUEUED) up to the bound, then refused (FULL)."""
    nowhere = BusEndpoints.random()
    with BusClient("a", nowhere.router, nowhere.xsub, max_outbox=3) as a:
        assert [a.deliver("b", f"m-{n}", b"x") for n in range(3)] == [Outcome.QUEUED] * 3
        assert a.deliver("b", "m-3", b"x") is Outcome.FULL
        assert a.deliver("b", "m-0", b"again") is Outcome.QUEUED, "a pending id is replaced, not refused"
        assert a.pending == 3 and not a.is_pending("m-3")
        assert a.command("b", {}) is None
        assert not a.welcomed


def test_unacked_deliver_is_retransmitted_with_doubling_timeout(
        broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    fake = FakeClock()
    events: list[str] = []
    a = connect("a", now=fake, retransmit_after_s=2.0, on_event=lambda topic, _: events.append(topic))
    silent = Pump(a, handler=lambda client, env: None)  # b never acks

    def hello_steps() -> bool:
        fake.advance(0.1)  # the fake clock must move for a's hello retries
        return all(c.welcomed for c in silent.clients)

    silent.until(hello_steps, what="a's welcome")
    silent.until(lambda: "broker.heartbeat" in events, what="a's subscription")
    b = connect("b")
    silent.add(b)
    silent.until(hello_steps, what="b's welcome")
    # a resends to b on ``actor.b.up``; only after it has seen that event are copies down to the timer.
    silent.until(lambda: "actor.b.up" in events, what="actor.b.up at a")
    assert a.deliver("b", "m-1", b"x") is Outcome.SENT

    def copies() -> int:
        return len(silent.received["b"])

    def has_copies(count: int) -> bool:
        return copies() == count

    silent.until(lambda: copies() == 1, what="first copy")
    for step_s, expected in [(1.9, 1), (0.1, 2), (3.9, 2), (0.1, 3)]:
        fake.advance(step_s)
        if expected > copies():
            silent.until(partial(has_copies, expected), what=f"copy {expected}")
        else:
            silent.run_for(0.2)
        assert copies() == expected, f"after +{step_s} s"
    b.ack(silent.received["b"][-1])
    silent.until(lambda: a.pending == 0, what="ack")
    fake.advance(100.0)
    silent.run_for(0.2)
    assert copies() == 3


def test_publish_stamps_actor_and_time(broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    watcher = Watcher(context, broker.endpoints.xpub, "session.a.", "actor.a.heartbeat", "broker.heartbeat")
    try:
        watcher.ready()
        fake = FakeClock()
        a = connect("a", now=fake)
        a.publish("session.a.state", {"new": "active"})
        Pump(a).until(lambda: a.events_held == 0, what="the held event sent")
        _, _, event = watcher.wait_topic("session.a.state")
        assert event == {"time_ns": fake.utc_ns, "new": "active", "actor": "a"}
        fake.advance(protocol.HEARTBEAT_INTERVAL_S)
        a.on_timer()
        _, _, heartbeat = watcher.wait_topic("actor.a.heartbeat")
        assert heartbeat["actor"] == "a" and heartbeat["time_ns"] == fake.utc_ns
    finally:
        watcher.close()
        context.term()


EARLY_EVENTS = 20


def published(watcher: Watcher, topic: str, count: int) -> list[int]:
    """The ``n`` of the first ``count`` events on ``topic`` the watcher receives."""
    return [watcher.wait_topic(topic)[2]["n"] for _ in range(count)]


def test_events_published_at_once_after_connecting_all_arrive_in_order(
        broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    """A plain PUB lost the events published before the broker's subscription reached it: an actor's first."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    watcher = Watcher(context, broker.endpoints.xpub, "session.a.", "broker.heartbeat")
    try:
        watcher.ready()
        a = connect("a")
        for n in range(EARLY_EVENTS):
            a.publish("session.a.state", {"n": n})
        Pump(a).until(lambda: a.events_held == 0, what="the held events sent")
        assert published(watcher, "session.a.state", EARLY_EVENTS) == list(range(EARLY_EVENTS))
    finally:
        watcher.close()
        context.term()


def test_events_published_before_the_broker_starts_arrive_once_it_runs(
        endpoints: BusEndpoints, connect: Callable[..., BusClient], tmp_path: Path) -> None:
    """The actor starts first (supervisord starts them together): its events wait for the broker, in order."""
    a = connect("a")
    for n in range(EARLY_EVENTS):
        a.publish("session.a.state", {"n": n})
    pump = Pump(a)
    pump.run_for(0.3)
    assert a.events_held == EARLY_EVENTS, "no broker yet: every event held"
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    broker = BrokerProcess(endpoints, tmp_path / "late-broker.log")
    watcher = Watcher(context, endpoints.xpub, "session.a.", "broker.heartbeat")
    try:
        watcher.ready()  # subscribed before the actor's loop may send what it holds
        pump.until(lambda: a.events_held == 0, what="the held events sent")
        a.publish("session.a.state", {"n": EARLY_EVENTS})
        assert published(watcher, "session.a.state", EARLY_EVENTS + 1) == list(range(EARLY_EVENTS + 1))
    finally:
        watcher.close()
        context.term()
        broker.terminate()


def xsub_taking_everything(context: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> zmq.Socket[bytes]:
    """What the broker's event plane does: an XSUB subscribed to every topic."""
    sock: zmq.Socket[bytes] = context.socket(zmq.XSUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(WAIT_S * 1000))
    sock.send(b"\x01")
    sock.bind(endpoint)
    return sock


def poll_until_live(publisher: Publisher, xsub: zmq.Socket[bytes], now_s: float = 0.0) -> None:
    """The XSUB attaches the publisher when it is used, as the broker's loop uses it; bounded."""
    for _ in range(200):
        publisher.poll(now_s)
        if publisher.live:
            return
        with contextlib.suppress(zmq.Again):
            xsub.recv_multipart(zmq.NOBLOCK)
        time.sleep(0.005)
    raise AssertionError("the XSUB's subscription never reached the publisher")


@pytest.fixture
def xpub() -> Iterator[tuple[zmq.Context[zmq.Socket[bytes]], zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock: zmq.Socket[bytes] = context.socket(zmq.XPUB)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        yield context, sock
    finally:
        sock.close()
        context.term()


def test_held_events_are_bounded_the_oldest_dropped_and_the_rest_sent_in_order(
        xpub: tuple[zmq.Context[zmq.Socket[bytes]], zmq.Socket[bytes]], caplog: pytest.LogCaptureFixture) -> None:
    context, sock = xpub
    publisher = Publisher(sock, "a", "inproc://events")
    sock.connect("inproc://events")
    extra = 5
    for n in range(HELD_EVENTS + extra):
        publisher.publish([b"session.a.state", str(n).encode()], 0.0)
    assert (publisher.live, publisher.held) == (False, HELD_EVENTS)
    xsub = xsub_taking_everything(context, "inproc://events")
    try:
        poll_until_live(publisher, xsub)
        publisher.publish([b"session.a.state", b"last"], 0.0)
        received = [xsub.recv_multipart()[1] for _ in range(HELD_EVENTS + 1)]
        assert received == [str(n).encode() for n in range(extra, HELD_EVENTS + extra)] + [b"last"]
        assert publisher.held == 0
        assert f"a: the broker took the events at last: {HELD_EVENTS} held event(s) sent, the {extra} oldest dropped" \
            in caplog.text

        publisher.moved("inproc://other")  # to another broker: nothing leaves until that one has subscribed
        publisher.publish([b"session.a.state", b"after the move"], 0.0)
        assert publisher.held == 1
    finally:
        xsub.close()


def test_events_that_wait_for_a_broker_are_reported_and_their_delivery_too(
        xpub: tuple[zmq.Context[zmq.Socket[bytes]], zmq.Socket[bytes]], caplog: pytest.LogCaptureFixture) -> None:
    """The business connection may be up while the event port is not reachable: a warning names the port."""
    caplog.set_level(logging.INFO, logger="fixmesh.bus")
    context, sock = xpub
    publisher = Publisher(sock, "a", "inproc://late")
    sock.connect("inproc://late")
    publisher.publish([b"session.a.state", b"first"], 100.0)

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if "no broker has taken" in r.getMessage()]

    publisher.poll(100.0 + STUCK_WARNING_S - 1)
    assert warnings() == []
    publisher.poll(100.0 + STUCK_WARNING_S)
    assert warnings() == [f"a: no broker has taken this actor's events for {STUCK_WARNING_S:.0f} s (1 held, "
                          "0 dropped): is the broker's event port inproc://late running and reachable from this host?"]
    publisher.poll(100.0 + STUCK_WARNING_S + STUCK_REPEAT_S - 1)
    assert len(warnings()) == 1, "repeated only every STUCK_REPEAT_S"
    publisher.poll(100.0 + STUCK_WARNING_S + STUCK_REPEAT_S)
    assert len(warnings()) == 2
    xsub = xsub_taking_everything(context, "inproc://late")
    try:
        poll_until_live(publisher, xsub, 200.0)
        assert xsub.recv_multipart() == [b"session.a.state", b"first"]
        assert "a: the broker took the events at last: 1 held event(s) sent, none lost" in caplog.text
    finally:
        xsub.close()


def test_an_actor_that_trades_but_cannot_publish_says_so_in_its_log(
        broker: BrokerProcess, caplog: pytest.LogCaptureFixture) -> None:
    """The broker's business port answers, its event port is not where the actor looks: a warning, not silence."""
    fake = FakeClock()
    closed = f"tcp://127.0.0.1:{free_port()}"
    a = BusClient("a", broker.endpoints.router, closed, xpub_endpoint=broker.endpoints.xpub, now=fake)
    try:
        pump = Pump(a)
        pump.welcomed(fake)
        a.publish("session.a.state", {"new": "active"})
        fake.advance(STUCK_WARNING_S)
        pump.once()
        # Held since the first event: the hello retries moved the clock and the heartbeats are held too.
        assert re.search(r"a: no broker has taken this actor's events for 1\d s \(\d held, 0 dropped\): is the "
                         rf"broker's event port {re.escape(closed)} running and reachable from this host\?",
                         caplog.text), caplog.text
        assert a.welcomed and a.events_held >= 1

        # While events are held the loop wakes for them at a fixed point in time, which then comes due.
        due = a.next_deadline()
        assert due <= fake.mono_s + HELD_RETRY_S
        fake.advance(HELD_RETRY_S / 2)
        assert a.next_deadline() == due, "a deadline that moves with the clock never comes due"
        fake.advance(HELD_RETRY_S / 2)
        assert a.next_deadline() <= fake.mono_s
        a.on_timer()
        assert fake.mono_s < a.next_deadline() <= fake.mono_s + HELD_RETRY_S, "the next look, still held"
    finally:
        a.close()


def test_a_new_broker_instance_on_the_event_plane_brings_a_hello_and_a_resend(
        broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    """With a's clock frozen it sends no heartbeat: only ``broker.heartbeat`` from the new broker can bring it back."""
    fake = FakeClock()
    refused: list[Envelope] = []
    a = connect("a", now=fake, retransmit_after_s=60.0, on_undeliverable=refused.append)
    pump = Pump(a)

    def step_while_unwelcomed() -> bool:
        if not a.welcomed:
            fake.advance(0.1)  # hello retries; heartbeats go out only once welcomed
        return a.welcomed

    pump.until(step_while_unwelcomed, what="welcome")
    first = a.broker_instance
    assert a.deliver("ghost", "m-1", b"x") is Outcome.SENT
    pump.until(lambda: len(refused) == 1, what="undeliverable")

    broker.kill()
    broker.start()
    pump.until(lambda: not a.welcomed, timeout_s=WAIT_S, what="restart noticed on the event plane")
    pump.until(step_while_unwelcomed, what="welcome by the new broker")
    assert a.broker_instance not in (None, first)
    pump.until(lambda: len(refused) == 2, what="the pending deliver resent")
    assert "actor a is up (hello)" in broker.log().split(f"broker {a.broker_instance} listening")[1]


TOTAL = 2000
KILL_AT = 600
DOWN_FOR_S = 0.3
PER_ITERATION = 64


def test_kill_9_of_the_broker_mid_stream_loses_nothing(
        broker: BrokerProcess, connect: Callable[..., BusClient]) -> None:
    """Two clients exchange 2,000 delivers each way; the broker is killed mid-stream and restarted.

    Every id must be received at least once and acked; receivers that dedupe by
    (src, id), as actors do with their stores, must see each exactly once.
    """
    clients = {"a": connect("a", max_outbox=256), "b": connect("b", max_outbox=256)}
    peer = {"a": "b", "b": "a"}
    first_seen: dict[str, set[str]] = {"a": set(), "b": set()}
    application: dict[str, list[str]] = {"a": [], "b": []}
    copies = Counter[str]()

    def receive(client: BusClient, env: Envelope) -> None:
        assert env.kind == protocol.DELIVER and env.src == peer[client.name]
        copies[client.name] += 1
        if env.id not in first_seen[client.name]:
            first_seen[client.name].add(env.id)
            application[client.name].append(env.id)
        client.ack(env)

    pump = Pump(*clients.values(), handler=receive)
    pump.welcomed()
    first_instance = clients["a"].broker_instance
    sent = {"a": 0, "b": 0}
    outcomes = Counter[Outcome]()
    killed_at: float | None = None
    restarted = False

    def done() -> bool:
        return (all(n == TOTAL for n in sent.values()) and all(c.pending == 0 for c in clients.values())
                and all(len(s) == TOTAL for s in first_seen.values()))

    def step() -> bool:
        nonlocal killed_at, restarted
        for name, client in clients.items():
            for _ in range(PER_ITERATION):
                if sent[name] == TOTAL:
                    break
                outcome = client.deliver(peer[name], f"{name}-{sent[name]}", {"n": sent[name]})
                outcomes[outcome] += 1
                if outcome is Outcome.FULL:
                    break
                sent[name] += 1
        if killed_at is None and len(first_seen["b"]) >= KILL_AT:
            broker.kill()
            killed_at = time.monotonic()
        elif killed_at is not None and not restarted and time.monotonic() - killed_at >= DOWN_FOR_S:
            broker.start()
            restarted = True
        return done()

    pump.until(step, timeout_s=40.0, what=f"{TOTAL} delivers each way, all acked")

    assert restarted and killed_at is not None
    assert outcomes[Outcome.QUEUED] + outcomes[Outcome.FULL] > 0, "the outage was not felt by the senders"
    for name, other in peer.items():
        expected = {f"{other}-{n}" for n in range(TOTAL)}
        assert len(application[name]) == TOTAL and set(application[name]) == expected
        assert copies[name] >= TOTAL
    assert clients["a"].broker_instance != first_instance
    assert "Traceback" not in broker.log()
