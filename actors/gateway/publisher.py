"""The actor's event socket: holds its events until the broker can take them, so none is lost at start.

A ZeroMQ publisher drops every message until a subscription has reached it,
and a subscription reaches a connecting publisher only after the TCP
connection, the ZMTP handshake and the broker's loop have all run: tens of
milliseconds on a busy host, a reconnect interval or more when the actor
starts before its broker (supervisord starts them together). Each actor's
first events, its first state changes and the Logon that follows at once,
were published into that window and lost, the same events an operator most
wants to see.

So the broker's XSUB subscribes to every topic (``broker.broker.SUBSCRIBE_ALL``), which
ZeroMQ sends to each publisher as soon as it attaches, and the actor
publishes through an XPUB, which shows that subscription to the actor. Until
it has seen one, ``Publisher`` holds the events, in order, at most
``HELD_EVENTS`` (the oldest go first, counted in a log line), and sends them
all, still in order, before the next event once the broker's subscription has
come. Moving to the other broker of a pair holds events again until the new
broker's subscription arrives. A broker that restarts on the same endpoints
needs nothing: ZeroMQ keeps the connecting side's queue and delivers it to the
new broker.

Events that wait ``STUCK_WARNING_S`` are worth a warning, repeated every
``STUCK_REPEAT_S`` while they wait: the actor's business connection may be up
while its events cannot reach the broker's XSUB (a port closed between two
hosts, a wrong endpoint), and without the line nothing would say so.

Events stay a live view past the broker: a subscriber that is not there yet,
or too slow, still misses them (``docs/monitor.md``).
"""

from __future__ import annotations

import logging
from collections import deque

import zmq

log = logging.getLogger("fixmesh.bus")

#: Events held while no broker has subscribed yet; beyond it the oldest are dropped (and counted).
HELD_EVENTS = 1000
#: How soon the owner's loop should call ``poll`` again while events are held (``next_look_s``).
HELD_RETRY_S = 0.05
#: Held this long (the oldest event), the events are worth a warning; repeated this often while they wait.
STUCK_WARNING_S = 10.0
STUCK_REPEAT_S = 60.0
#: Subscription messages read per ``poll``, so a flood cannot hold the loop.
MAX_SUBSCRIPTION_READS = 100
_SUBSCRIBE = 1
_UNSUBSCRIBE_ALL = b"\x00"


class Publisher:
    """An XPUB connected to the broker's XSUB, with the events held until the broker has subscribed."""

    def __init__(self, sock: zmq.Socket[bytes], name: str, where: str) -> None:
        """``sock``: an XPUB, configured (keys, linger) and not yet connected; the owner connects and moves it.
        ``name``: the actor, and ``where``: the XSUB endpoint, for the warning about events that wait."""
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every broker's subscription shows, not only the first one
        self.sock = sock
        self._name = name
        self._where = where
        self._live = False
        self._held: deque[list[bytes]] = deque()
        self._dropped = 0
        self._held_since_s: float | None = None
        self._warned_s: float | None = None
        self._look_at_s: float | None = None

    @property
    def live(self) -> bool:
        """True once a broker has subscribed, until the owner moves the socket or the broker unsubscribes."""
        return self._live

    @property
    def held(self) -> int:
        return len(self._held)

    def next_look_s(self, now_s: float) -> float | None:
        """While events are held, when the owner should ``poll`` again: a point in time, kept until a ``poll``
        at or after it (a loop compares it with its clock after its own wait); None when nothing is held."""
        if not self._held:
            return None
        if self._look_at_s is None:
            self._look_at_s = now_s + HELD_RETRY_S
        return self._look_at_s

    def publish(self, frames: list[bytes], now_s: float) -> None:
        """Send an event, after any held ones; hold it while no broker has subscribed."""
        if not self._live:
            self.poll(now_s)
        if self._live:
            self._send(frames)
        else:
            self._hold(frames, now_s)

    def poll(self, now_s: float) -> None:
        """Read what the broker said about subscriptions; send the held events once it has subscribed, or
        warn when they have waited too long."""
        if self._look_at_s is not None and now_s >= self._look_at_s:
            self._look_at_s = None  # looked now; the next look is set while events are still held
        for _ in range(MAX_SUBSCRIPTION_READS):
            try:
                message = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if message[:1] == bytes((_SUBSCRIBE,)):
                self._live = True
            elif message == _UNSUBSCRIBE_ALL:
                self._live = False
        if not self._held:
            return
        if self._live:
            self._flush()
        else:
            self._maybe_warn(now_s)

    def moved(self, where: str) -> None:
        """The owner moved the socket to ``where``, another broker: hold events until that broker subscribes."""
        self._live = False
        self._where = where

    def _hold(self, frames: list[bytes], now_s: float) -> None:
        if not self._held:
            self._held_since_s = now_s
        if len(self._held) >= HELD_EVENTS:
            self._held.popleft()
            self._dropped += 1
        self._held.append(frames)

    def _maybe_warn(self, now_s: float) -> None:
        waited_s = now_s - (self._held_since_s if self._held_since_s is not None else now_s)
        if waited_s < STUCK_WARNING_S or (self._warned_s is not None and now_s - self._warned_s < STUCK_REPEAT_S):
            return
        self._warned_s = now_s
        log.warning("%s: no broker has taken this actor's events for %.0f s (%d held, %d dropped): is the broker's "
                    "event port %s running and reachable from this host?", self._name, waited_s, len(self._held),
                    self._dropped, self._where)

    def _flush(self) -> None:
        count, dropped, warned = len(self._held), self._dropped, self._warned_s is not None
        while self._held:
            self._send(self._held.popleft())
        self._dropped = 0
        self._held_since_s = self._warned_s = None
        if dropped:
            log.warning("%s: the broker took the events at last: %d held event(s) sent, the %d oldest dropped "
                        "(more than %d while no broker had subscribed)", self._name, count, dropped, HELD_EVENTS)
        elif warned:
            log.info("%s: the broker took the events at last: %d held event(s) sent, none lost", self._name, count)

    def _send(self, frames: list[bytes]) -> None:
        # An XPUB never blocks: past its high-water mark ZeroMQ drops, as for any slow subscriber.
        self.sock.send_multipart(frames, zmq.NOBLOCK)
