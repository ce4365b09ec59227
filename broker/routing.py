"""The broker's routing table and liveness, with no socket and no clock.

The broker needs two answers on every frame: where does ``dst`` live, and
who has gone silent. Both depend only on what was heard and when, so this
class takes the time as an argument and is tested by stepping numbers, not
by sleeping (STYLE principle 7).

Rules (the whole of it):

* ``on_hello`` makes an actor known and up, with the identity its frames
  came from; a hello from an actor already up is a restart and keeps it up.
* ``on_seen`` refreshes an up actor; it never revives a down or unknown one,
  because only a hello (or the broker's decision to treat a heartbeat as
  one) says that the actor is ready to receive.
* ``expire(now)`` marks down, once, every up actor silent for
  ``liveness * heartbeat_interval_s`` or longer, and returns their names.
* ``route(dst)`` is the identity of ``dst`` while it is up, else None.

Down actors stay in the table (their number is bounded by the number of
names in the deployment), so a later hello is logged as a return.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.protocol import HEARTBEAT_INTERVAL_S, LIVENESS


@dataclass(slots=True)
class ActorEntry:
    name: str
    identity: bytes
    last_seen_s: float
    up: bool = True


class RoutingTable:
    """Actors by name: ZeroMQ routing identity, last time heard (monotonic s), up or down."""

    def __init__(self, heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S, liveness: int = LIVENESS) -> None:
        if heartbeat_interval_s <= 0 or liveness < 1:
            raise ValueError("heartbeat_interval_s must be positive and liveness at least 1")
        self.silence_limit_s = heartbeat_interval_s * liveness
        self._actors: dict[str, ActorEntry] = {}

    def on_hello(self, name: str, identity: bytes, now_s: float) -> bool:
        """Record an actor as up; True when it was unknown or down before (a return, not a refresh)."""
        entry = self._actors.get(name)
        if entry is None:
            self._actors[name] = ActorEntry(name, identity, now_s)
            return True
        came_back = not entry.up
        entry.identity = identity
        entry.last_seen_s = max(entry.last_seen_s, now_s)
        entry.up = True
        return came_back

    def on_seen(self, name: str, now_s: float) -> bool:
        """Refresh an up actor's liveness; False (and no change) when it is unknown or down."""
        entry = self._actors.get(name)
        if entry is None or not entry.up:
            return False
        entry.last_seen_s = max(entry.last_seen_s, now_s)
        return True

    def expire(self, now_s: float) -> list[str]:
        """Mark down the actors silent for the limit or longer; their names, sorted, each reported once."""
        gone = [e for e in self._actors.values() if e.up and now_s - e.last_seen_s >= self.silence_limit_s]
        for entry in gone:
            entry.up = False
        return sorted(e.name for e in gone)

    def route(self, dst: str) -> bytes | None:
        entry = self._actors.get(dst)
        return entry.identity if entry is not None and entry.up else None

    def next_deadline(self) -> float | None:
        """When ``expire`` would next mark an actor down, if nothing is heard before; None if none is up."""
        return min((e.last_seen_s + self.silence_limit_s for e in self._actors.values() if e.up), default=None)

    def is_up(self, name: str) -> bool:
        entry = self._actors.get(name)
        return entry is not None and entry.up

    def up_names(self) -> list[str]:
        return sorted(e.name for e in self._actors.values() if e.up)
