"""A whole gateway on a bus with keys: every program joins with its own key, under supervisord.

Broker (started from the topology: ``fixmesh broker --config``), Handler,
Driven, coordinator and monitor each use the key the topology gives them
(``bus: {keys_dir, operators: [ops], subscribers: [watcher]}``, every key made
by ``fixmesh keys create --config``). Orders flow both ways exactly once; the
monitor reads events with a subscriber's key; ``fixmesh ctl`` works with the
operator's key and is published as ``audit.command``, and is refused without
a key or with a session's; an event forged with the venue's key about the
client is dropped, so the coordinator does nothing about it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.gateway.bus import load_curve_keys
from broker import protocol
from tests.interop import (
    Child,
    Children,
    count_received,
    endpoint_command,
    exactly_once_problems,
    read_received,
    wait_until,
)
from tests.system.gateway import Gateway

pytestmark = [pytest.mark.slow]

FIXMESH = Path(sys.executable).parent / "fixmesh"


class SecureFlow:
    def __init__(self, tmp_path: Path, children: Children) -> None:
        self.tmp = tmp_path
        self.children = children
        self.gw = Gateway(tmp_path / "gateway", children, coordinator=True, secure=True)
        self.gw.start()

    def endpoint(self, who: str, role: str, port: int, sender: str, send: int, rate: float = 200.0) -> Child:
        command = endpoint_command(role, port, sender, "GATEWAY", self.tmp / who, send=send, rate=rate)
        return self.children.start(who, command)

    def received(self, who: str) -> int:
        return count_received(self.tmp / who / "received.log")

    def events(self, topic: str) -> list[dict[str, Any]]:
        return [e["body"] for e in self.gw.events() if e.get("topic") == topic]  # type: ignore[misc]

    def wait_event(self, topic: str, match: Any = lambda body: True, timeout_s: float = 15.0) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [body for body in self.events(topic) if match(body)]
            return bool(found)

        wait_until(seen, timeout_s, f"the monitor to show {topic}", self.children)
        return found[-1]

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "FIXMESH_BUS_KEY"}
        return subprocess.run([str(FIXMESH), "ctl", "--config", str(self.gw.topology), *args],
                              capture_output=True, text=True, timeout=60, env=env)

    def stop(self) -> None:
        self.gw.stop()


@pytest.fixture
def flow(tmp_path: Path, children: Children) -> Iterator[SecureFlow]:
    f = SecureFlow(tmp_path, children)
    try:
        yield f
    finally:
        f.stop()


TOTAL = 300


def test_a_pair_with_keys_on_every_process_trades_end_to_end(flow: SecureFlow) -> None:
    flow.endpoint("venue", "acceptor", flow.gw.ports.venue, "VENUE", send=TOTAL, rate=50.0)
    flow.endpoint("trader", "initiator", flow.gw.ports.handler, "TRADER", send=TOTAL, rate=50.0)
    wait_until(lambda: flow.received("venue") >= 50, 60, "50 orders at the venue", flow.children)
    # kill -9 of the broker: supervisord starts it again from the topology, every key joins again.
    pid = flow.gw.pid("broker")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: flow.gw.pid("broker") not in (0, pid) and flow.gw.state("broker") == "RUNNING", 30,
               "the broker restarted by supervisord", flow.children)
    wait_until(lambda: flow.received("venue") == TOTAL and flow.received("trader") == TOTAL, 120,
               f"{TOTAL} orders each way", flow.children)
    for who in ("venue", "trader"):
        assert not exactly_once_problems(read_received(flow.tmp / who / "received.log"), TOTAL)
    # The monitor reads with the subscriber's key: the sessions' own events reached it.
    assert flow.events("session.venue.state") and flow.events("session.client.state")
    broker_log = flow.gw.log("broker")
    assert broker_log.count("bus with keys") == 2 and "NO KEYS" not in broker_log, broker_log
    assert "refused:" not in broker_log, "a legitimate program was refused:\n" + broker_log
    # The coordinator commanded the Driven with its own key: the pair came up through it.
    assert flow.events("pair.client-venue.connect")


def test_ctl_needs_an_operator_key_and_a_forged_event_changes_nothing(flow: SecureFlow) -> None:
    flow.endpoint("venue", "acceptor", flow.gw.ports.venue, "VENUE", send=0)
    flow.endpoint("trader", "initiator", flow.gw.ports.handler, "TRADER", send=0)
    wait_until(lambda: any(b.get("new") == "CONNECTED" for b in flow.events("session.venue.state")), 60,
               "the venue session logged on", flow.children)

    answered = flow.ctl("venue", "status", "--key", "ops")
    assert answered.returncode == 0, answered.stderr
    assert '"state": "CONNECTED"' in answered.stdout, answered.stdout
    audit = flow.wait_event(protocol.audit_topic("command"), lambda b: b.get("dst") == "venue")
    assert audit["principal"] == "ops" and audit["src"].startswith("ctl-ops-") and audit["command"] == "status"
    assert isinstance(audit["time_ns"], int) and audit["outcome"] == "forwarded"

    keyless = flow.ctl("venue", "logout")
    assert keyless.returncode == 2 and "needs an operator's key" in keyless.stderr, keyless.stderr
    as_session = flow.ctl("venue", "logout", "--key", "client", "--timeout-s", "5")
    assert as_session.returncode == 1, as_session.stdout + as_session.stderr
    assert "the broker refused the command" in as_session.stdout
    flow.wait_event(protocol.audit_topic("refused"), lambda b: b.get("principal") == "client")

    # The venue's key claims the client has gone: on an open bus the coordinator would hear it.
    pairs_before = len([e for e in flow.gw.events() if str(e.get("topic", "")).startswith("pair.")])
    keys_dir = flow.gw.dir / "keys"
    forger = load_curve_keys("venue", keys_dir / "venue.key_secret", keys_dir / "broker.key")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    forger.apply(pub)
    pub.connect(f"tcp://127.0.0.1:{flow.gw.ports.xsub}")
    try:
        forged = {"actor": "client", "old": "CONNECTED", "new": "DISCONNECTED", "reason": "forged",
                  "next_sender": 2, "next_target": 2, "incarnation": "forged", "state_changes": 10**6}
        stop_at = time.monotonic() + 15
        while time.monotonic() < stop_at and not [
                b for b in flow.events(protocol.audit_topic("refused")) if b.get("topic") == "session.client.state"]:
            pub.send_multipart(protocol.encode_event("session.client.state", {"time_ns": time.time_ns(), **forged}))
            time.sleep(0.2)
    finally:
        pub.close(linger=0)
        ctx.destroy(linger=0)
    refused = flow.wait_event(protocol.audit_topic("refused"), lambda b: b.get("topic") == "session.client.state")
    assert refused["principal"] == "venue" and refused["reason"] == "topic not allowed"
    # A coordinator that heard the forgery acts at once or within its 0.5 s tick: two of its heartbeats later
    # the monitor would show its command.
    beats = len(flow.events(protocol.actor_topic("coordinator", "heartbeat")))
    wait_until(lambda: len(flow.events(protocol.actor_topic("coordinator", "heartbeat"))) >= beats + 2, 10,
               "two more coordinator heartbeats", flow.children)
    assert not [b for b in flow.events("session.client.state") if b.get("reason") == "forged"]
    assert len([e for e in flow.gw.events() if str(e.get("topic", "")).startswith("pair.")]) == pairs_before
    still = flow.ctl("venue", "status", "--key", "ops")
    assert still.returncode == 0 and '"state": "CONNECTED"' in still.stdout, still.stdout
