"""A FIX initiator inside the test process, over a plain socket, that keeps every message with its arrival time.

The throttle and reload tests measure what a FIX engine hides from its
application: when each message arrived, every BusinessMessageReject, the
answer to a TestRequest, and any Logon, Logout, ResendRequest or Reject the
gateway sends. ``RawInitiator`` logs on with ResetSeqNumFlag=Y, numbers what
it sends, answers a TestRequest with a Heartbeat, and a reader thread keeps
what arrives as ``(monotonic seconds, Message)``. Every wait is bounded.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from actors.fix.codec import Framer, encode, parse
from actors.fix.message import Message
from actors.fix.timefmt import TimestampFormatter

HOST = "127.0.0.1"
POLL_S = 0.02


def new_order(cl_ord_id: str, transact_time: bytes) -> list[tuple[int, bytes]]:
    """A FIX.4.4 NewOrderSingle body the venue simulator fills at once (a buy limit order)."""
    return [(11, cl_ord_id.encode()), (21, b"1"), (38, b"100"), (40, b"2"), (44, b"10.5"), (54, b"1"),
            (55, b"FMX"), (60, transact_time)]


class RawInitiator:
    """One FIX.4.4 session to ``port`` as SenderCompID ``sender``; ``close`` ends it."""

    def __init__(self, port: int, sender: str = "TRADER", target: str = "GATEWAY", heartbeat_s: int = 30) -> None:
        self.port = port
        self.sender = sender.encode()
        self.target = target.encode()
        self.heartbeat_s = heartbeat_s
        self._stamp = TimestampFormatter(3)
        self._sock = socket.create_connection((HOST, port), timeout=5.0)
        self._sock.settimeout(0.2)
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._next_seq = 1
        #: What arrived, oldest first: (monotonic seconds, message).
        self._received: list[tuple[float, Message]] = []
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"raw-fix-{port}", daemon=True)
        self._reader.start()

    # ------------------------------------------------------------ sending

    def now_stamp(self) -> bytes:
        return self._stamp.format(time.time_ns())

    def send(self, msg_type: bytes, body: list[tuple[int, bytes]]) -> tuple[int, float]:
        """Send one message; its MsgSeqNum and the monotonic time it was written."""
        with self._send_lock:
            seq = self._next_seq
            self._next_seq += 1
            header = [(34, b"%d" % seq), (49, self.sender), (52, self.now_stamp()), (56, self.target)]
            data = encode(b"FIX.4.4", msg_type, header, body)
            self._sock.sendall(data)
            return seq, time.monotonic()

    def logon(self, timeout_s: float = 15.0) -> None:
        self.send(b"A", [(98, b"0"), (108, b"%d" % self.heartbeat_s), (141, b"Y")])
        self.wait_for(lambda m: m.msg_type == "A", timeout_s, "the Logon answer")

    def order(self, cl_ord_id: str) -> tuple[int, float]:
        return self.send(b"D", new_order(cl_ord_id, self.now_stamp()))

    def logout(self, timeout_s: float = 5.0) -> None:
        self.send(b"5", [])
        self.wait_for(lambda m: m.msg_type == "5", timeout_s, "the Logout answer")

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=5.0)
        self._sock.close()

    # ------------------------------------------------------------ receiving

    def _read(self) -> None:
        framer = Framer()
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            arrived = time.monotonic()
            framer.feed(data)
            while (frame := framer.next_frame()) is not None:
                if not frame.data:
                    continue
                message = parse(frame.data)
                with self._lock:
                    self._received.append((arrived, message))
                if message.msg_type == "1":  # TestRequest: a Heartbeat with its TestReqID
                    self.send(b"0", [(112, message.get(112) or b"")])

    def received(self, msg_type: str | None = None) -> list[tuple[float, Message]]:
        with self._lock:
            return [(t, m) for t, m in self._received if msg_type is None or m.msg_type == msg_type]

    def wait_for(self, condition: Callable[[Message], bool], timeout_s: float, what: str) -> Message:
        deadline = time.monotonic() + timeout_s
        for _ in range(int(timeout_s / POLL_S) + 2):
            for _, message in self.received():
                if condition(message):
                    return message
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        types = [m.msg_type for _, m in self.received()][-20:]
        raise AssertionError(f"no {what} on port {self.port} within {timeout_s:g} s (last MsgTypes {types})")

    def wait_count(self, count: Callable[[], int], target: int, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        for _ in range(int(timeout_s / POLL_S) + 2):
            if count() >= target:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        raise AssertionError(f"{what}: {count()} of {target} within {timeout_s:g} s")


def most_in_any_window(times: list[float], interval_s: float) -> int:
    """The largest number of ``times`` inside one half-open span ``[t, t + interval_s)`` (how a throttle's
    accuracy is measured, in the unit and the system tests)."""
    times = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(times):
        while times[first] + interval_s <= t:
            first += 1
        best = max(best, last - first + 1)
    return best
