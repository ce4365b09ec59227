"""The broker as a real process (``python -m broker``), driven through raw ZeroMQ sockets on loopback.

Raw DEALER, PUB and SUB sockets play the actors, so these tests pin the wire
behaviour itself: hello/welcome, up and down events, routing, undeliverable,
malformed frames, the event proxy and a clean SIGTERM. ``BrokerProcess`` and
the endpoint helpers are also used by ``test_bus_client.py``.

Every socket has linger 0 and is closed; every receive has a timeout; every
loop is bounded in count and in time; the broker is started and stopped by
its pid, its log kept in the test's tmp_path.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.gateway.bus import CurveKeys
from broker import protocol
from broker.protocol import Envelope
from tests.interop import free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
WAIT_S = 5.0
POLL_MS = 50
LIMIT_S = protocol.HEARTBEAT_INTERVAL_S * protocol.LIVENESS


# ----------------------------------------------------------------- harness


@dataclass(frozen=True)
class BusEndpoints:
    router: str
    xsub: str
    xpub: str

    @classmethod
    def random(cls) -> BusEndpoints:
        return cls(*(f"tcp://{HOST}:{port}" for port in free_ports(3)))


class BrokerProcess:
    """``python -m broker`` on given endpoints; restartable on the same ones, as supervisord would.

    ``policy``: a bus policy file (``--policy``), for a bus with keys; ``extra``: more arguments (a pair's).
    """

    def __init__(self, endpoints: BusEndpoints, log_path: Path, policy: Path | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.endpoints = endpoints
        self.log_path = log_path
        self.policy = policy
        self.extra = extra
        self.popen: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = [sys.executable, "-m", "broker", "--router", self.endpoints.router, "--xsub", self.endpoints.xsub,
                   "--xpub", self.endpoints.xpub, "--log-level", "DEBUG"]
        if self.policy is not None:
            command += ["--policy", str(self.policy)]
        command += self.extra
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """kill -9: no goodbye, no flush."""
        assert self.popen is not None
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT_S)

    def terminate(self) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.popen is not None
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
        try:
            return self.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"broker ignored SIGTERM for {STOP_TIMEOUT_S} s\n{self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


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
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        yield context
    finally:
        context.destroy(linger=0)


class RawActor:
    """A DEALER speaking envelopes by hand, with identity ``name``.

    ``curve``: CURVE keys for a bus with keys; the DEALER then sets no identity unless ``identity`` is given.
    """

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, name: str, *,
                 curve: CurveKeys | None = None, identity: bytes | None = None) -> None:
        self.name = name
        self.socket: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        # A DEALER with no connection blocks a send; one that is refused at the handshake never gets one.
        self.socket.setsockopt(zmq.SNDTIMEO, int(WAIT_S * 1000))
        if curve is not None:
            curve.apply(self.socket)
        elif identity is None:
            identity = name.encode()
        if identity is not None:
            self.socket.setsockopt(zmq.ROUTING_ID, identity)
        self.socket.connect(endpoint)

    def send(self, kind: str, dst: str = protocol.BROKER, id: str = "", corr: str = "", body: Any = None) -> None:
        self.send_raw(Envelope(kind=kind, src=self.name, dst=dst, id=id, corr=corr, body=body).encode())

    def send_raw(self, *frames: bytes) -> None:
        self.socket.send_multipart(list(frames))

    def receive(self, timeout_s: float = WAIT_S) -> Envelope | None:
        if not self.socket.poll(int(timeout_s * 1000)):
            return None
        return protocol.decode(self.socket.recv(zmq.NOBLOCK))

    def expect(self, kind: str, timeout_s: float = WAIT_S) -> Envelope:
        """The next envelope of ``kind``, skipping others; fails after ``timeout_s``."""
        stop_at = time.monotonic() + timeout_s
        while (left := stop_at - time.monotonic()) > 0:
            env = self.receive(left)
            if env is not None and env.kind == kind:
                return env
        raise AssertionError(f"{self.name}: no {kind} within {timeout_s} s")

    def join(self, timeout_s: float = START_TIMEOUT_S) -> Envelope:
        """Hello until welcomed: the broker may still be starting. Bounded."""
        for attempt in range(int(timeout_s / 0.2)):
            hello = Envelope(kind=protocol.HELLO, src=self.name, dst=protocol.BROKER, id=f"h-{attempt}")
            with contextlib.suppress(zmq.Again):  # not connected (yet): the next attempt
                self.socket.send(hello.encode(), zmq.NOBLOCK)
            env = self.receive(0.2)
            if env is not None and env.kind == protocol.WELCOME:
                return env
        raise AssertionError(f"{self.name}: no welcome within {timeout_s} s")

    def close(self) -> None:
        self.socket.close(linger=0)


class Watcher:
    """A SUB on the XPUB that records every event with the monotonic time it arrived."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, *prefixes: str,
                 curve: CurveKeys | None = None) -> None:
        self.socket: zmq.Socket[bytes] = ctx.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(self.socket)
        self.socket.connect(endpoint)
        for prefix in prefixes or ("",):
            self.socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self.seen: list[tuple[float, str, dict[str, Any]]] = []

    def wait_for(self, match: Callable[[str, dict[str, Any]], bool], timeout_s: float = WAIT_S,
                 what: str = "event") -> tuple[float, str, dict[str, Any]]:
        stop_at = time.monotonic() + timeout_s
        while (left := stop_at - time.monotonic()) > 0:
            if not self.socket.poll(max(1, int(left * 1000))):
                continue
            topic, body = protocol.decode_event(self.socket.recv_multipart(zmq.NOBLOCK))
            self.seen.append((time.monotonic(), topic, body))
            if match(topic, body):
                return self.seen[-1]
        raise AssertionError(f"no {what} within {timeout_s} s; saw {[t for _, t, _ in self.seen][-20:]}")

    def wait_topic(self, topic: str, timeout_s: float = WAIT_S) -> tuple[float, str, dict[str, Any]]:
        return self.wait_for(lambda t, _: t == topic, timeout_s, what=topic)

    def ready(self) -> dict[str, Any]:
        """Wait for a ``broker.heartbeat``: proof that the subscription reached the broker (slow joiner)."""
        return self.wait_topic(protocol.broker_topic("heartbeat"), protocol.HEARTBEAT_INTERVAL_S * 3)[2]

    def close(self) -> None:
        self.socket.close(linger=0)


# ----------------------------------------------------------------- tests


def test_hello_is_welcomed_and_announced(broker: BrokerProcess, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    watcher = Watcher(ctx, broker.endpoints.xpub, "actor.", "broker.")
    heartbeat = watcher.ready()
    alice = RawActor(ctx, broker.endpoints.router, "alice")
    welcome = alice.join()
    assert welcome.src == protocol.BROKER and welcome.dst == "alice" and welcome.corr.startswith("h-")
    assert welcome.body["instance"] == heartbeat["instance"]
    assert welcome.body["heartbeat_interval_s"] == protocol.HEARTBEAT_INTERVAL_S
    _, _, up = watcher.wait_topic("actor.alice.up")
    assert up["actor"] == "alice" and isinstance(up["time_ns"], int)
    # Each heartbeat of an actor that is up is answered, with the instance: its liveness at its own pace.
    alice.send(protocol.HEARTBEAT)
    answer = alice.expect(protocol.HEARTBEAT)
    assert answer.src == protocol.BROKER and answer.dst == "alice"
    assert answer.body["instance"] == welcome.body["instance"]
    alice.close()
    watcher.close()


def test_silent_actor_is_reported_down_within_liveness_then_back(
        broker: BrokerProcess, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    watcher = Watcher(ctx, broker.endpoints.xpub, "actor.", "broker.")
    watcher.ready()
    quiet = RawActor(ctx, broker.endpoints.router, "quiet")
    quiet.join()
    said_hello = time.monotonic()
    watcher.wait_topic("actor.quiet.up")
    down_at, _, _ = watcher.wait_topic("actor.quiet.down", timeout_s=LIMIT_S + 2)
    # Down once silent for LIVENESS intervals: not before, and within one more interval.
    assert LIMIT_S - 0.5 <= down_at - said_hello <= LIMIT_S + protocol.HEARTBEAT_INTERVAL_S
    # A heartbeat from an actor the broker has written off counts as a hello.
    quiet.send(protocol.HEARTBEAT)
    assert quiet.expect(protocol.WELCOME).dst == "quiet"
    watcher.wait_topic("actor.quiet.up")
    quiet.close()
    watcher.close()


def test_deliver_and_ack_are_forwarded_unchanged(broker: BrokerProcess, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    alice = RawActor(ctx, broker.endpoints.router, "alice")
    bob = RawActor(ctx, broker.endpoints.router, "bob")
    alice.join()
    bob.join()
    alice.send(protocol.DELIVER, dst="bob", id="a-1", body=b"8=FIX.4.4\x01")
    got = bob.expect(protocol.DELIVER)
    assert got == Envelope(kind=protocol.DELIVER, src="alice", dst="bob", id="a-1", body=b"8=FIX.4.4\x01")
    bob.send(protocol.ACK, dst="alice", corr="a-1")
    assert alice.expect(protocol.ACK) == Envelope(kind=protocol.ACK, src="bob", dst="alice", corr="a-1")
    alice.send(protocol.COMMAND, dst="bob", id="c-1", body={"op": "connect"})
    command = bob.expect(protocol.COMMAND)
    bob.send(protocol.REPLY, dst="alice", id="r-1", corr=command.id, body={"ok": True})
    assert alice.expect(protocol.REPLY).body == {"ok": True}
    alice.close()
    bob.close()


def test_absent_destination_is_undeliverable(broker: BrokerProcess, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    alice = RawActor(ctx, broker.endpoints.router, "alice")
    alice.join()
    alice.send(protocol.DELIVER, dst="ghost", id="a-7", body=b"x")
    refused = alice.expect(protocol.UNDELIVERABLE)
    assert (refused.src, refused.corr, refused.body) == (protocol.BROKER, "a-7", {"dst": "ghost", "reason": "down"})
    alice.send(protocol.COMMAND, dst="ghost", id="c-7")
    assert alice.expect(protocol.UNDELIVERABLE).corr == "c-7"
    # An ack or reply to nobody is dropped without an answer; the next answer is the deliver's.
    alice.send(protocol.ACK, dst="ghost", corr="x")
    alice.send(protocol.REPLY, dst="ghost", corr="y")
    alice.send(protocol.DELIVER, dst="ghost", id="a-8")
    assert alice.expect(protocol.UNDELIVERABLE).corr == "a-8"
    alice.close()


def test_a_restarted_actor_takes_its_name_over(broker: BrokerProcess, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    """The old connection of a crashed actor may linger; the new one with the same identity must win."""
    alice = RawActor(ctx, broker.endpoints.router, "alice")
    alice.join()
    old_bob = RawActor(ctx, broker.endpoints.router, "bob")
    old_bob.join()
    new_bob = RawActor(ctx, broker.endpoints.router, "bob")
    new_bob.join()
    alice.send(protocol.DELIVER, dst="bob", id="a-1")
    assert new_bob.expect(protocol.DELIVER).id == "a-1"
    for sock in (alice, old_bob, new_bob):
        sock.close()


def test_malformed_frames_are_dropped_and_routing_goes_on(
        broker: BrokerProcess, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    alice = RawActor(ctx, broker.endpoints.router, "alice")
    bob = RawActor(ctx, broker.endpoints.router, "bob")
    alice.join()
    bob.join()
    mallory = RawActor(ctx, broker.endpoints.router, "mallory")
    bad_frames = [
        b"",
        b"\xc1\xff garbage",
        Envelope(kind=protocol.DELIVER, src="mallory", dst="bob", v=2).encode(),
        Envelope(kind=protocol.DELIVER, src="mallory", dst="bob", v=True).encode(),
        Envelope(kind="gossip", src="mallory", dst="bob").encode(),
        Envelope(kind=["deliver"], src="mallory", dst="bob").encode(),  # type: ignore[arg-type]
        Envelope(kind=protocol.DELIVER, src=7, dst="bob").encode(),  # type: ignore[arg-type]
        Envelope(kind=protocol.DELIVER, src="alice", dst="bob", id="spoofed").encode(),
        Envelope(kind=protocol.WELCOME, src="mallory", dst="bob").encode(),
        Envelope(kind=protocol.UNDELIVERABLE, src="mallory", dst="bob").encode(),
        protocol.encode_event("actor.bob.up", {"time_ns": 1, "actor": "bob"})[1],
    ]
    for frame in bad_frames:
        mallory.send_raw(frame)
    mallory.send_raw(b"two", b"frames")
    rng = random.Random(20240601)
    for _ in range(200):
        mallory.send_raw(rng.randbytes(rng.randrange(1, 64)))
    impostor = RawActor(ctx, broker.endpoints.router, "broker")
    impostor.send(protocol.HELLO)
    # A frame over the size limit makes ZeroMQ drop that connection, not the broker.
    giant = RawActor(ctx, broker.endpoints.router, "giant")
    giant.send(protocol.DELIVER, dst="bob", id="g-1", body=b"x" * (protocol.MAX_FRAME_BYTES + 1))

    alice.send(protocol.DELIVER, dst="bob", id="after", body=b"still routing")
    assert bob.expect(protocol.DELIVER).id == "after", "bob got something other than alice's deliver"
    assert bob.receive(0.2) is None, "a malformed or spoofed frame was forwarded"
    assert impostor.receive(0.2) is None, "an actor named 'broker' was welcomed"
    assert broker.alive
    log = broker.log()
    assert "dropped a frame from b'mallory': unknown envelope kind 'gossip'" in log
    assert "dropped a frame from b'mallory': envelope version 2" in log
    assert "claiming src 'alice'" in log
    assert "dropped a 2-frame message from b'mallory'" in log
    assert "Traceback" not in log
    for sock in (alice, bob, mallory, impostor, giant):
        sock.close()


def test_events_are_proxied_from_publishers_to_subscribers(
        broker: BrokerProcess, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    watcher = Watcher(ctx, broker.endpoints.xpub, "session.")
    publisher: zmq.Socket[bytes] = ctx.socket(zmq.PUB)
    publisher.setsockopt(zmq.LINGER, 0)
    publisher.connect(broker.endpoints.xsub)
    publisher.send_multipart([b"one frame only"])
    # Both subscriptions travel (SUB -> XPUB -> broker -> XSUB -> PUB): publish until one arrives.
    for attempt in range(100):
        publisher.send_multipart(protocol.encode_event("session.venue.state",
                                                       {"time_ns": time.time_ns(), "actor": "venue", "n": attempt}))
        try:
            _, topic, body = watcher.wait_topic("session.venue.state", timeout_s=0.05)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("no event crossed the proxy")
    assert body["actor"] == "venue"
    publisher.close()
    watcher.close()


def test_sigterm_stops_cleanly(broker: BrokerProcess, ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    alice = RawActor(ctx, broker.endpoints.router, "alice")
    alice.join()
    started = time.monotonic()
    assert broker.terminate() == 0
    assert time.monotonic() - started < 2.0
    assert "stopping (SIGTERM)" in broker.log()
    alice.close()
