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
#: How soon the owner's loop should call ``poll`` again while events are held.
HELD_RETRY_S = 0.05
#: Subscription messages read per ``poll``, so a flood cannot hold the loop.
MAX_SUBSCRIPTION_READS = 100
_SUBSCRIBE = 1
_UNSUBSCRIBE_ALL = b"\x00"


class Publisher:
    """An XPUB connected to the broker's XSUB, with the events held until the broker has subscribed."""

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        """``sock``: an XPUB, configured (keys, linger) and not yet connected; the owner connects and moves it."""
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every broker's subscription shows, not only the first one
        self.sock = sock
        self._live = False
        self._held: deque[list[bytes]] = deque()
        self._dropped = 0

    @property
    def live(self) -> bool:
        """True once a broker has subscribed, until the owner moves the socket or the broker unsubscribes."""
        return self._live

    @property
    def held(self) -> int:
        return len(self._held)

    def publish(self, frames: list[bytes]) -> None:
        """Send an event, after any held ones; hold it while no broker has subscribed."""
        if not self._live:
            self.poll()
        if self._live:
            self._send(frames)
        else:
            self._hold(frames)

    def poll(self) -> None:
        """Read what the broker said about subscriptions; send the held events once it has subscribed."""
        for _ in range(MAX_SUBSCRIPTION_READS):
            try:
                message = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if message[:1] == bytes((_SUBSCRIBE,)):
                self._live = True
            elif message == _UNSUBSCRIBE_ALL:
                self._live = False
        if self._live and self._held:
            self._flush()

    def moved(self) -> None:
        """The owner moved the socket to another broker: hold events until that broker subscribes."""
        self._live = False

    def _hold(self, frames: list[bytes]) -> None:
        if len(self._held) >= HELD_EVENTS:
            self._held.popleft()
            self._dropped += 1
        self._held.append(frames)

    def _flush(self) -> None:
        count, dropped = len(self._held), self._dropped
        while self._held:
            self._send(self._held.popleft())
        self._dropped = 0
        if dropped:
            log.warning("the broker took the events at last: %d held events sent, the %d oldest dropped "
                        "(more than %d while no broker had subscribed)", count, dropped, HELD_EVENTS)

    def _send(self, frames: list[bytes]) -> None:
        # An XPUB never blocks: past its high-water mark ZeroMQ drops, as for any slow subscriber.
        self.sock.send_multipart(frames, zmq.NOBLOCK)
