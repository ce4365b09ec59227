"""Forwards that wait for their session's Logon: held once each, released in chain order, expired by TTL.

``Waiting`` is pure (time is an argument), so these tests step a fake clock
instead of sleeping. The journal tests show that a forward settled by
rejection survives a restart as settled, and as rejected.
"""

from __future__ import annotations

from pathlib import Path

from actors.fix.timefmt import Instant
from actors.gateway.forwarding import REJECTED, Forward, Journal, Origin, Verdict, Waiting
from actors.store.memory import MemoryStore

A = Origin("client", 1000)
B = Origin("client", 2000)
T0_NS = 1_700_000_000_000_000_000


def store_at(next_sender: int) -> MemoryStore:
    """A store whose next outgoing number is ``next_sender`` and that holds no notes."""
    store = MemoryStore("venue", now_ns=1)
    if next_sender > 1:
        store.set_next_sender_seq(next_sender)
    return store


def at(s: float) -> Instant:
    """Both clocks ``s`` seconds after the start (the wall clock and the monotonic one move together)."""
    return Instant(100.0 + s, T0_NS + int(s * 1e9))


def fwd(seq: int, prev: int | None, origin: Origin = A, received_s: float | None = None) -> Forward:
    received_ns = None if received_s is None else T0_NS + int(received_s * 1e9)
    return Forward(origin, seq, prev, "D", [], [(11, b"%d" % seq)], received_ns=received_ns)


def hold(w: Waiting[str], f: Forward, now: Instant) -> bool:
    return w.hold(f.origin.message_id(f.seq), f, f"env-{f.seq}", now)


def test_repeats_are_held_once_and_release_empties_in_arrival_order() -> None:
    w: Waiting[str] = Waiting()
    for seq, prev in ((1, None), (2, 1), (3, 2)):
        assert hold(w, fwd(seq, prev), at(0))
    assert hold(w, fwd(2, 1), at(1))  # the sender's bus retransmission: already held
    assert len(w) == 3
    released = w.release()
    assert [h.forward.seq for h in released] == [1, 2, 3]
    assert [h.item for h in released] == ["env-1", "env-2", "env-3"]
    assert len(w) == 0 and w.release() == []


def test_release_puts_each_origin_in_chain_order_even_when_the_bus_reordered() -> None:
    w: Waiting[str] = Waiting()
    for f in (fwd(3, 2), fwd(7, None, B), fwd(1, None), fwd(2, 1), fwd(8, 7, B)):
        hold(w, f, at(0))
    order = [(h.forward.origin.epoch, h.forward.seq) for h in w.release()]
    assert order == [(1000, 1), (1000, 2), (1000, 3), (2000, 7), (2000, 8)]


def test_beyond_the_bound_a_forward_is_refused_and_stays_with_its_sender() -> None:
    w: Waiting[str] = Waiting(max_waiting=2)
    assert hold(w, fwd(1, None), at(0)) and hold(w, fwd(2, 1), at(0))
    assert not hold(w, fwd(3, 2), at(0))
    assert [h.forward.seq for h in w.release()] == [1, 2]


def test_without_a_ttl_nothing_expires() -> None:
    w: Waiting[str] = Waiting()
    hold(w, fwd(1, None, received_s=0), at(0))
    assert w.next_expiry_s() is None
    assert w.expired(at(3600)) == []
    assert len(w) == 1


def test_the_ttl_counts_from_the_origins_receipt_not_from_when_it_was_held() -> None:
    w: Waiting[str] = Waiting(ttl_s=2.0)
    hold(w, fwd(1, None, received_s=0.0), at(1.5))  # waited 1.5 s before this process held it (a restart)
    hold(w, fwd(2, 1, received_s=1.0), at(1.5))
    assert w.next_expiry_s() == at(2.0).mono_s
    assert w.expired(at(1.99)) == []
    first = w.expired(at(2.0))
    assert [h.forward.seq for h in first] == [1]
    assert first[0].age_s(at(2.0)) == 2.0
    assert [h.forward.seq for h in w.expired(at(3.0))] == [2]
    assert len(w) == 0 and w.next_expiry_s() is None


def test_without_a_receipt_time_the_ttl_counts_from_the_first_hold() -> None:
    w: Waiting[str] = Waiting(ttl_s=2.0)
    hold(w, fwd(1, None), at(5.0))
    hold(w, fwd(1, None), at(6.0))  # a repeat does not restart the count
    assert w.expired(at(6.9)) == []
    assert [h.forward.seq for h in w.expired(at(7.0))] == [1]


def test_released_forwards_no_longer_expire() -> None:
    w: Waiting[str] = Waiting(ttl_s=1.0)
    hold(w, fwd(1, None, received_s=0), at(0))
    assert len(w.release()) == 1
    assert w.next_expiry_s() is None and w.expired(at(10)) == []


def test_received_ns_travels_on_the_wire_and_older_senders_are_understood() -> None:
    f = fwd(4, 3, received_s=1.0)
    assert Forward.from_wire(f.to_wire()) == f
    old = f.to_wire()
    del old["received_ns"]
    assert Forward.from_wire(old).received_ns is None


def test_a_rejected_forward_is_settled_across_a_restart_and_remembered_as_rejected(tmp_path: Path) -> None:
    path = tmp_path / "venue.forwarded"
    journal = Journal(path, fsync=False)
    acc = journal.load(store_at(1))
    journal.record_rejected(fwd(1, None))
    acc.reject(fwd(1, None))
    journal.record(fwd(2, 1), 1)  # sent as the venue session's MsgSeqNum 1 ...
    journal.close()
    # ... but the store never held it (a crash before the store): only the rejection counts.
    acc = Journal(path, fsync=False).load(store_at(1))
    assert acc.judge(fwd(1, None)) is Verdict.DUPLICATE and acc.was_rejected(fwd(1, None))
    assert acc.judge(fwd(2, 1)) is Verdict.ACCEPT and not acc.was_rejected(fwd(2, 1))
    # Compaction keeps the rejected line: a second restart still knows.
    assert f"client 1000 1 {REJECTED}" in path.read_text()
    again = Journal(path, fsync=False).load(store_at(1))
    assert again.was_rejected(fwd(1, None)) and again.judge(fwd(1, None)) is Verdict.DUPLICATE
