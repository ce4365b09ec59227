"""Reading a long range of outgoing messages in parts (``get_outgoing(..., limit)``, ``read_outgoing_parts``).

A ResendRequest may ask for a million messages; the store hands them over a
part at a time so that no layer holds the range. Both stores must give, part
after part, exactly what one read of the whole range gives, whatever the
order the messages were saved in, and a damaged record of the file store
must not end a part early (a short part means the range is done).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.store import Durability, FileStore, MemoryStore, MessageStore, read_outgoing_parts
from actors.store.records import RECORD_HEADER_SIZE

SID = "FIX.4.4:ALPHA->BETA"
NOW_NS = 1_700_000_000_000_000_000


def payload(seq: int) -> bytes:
    return b"8=FIX.4.4\x0134=%d\x01" % seq + bytes([65 + seq % 26]) * 20


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    opened: MessageStore = (MemoryStore(SID, now_ns=NOW_NS) if request.param == "memory"
                            else FileStore(tmp_path, SID, now_ns=NOW_NS, durability=Durability.OS_BUFFER))
    yield opened
    opened.close()


def fill(store: MessageStore) -> list[int]:
    """1..300 without 100..119, saved out of order, some twice (the latest wins): the numbers stored."""
    numbers = [s for s in range(1, 301) if not 100 <= s < 120]
    shuffled = numbers[:]
    random.Random(7).shuffle(shuffled)
    for seq in shuffled + numbers[::37]:
        store.save_outgoing(seq, payload(seq))
    return numbers


@pytest.mark.parametrize("size", [1, 3, 20, 299, 1000])
@pytest.mark.parametrize("begin, end", [(1, 300), (95, 125), (100, 119), (250, 10**9)])
def test_parts_put_together_are_the_whole_range(store: MessageStore, size: int, begin: int, end: int) -> None:
    numbers = fill(store)
    whole = store.get_outgoing(begin, end)
    assert [s for s, _ in whole] == [s for s in numbers if begin <= s <= end]
    parts = list(read_outgoing_parts(store, begin, end, size))
    assert all(0 < len(part) <= size for part in parts)
    assert [m for part in parts for m in part] == whole


def test_a_limit_takes_the_first_of_the_range(store: MessageStore) -> None:
    fill(store)
    assert store.get_outgoing(95, 200, 7) == [(s, payload(s)) for s in (95, 96, 97, 98, 99, 120, 121)]
    assert store.get_outgoing(95, 200, 0) == []
    assert store.get_outgoing(100, 119, 5) == []


def test_a_damaged_record_does_not_end_a_part_early(tmp_path: Path) -> None:
    with FileStore(tmp_path, SID, now_ns=NOW_NS, durability=Durability.OS_BUFFER) as store:
        for seq in range(1, 11):
            store.save_outgoing(seq, payload(seq))
    third = 2 * (RECORD_HEADER_SIZE + len(payload(1)))
    log_path = next(tmp_path.rglob("*.out.log"))
    with open(log_path, "r+b") as log:
        log.seek(third + RECORD_HEADER_SIZE + 3)
        log.write(b"\xff")
    with FileStore(tmp_path, SID, now_ns=NOW_NS) as store:
        assert [s for s, _ in store.get_outgoing(1, 10, 4)] == [1, 2, 4, 5], "3 is read as missing, 5 fills the part"
        assert [[s for s, _ in part] for part in read_outgoing_parts(store, 1, 10, 4)] == [[1, 2, 4, 5],
                                                                                          [6, 7, 8, 9], [10]]


def test_a_part_size_below_one_is_a_caller_bug(store: MessageStore) -> None:
    with pytest.raises(ValueError, match="part size"):
        next(read_outgoing_parts(store, 1, 10, 0))


def test_a_reset_empties_the_memory_store_order_too() -> None:
    store = MemoryStore(SID, now_ns=NOW_NS)
    for seq in (5, 3, 9):
        store.save_outgoing(seq, payload(seq))
    store.reset(NOW_NS + 1)
    store.save_outgoing(2, payload(2))
    assert store.get_outgoing(1, 100, 10) == [(2, payload(2))]
