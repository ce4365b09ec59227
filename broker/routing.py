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
  The broker asks at every wake-up, so the answer "nobody" costs no walk
  over the table: ``next_deadline`` is a time no actor can expire before
  (hearing an actor only moves its own expiry later), and only once it has
  passed does ``expire`` look at every actor and compute it again.
* ``route(dst)`` is the identity of ``dst`` while it is up, else None.

Down actors stay in the table (their number is bounded by the number of
names in the deployment), so a later hello is logged as a return.

``Leases`` (below) keeps the names that one live actor at a time may hold
(the coordinator's), and so who may send commands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
        self._look_at_s: float | None = None  # no up actor expires before; None: none is up

    def on_hello(self, name: str, identity: bytes, now_s: float) -> bool:
        """Record an actor as up; True when it was unknown or down before (a return, not a refresh)."""
        expiry_s = now_s + self.silence_limit_s
        if self._look_at_s is None or expiry_s < self._look_at_s:
            self._look_at_s = expiry_s
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
        if self._look_at_s is None or now_s < self._look_at_s:
            return []
        gone = [e for e in self._actors.values() if e.up and e.last_seen_s + self.silence_limit_s <= now_s]
        for entry in gone:
            entry.up = False
        self._look_at_s = min((e.last_seen_s + self.silence_limit_s for e in self._actors.values() if e.up),
                              default=None)
        return sorted(e.name for e in gone)

    def route(self, dst: str) -> bytes | None:
        entry = self._actors.get(dst)
        return entry.identity if entry is not None and entry.up else None

    def next_deadline(self) -> float | None:
        """When ``expire`` must look next: no actor expires earlier (one heard since may expire later); None
        if none is up."""
        return self._look_at_s

    def is_up(self, name: str) -> bool:
        entry = self._actors.get(name)
        return entry is not None and entry.up

    def up_names(self) -> list[str]:
        return sorted(e.name for e in self._actors.values() if e.up)


class Leases:
    """Names held by one live actor at a time (the coordinator's), and who may command: pure, no clock.

    Rules (the whole of it):

    * An actor asks for a lease in its ``hello`` (or heartbeat) body; it is a
      *candidate* for that lease from then on, in the order of its first ask.
    * ``ask`` grants the lease when nobody holds it, when its holder is not
      up, or when the holder is the asking actor itself (a restarted process
      of the same name takes its predecessor's place, as in the table).
    * ``on_down`` passes a lease whose holder went down to the earliest
      candidate that is up, and returns who got what, so that the broker
      tells them (a ``welcome`` with ``lease_held``).
    * ``may_command``: an actor that never asked for a lease may command
      (an operator's ``ctl``); a candidate only while it holds its lease.
    * ``clear`` forgets everything (a broker that stops serving).
    """

    def __init__(self) -> None:
        #: lease -> holder
        self._holders: dict[str, str] = {}
        #: lease -> candidates in the order of their first ask
        self._candidates: dict[str, list[str]] = {}
        #: candidate -> the lease it asked for
        self._asked: dict[str, str] = {}

    def ask(self, name: str, lease: str, is_up: Callable[[str], bool]) -> bool:
        """``name`` asks for ``lease``; True when it holds it now."""
        previous = self._asked.get(name)
        if previous is not None and previous != lease:
            self._drop(name)
        if name not in self._asked:
            self._asked[name] = lease
            self._candidates.setdefault(lease, []).append(name)
        holder = self._holders.get(lease)
        if holder is None or holder == name or not is_up(holder):
            self._holders[lease] = name
            return True
        return False

    def on_down(self, names: Iterable[str], is_up: Callable[[str], bool]) -> list[tuple[str, str]]:
        """Pass on the leases of actors that went down; ``(new holder, lease)`` for each lease passed."""
        gone = set(names)
        passed: list[tuple[str, str]] = []
        for lease, holder in list(self._holders.items()):
            if holder not in gone:
                continue
            heir = next((c for c in self._candidates.get(lease, ()) if c != holder and is_up(c)), None)
            if heir is None:
                del self._holders[lease]
            else:
                self._holders[lease] = heir
                passed.append((heir, lease))
        return passed

    def holds(self, name: str) -> bool:
        lease = self._asked.get(name)
        return lease is not None and self._holders.get(lease) == name

    def holder(self, lease: str) -> str | None:
        return self._holders.get(lease)

    def asked(self, name: str) -> str | None:
        """The lease ``name`` asked for, if any."""
        return self._asked.get(name)

    def may_command(self, name: str) -> bool:
        return name not in self._asked or self.holds(name)

    def clear(self) -> None:
        self._holders.clear()
        self._candidates.clear()
        self._asked.clear()

    def _drop(self, name: str) -> None:
        lease = self._asked.pop(name)
        self._candidates[lease].remove(name)
        if self._holders.get(lease) == name:
            del self._holders[lease]
