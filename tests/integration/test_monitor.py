"""The monitor as a real process, reading a real ZeroMQ PUB socket that stands in for the broker's XPUB.

A SUB client cannot tell a PUB from an XPUB, so the tests bind a plain PUB on a
random loopback port and point ``python -m actors.tools.monitor --endpoint`` at it.
A subscription reaches the publisher some time after the connect (the slow
joiner), so every test first publishes a probe in a bounded loop until the
monitor prints it; after that, ZeroMQ keeps one publisher's messages in order,
so a final marker event proves that everything published before it has been
handled. Output goes to files; every wait is bounded; every process is stopped
by its pid.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from broker import protocol

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
WAIT_S = 10.0
POLL_S = 0.02
HEARTBEAT_EVERY_S = 0.05
SILENCE_S = 0.5
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)  (\S+) +(.*)$")


class Publisher:
    """The stand-in for the broker's XPUB: events stamped now, by actor ``test``."""

    def __init__(self, socket: zmq.Socket[bytes], endpoint: str) -> None:
        self.socket = socket
        self.endpoint = endpoint
        self.last_sent_mono_s = 0.0

    def publish(self, topic: str, **body: Any) -> None:
        self.socket.send_multipart(protocol.encode_event(topic, {"time_ns": time.time_ns(), "actor": "test", **body}))
        self.last_sent_mono_s = time.monotonic()

    def send_raw(self, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames)


class MonitorProcess:
    """``python -m actors.tools.monitor`` with stdout and stderr in files of the test's tmp_path."""

    def __init__(self, args: list[str], directory: Path, name: str) -> None:
        self.command = [sys.executable, "-m", "actors.tools.monitor", *args]
        self.stdout_path = directory / f"{name}.out"
        self.stderr_path = directory / f"{name}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(self.command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=err)

    def lines(self) -> list[str]:
        """Complete lines only: the process may be writing the next one right now."""
        text = self.stdout_path.read_text(encoding="utf-8")
        return text[: text.rfind("\n") + 1].splitlines()

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def errors(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def report(self, headline: str) -> str:
        return (f"{headline}\ncommand: {' '.join(self.command)}\nexit: {self.popen.poll()}\n"
                f"--- stdout ---\n{chr(10).join(self.lines()[-30:])}\n--- stderr ---\n{self.errors()[-3000:]}")

    def signal(self, signum: int) -> int:
        """Send ``signum`` to this pid and wait, bounded, for the exit code."""
        os.kill(self.popen.pid, signum)
        try:
            return self.popen.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(self.report(f"monitor ignored signal {signum}")) from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=WAIT_S)


StartMonitor = Callable[..., MonitorProcess]


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    context = zmq.Context()
    socket = context.socket(zmq.PUB)
    socket.setsockopt(zmq.LINGER, 0)
    try:
        port = socket.bind_to_random_port(f"tcp://{HOST}")
        yield Publisher(socket, f"tcp://{HOST}:{port}")
    finally:
        socket.close(linger=0)
        context.term()


@pytest.fixture
def start_monitor(publisher: Publisher, tmp_path: Path) -> Iterator[StartMonitor]:
    started: list[MonitorProcess] = []

    def start(*args: str, name: str = "monitor") -> MonitorProcess:
        process = MonitorProcess(["--endpoint", publisher.endpoint, *args], tmp_path, f"{name}{len(started)}")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def wait_for(monitor: MonitorProcess, condition: Callable[[], bool], what: str,
             while_waiting: Callable[[], None] | None = None) -> None:
    """Poll ``condition`` (doing ``while_waiting`` each round) until it holds; fail with the output after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if while_waiting is not None:
            while_waiting()
        if condition():
            return
        if monitor.popen.poll() is not None:
            raise AssertionError(monitor.report(f"monitor exited while waiting for {what}"))
        time.sleep(POLL_S)
    raise AssertionError(monitor.report(f"timed out after {WAIT_S:g} s waiting for {what}"))


def printed(monitor: MonitorProcess, topic: str) -> bool:
    return any(topic in line for line in monitor.lines())


def shows(monitor: MonitorProcess, topic: str) -> Callable[[], bool]:
    return lambda: printed(monitor, topic)


def join(monitor: MonitorProcess, publisher: Publisher, topic: str) -> None:
    """Publish ``topic`` until the monitor prints it: from then on its subscription is in place."""
    wait_for(monitor, shows(monitor, topic), f"the probe {topic}",
             while_waiting=lambda: publisher.publish(topic, probe=True))


def parsed(lines: list[str]) -> list[tuple[str, str]]:
    """(topic, essentials) of plain lines, checking the time column on the way."""
    result = []
    for line in lines:
        match = LINE.match(line)
        assert match, f"not a monitor line: {line!r}"
        result.append((match[2], match[3]))
    return result


def test_plain_lines_show_the_essentials_and_malformed_events_are_skipped(
    publisher: Publisher, start_monitor: StartMonitor
) -> None:
    monitor = start_monitor()
    join(monitor, publisher, "broker.heartbeat")
    publisher.publish("session.venue.state", old="LOGON_SENT", new="ACTIVE", reason="logon accepted",
                      next_sender=2, next_target=2)
    publisher.send_raw([b"session.venue.state", b"not msgpack \xc1", b"third frame"])
    publisher.publish("session.venue.resend_request", kind="resend_request", text="BeginSeqNo=3 EndSeqNo=0",
                      next_sender=5, next_target=3)
    publisher.send_raw(protocol.encode_event("session.venue.logon", {"actor": "no time"}))
    publisher.publish("pair.p1.linked", handler="client", driven="venue")
    publisher.publish("coordinator.done")
    wait_for(monitor, shows(monitor, "coordinator.done"), "the end marker")

    events = [(topic, text) for topic, text in parsed(monitor.lines()) if topic != "broker.heartbeat"]
    assert events == [
        ("session.venue.state", "LOGON_SENT -> ACTIVE: logon accepted (out 2, in 2)"),
        ("session.venue.resend_request", "resend_request: BeginSeqNo=3 EndSeqNo=0 (out 5, in 3)"),
        ("pair.p1.linked", "actor=test handler=client driven=venue"),
        ("coordinator.done", "actor=test"),
    ]
    warnings = monitor.errors().splitlines()
    assert len(warnings) == 2, monitor.report("expected two warnings")
    assert all("warning: malformed event skipped" in line for line in warnings)
    assert "3 frames" in warnings[0] and "time_ns" in warnings[1]
    assert monitor.signal(signal.SIGTERM) == 0


def test_json_lines_carry_topic_and_the_whole_body(publisher: Publisher, start_monitor: StartMonitor) -> None:
    monitor = start_monitor("--json")
    join(monitor, publisher, "broker.heartbeat")
    publisher.publish("session.venue.reject", kind="reject", text='tag 44 "Price" missing', next_sender=9,
                      next_target=4, raw=b"8=FIX.4.4\x0135=3\x01")
    publisher.publish("coordinator.done")
    wait_for(monitor, shows(monitor, "coordinator.done"), "the end marker")

    objects = [obj for obj in monitor.json_lines() if obj["topic"] != "broker.heartbeat"]
    assert [obj["topic"] for obj in objects] == ["session.venue.reject", "coordinator.done"]
    body = objects[0]["body"]
    assert isinstance(body.pop("time_ns"), int)
    assert body == {"actor": "test", "kind": "reject", "text": 'tag 44 "Price" missing', "next_sender": 9,
                    "next_target": 4, "raw": "8=FIX.4.4|35=3|"}
    assert monitor.errors() == ""
    assert monitor.signal(signal.SIGINT) == 0


def test_only_topics_with_a_subscribed_prefix_are_printed(publisher: Publisher, start_monitor: StartMonitor) -> None:
    monitor = start_monitor("session.venue.", "pair.")
    join(monitor, publisher, "pair.probe")
    for topic in ("session.other.state", "session.venue.state", "actor.venue.heartbeat", "session.venue2.logon",
                  "pair.p1.linked", "broker.started", "session.venue.logout"):
        publisher.publish(topic, kind="k", old="A", new="B")
    wait_for(monitor, shows(monitor, "session.venue.logout"), "the end marker")

    topics = [topic for topic, _ in parsed(monitor.lines()) if topic != "pair.probe"]
    assert topics == ["session.venue.state", "pair.p1.linked", "session.venue.logout"]
    assert monitor.signal(signal.SIGTERM) == 0


def test_an_actor_that_stops_heartbeating_is_reported_silent_once_and_back_once(
    publisher: Publisher, start_monitor: StartMonitor
) -> None:
    plain = start_monitor("actor.", "--silence-s", str(SILENCE_S), name="plain")
    as_json = start_monitor("actor.", "--silence-s", str(SILENCE_S), "--json", name="json")
    heartbeat = "actor.venue.heartbeat"

    def beat() -> None:
        publisher.publish(heartbeat)
        time.sleep(HEARTBEAT_EVERY_S)

    for monitor in (plain, as_json):
        wait_for(monitor, shows(monitor, heartbeat), "the first heartbeat", while_waiting=beat)
    for monitor in (plain, as_json):
        wait_for(monitor, shows(monitor, "monitor.actor.silent"), "the silence line")
    assert time.monotonic() - publisher.last_sent_mono_s >= SILENCE_S
    for monitor in (plain, as_json):
        wait_for(monitor, shows(monitor, "monitor.actor.back"), "the back line", while_waiting=beat)

    notices = [(topic, text) for topic, text in parsed(plain.lines()) if topic.startswith("monitor.")]
    assert notices, plain.report("no silence lines")
    assert [topic for topic, _ in notices] == ["monitor.actor.silent", "monitor.actor.back"] * (len(notices) // 2)
    silent_text = notices[-2][1]
    match = re.fullmatch(r"actor venue silent for (\d+\.\d) s \(last heartbeat at (\S+)\)", silent_text)
    assert match, silent_text
    assert float(match[1]) >= SILENCE_S and LINE.match(f"{match[2]}  x y")
    assert re.fullmatch(r"actor venue back after \d+\.\d s", notices[-1][1])

    objects = [obj for obj in as_json.json_lines() if obj["topic"].startswith("monitor.")]
    assert [obj["topic"] for obj in objects] == ["monitor.actor.silent", "monitor.actor.back"] * (len(objects) // 2)
    silent, back = objects[-2]["body"], objects[-1]["body"]
    assert silent["actor"] == back["actor"] == "venue"
    assert silent["silent_s"] >= SILENCE_S and isinstance(silent["last_heartbeat_ns"], int)
    assert back["silent_s"] >= silent["silent_s"]
    for monitor in (plain, as_json):
        assert monitor.signal(signal.SIGTERM) == 0


def test_count_and_duration_bound_a_run(publisher: Publisher, start_monitor: StartMonitor) -> None:
    counted = start_monitor("--count", "3", name="counted")
    timed = start_monitor("--duration-s", "0.3", "nothing.matches.this", name="timed")
    wait_for(counted, lambda: counted.popen.poll() is not None, "the exit after 3 events",
             while_waiting=lambda: publisher.publish("broker.heartbeat"))
    assert counted.popen.returncode == 0
    assert len(counted.lines()) == 3
    wait_for(timed, lambda: timed.popen.poll() is not None, "the exit after 0.3 s")
    assert timed.popen.returncode == 0
    assert timed.lines() == []


def test_an_invalid_endpoint_is_an_error_not_a_crash(tmp_path: Path) -> None:
    monitor = MonitorProcess(["--endpoint", "nonsense://here"], tmp_path, "invalid")
    try:
        assert monitor.popen.wait(timeout=WAIT_S) == 2
        assert "cannot connect to 'nonsense://here'" in monitor.errors()
        assert "Traceback" not in monitor.errors()
    finally:
        monitor.kill()


def test_audit_events_read_as_one_line_each(publisher: Publisher, start_monitor: StartMonitor) -> None:
    monitor = start_monitor()
    join(monitor, publisher, "broker.heartbeat")
    publisher.publish("audit.command", principal="ops", key="SHA256:0123456789abcdef", src="ctl-ops-42", dst="venue",
                      id="c-1", command="logout", args={"text": "end of day"}, outcome="forwarded")
    publisher.publish("audit.refused", reason="command not allowed", principal="client", kind="command",
                      text="key client may not command venue: command from client refused", repeated=3)
    publisher.publish("coordinator.done")
    wait_for(monitor, shows(monitor, "coordinator.done"), "the end marker")
    events = [(topic, text) for topic, text in parsed(monitor.lines()) if topic.startswith("audit.")]
    assert events == [
        ("audit.command", 'key ops as ctl-ops-42 -> venue: logout text="end of day" (forwarded)'),
        ("audit.refused", "refused (command not allowed): key client may not command venue: command from client "
                          "refused (and 3 more like it)"),
    ]


def test_on_a_bus_with_keys_the_monitor_needs_a_key(tmp_path: Path) -> None:
    topology = tmp_path / "topology.yaml"
    topology.write_text("bus: {keys_dir: keys, subscribers: [dashboard]}\n"
                        "sessions: {venue: {role: initiator, sender_comp_id: A, target_comp_id: B, port: 9}}\n")
    env = {k: v for k, v in os.environ.items() if k != "FIXMESH_BUS_KEY"}
    keyless = subprocess.run([sys.executable, "-m", "actors.tools.monitor", "--config", str(topology)],
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=WAIT_S, env=env)
    assert keyless.returncode == 2 and "needs a key with the right to subscribe" in keyless.stderr, keyless.stderr
    missing = subprocess.run([sys.executable, "-m", "actors.tools.monitor", "--config", str(topology), "--key",
                              "dashboard"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=WAIT_S, env=env)
    assert missing.returncode == 2, missing.stderr
    assert f"cannot read the secret key of 'dashboard' in {tmp_path / 'keys' / 'dashboard.key_secret'}" in \
        missing.stderr
