"""The forwarding rules: accept in order, acknowledge duplicates, never reorder."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from actors.fix.codec import DEFAULT_MAX_MESSAGE_BYTES, Framer, encode, parse
from actors.gateway.forwarding import (
    Acceptance,
    Chain,
    Early,
    Forward,
    Journal,
    Origin,
    Verdict,
    forward_sent_as,
    refer_to_origin,
)
from actors.store.memory import MemoryStore
from broker import protocol
from broker.protocol import Envelope

A = Origin("client", 1000)


def store_at(next_sender: int) -> MemoryStore:
    """A store whose next outgoing number is ``next_sender`` and that holds no notes."""
    store = MemoryStore("venue", now_ns=1)
    if next_sender > 1:
        store.set_next_sender_seq(next_sender)
    return store


def fwd(seq: int, prev: int | None, origin: Origin = A) -> Forward:
    return Forward(origin, seq, prev, "D", [], [(11, b"%d" % seq)])


def test_in_order_chain_is_accepted_and_repeats_are_duplicates() -> None:
    acc = Acceptance()
    for seq, prev in ((2, None), (3, 2), (5, 3)):
        assert acc.judge(fwd(seq, prev)) is Verdict.ACCEPT
        acc.accept(fwd(seq, prev))
    assert acc.judge(fwd(3, 2)) is Verdict.DUPLICATE
    assert acc.judge(fwd(5, None)) is Verdict.DUPLICATE


def test_a_message_overtaking_its_predecessor_is_refused() -> None:
    acc = Acceptance()
    acc.accept(fwd(2, None))
    assert acc.judge(fwd(4, 3)) is Verdict.OUT_OF_ORDER
    assert acc.judge(fwd(3, 2)) is Verdict.ACCEPT


def test_a_new_epoch_starts_a_new_chain() -> None:
    acc = Acceptance()
    acc.accept(fwd(9, None))
    assert acc.judge(fwd(2, None, Origin("client", 2000))) is Verdict.ACCEPT


def test_sender_chain_links_each_forward_to_the_previous() -> None:
    chain = Chain()
    assert [chain.link(1, s) for s in (2, 3, 7)] == [None, 2, 3]
    assert chain.link(2, 2) is None


@given(order=st.permutations(list(range(12))), dup=st.lists(st.integers(0, 11), max_size=6))
def test_any_arrival_order_with_retransmission_yields_each_once_in_order(order: list[int], dup: list[int]) -> None:
    """The bus may reorder and repeat; the sender retransmits what is unacknowledged, in order."""
    chain = Chain()
    seqs = [2 + 2 * i for i in range(12)]  # gaps: admin messages consume numbers too
    forwards = [fwd(s, chain.link(A.epoch, s)) for s in seqs]
    acc = Acceptance()
    sent: list[int] = []
    acked: set[int] = set()
    arrivals = [forwards[i] for i in order] + [forwards[i] for i in dup]
    for _ in range(len(forwards) + 1):
        for f in arrivals:
            verdict = acc.judge(f)
            if verdict is Verdict.ACCEPT:
                acc.accept(f)
                sent.append(f.seq)
            if verdict is not Verdict.OUT_OF_ORDER:
                acked.add(f.seq)
        arrivals = [f for f in forwards if f.seq not in acked]
    assert sent == seqs


@given(order=st.permutations(list(range(12))), dup=st.lists(st.integers(0, 11), max_size=6))
def test_with_early_forwards_kept_one_pass_of_any_arrival_order_sends_each_once_in_order(
        order: list[int], dup: list[int]) -> None:
    """Lost frames come back each on its own timer, in any order: kept, each waits only for its predecessor."""
    chain = Chain()
    seqs = [2 + 2 * i for i in range(12)]
    forwards = [fwd(s, chain.link(A.epoch, s)) for s in seqs]
    acc = Acceptance()
    early: Early[str] = Early()
    sent: list[int] = []
    acked: list[str] = []
    for f in [forwards[i] for i in order] + [forwards[i] for i in dup]:
        run = [(f"id-{f.seq}", f)]
        while run:
            id, forward = run.pop()
            verdict = acc.judge(forward)
            if verdict is Verdict.OUT_OF_ORDER:
                early.keep(id, forward, id)
                continue
            acked.append(id)
            if verdict is Verdict.ACCEPT:
                acc.accept(forward)
                sent.append(forward.seq)
                follower = early.after(forward.origin, forward.seq)
                if follower is not None:
                    run.append((follower[0], follower[1]))
    assert sent == seqs
    assert len(early) == 0 and set(acked) == {f"id-{s}" for s in seqs}


def test_early_keeps_a_repeat_once_and_drops_its_oldest_when_full() -> None:
    early: Early[str] = Early(max_early=2)
    early.keep("m-4", fwd(4, 3), "env-4")
    early.keep("m-4", fwd(4, 3), "env-4 again")
    assert len(early) == 1 and "m-4" in early
    early.keep("m-6", fwd(6, 5), "env-6")
    early.keep("m-8", fwd(8, 7), "env-8")  # full: m-4, the oldest, stays with its sender
    assert "m-4" not in early and len(early) == 2
    assert early.after(A, 3) is None
    assert early.after(A, 5) == ("env-6", fwd(6, 5)) and "m-6" not in early
    early.keep("m-2", fwd(2, None), "env-2")  # no predecessor named: never kept (it is accepted or a duplicate)
    assert "m-2" not in early


def test_a_rebased_journal_keeps_what_was_accepted_when_the_stores_numbers_go_back(tmp_path: Path) -> None:
    """A sequence reset (or a lower next sender set by an operator) makes the lines' outgoing numbers meaningless."""
    store = store_at(1)
    journal = Journal(tmp_path / "journal", fsync=False)
    acceptance = journal.load(store)
    prev = None
    for out_seq, seq in enumerate((2, 3, 4, 5), 1):
        forward = fwd(seq, prev)
        prev = seq
        store.save_outgoing(out_seq, b"8=FIX.4.4\x01", note=Journal.note(forward))
        journal.record(forward, out_seq)
        acceptance.accept(forward)
    store.reset(2)
    forgetful = Journal(tmp_path / "journal", fsync=False).load(store)
    assert forgetful.judge(fwd(7, 5)) is Verdict.OUT_OF_ORDER, "without a rebase a restart forgets"

    journal = Journal(tmp_path / "journal", fsync=False)
    journal.rebase(acceptance, store.creation_time_ns, store.next_sender_seq - 1)
    journal.close()
    reloaded = Journal(tmp_path / "journal", fsync=False).load(store)
    assert reloaded.accepted == {A: 5}
    assert reloaded.judge(fwd(7, 5)) is Verdict.ACCEPT and reloaded.judge(fwd(5, 4)) is Verdict.DUPLICATE


def test_a_reject_names_the_message_of_the_session_the_refused_one_came_from() -> None:
    store = store_at(1)
    store.save_outgoing(1, b"8=FIX.4.4\x0135=A\x01")  # the session's own Logon: no note
    store.save_outgoing(2, b"8=FIX.4.4\x0135=D\x01", note=Journal.note(fwd(7, None)))
    assert forward_sent_as(store, 2) == (A, 7)
    assert forward_sent_as(store, 1) is None and forward_sent_as(store, 9) is None and forward_sent_as(store, 0) is None
    body = [(45, b"2"), (58, b"no"), (380, b"3")]
    assert refer_to_origin(store, body) == [(45, b"7"), (58, b"no"), (380, b"3")]
    assert refer_to_origin(store, [(45, b"1"), (58, b"no")]) == [(58, b"no")], "not the user's: no number"
    assert refer_to_origin(store, [(45, b"x"), (58, b"no")]) == [(58, b"no")]


def test_journal_keeps_only_entries_whose_outgoing_message_was_stored(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", fsync=False)
    journal.record(fwd(2, None), out_seq=5)
    journal.record(fwd(3, 2), out_seq=6)
    journal.record(fwd(4, 3), out_seq=7)
    journal.close()
    reopened = Journal(tmp_path / "j", fsync=False)
    acc = reopened.load(store_at(7))  # the store holds 5 and 6, not 7
    assert acc.accepted == {A: 3}
    reopened.close()
    assert Journal(tmp_path / "j", fsync=False).load(store_at(100)).accepted == {A: 3}


def test_the_largest_fix_message_a_session_takes_fits_one_bus_frame_as_a_forward() -> None:
    """The bus's frame limit is no second, smaller limit on FIX messages.

    A frame past ``MAX_FRAME_BYTES`` is dropped with its sender's connection, again at every retransmit, and
    the forwards behind it wait for ever. The worst case for the msgpack pairs is a message of one-digit tags
    and one-byte values (``1=a<SOH>``, 4 bytes, is 5 as a pair), as large as the framer lets in.
    """
    framer = Framer()
    header = [(49, b"TRADER"), (56, b"GATEWAY"), (34, b"2"), (52, b"20261202-00:00:00.000")]
    fields = (DEFAULT_MAX_MESSAGE_BYTES - 200) // 4
    raw = encode(b"FIX.4.4", b"D", header, [(1, b"a")] * fields)
    assert len(raw) > DEFAULT_MAX_MESSAGE_BYTES - 200
    framer.feed(raw)
    frame = framer.next_frame()
    assert frame is not None and frame.error is None, "the framer takes it"
    message = parse(frame.data)
    forward = Forward(Origin("client", 1_764_633_600_000_000_000), 2, 1, message.msg_type,
                      [(t, v) for t, v in message.header_fields() if t not in (8, 9, 34, 35, 49, 52, 56, 10)],
                      message.body_fields(), received_ns=1_764_633_600_123_456_789)
    envelope = Envelope(protocol.DELIVER, "client", "venue", "client-1764633600000000000-2", body=forward.to_wire(),
                        acks=("venue-1764633600000000000-7",) * 256)
    assert len(envelope.encode()) < protocol.MAX_FRAME_BYTES
