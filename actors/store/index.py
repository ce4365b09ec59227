"""The outgoing index: seq -> where the record is in the log.

In memory it is three sorted ``array('q')`` columns, so lookups are a
bisection and a million messages cost about 24 MB of RAM while the messages
themselves stay on disk. On disk (``<gen>.out.idx``) it is the same triples in
log order, which recovery loads with one read instead of parsing the log.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from array import array

from actors.store.records import MAX_MESSAGE_BYTES, RECORD_HEADER_SIZE, read_record

#: Walking back over damaged index entries stops here and rebuilds from the log.
MAX_INDEX_WALKBACK = 64


class SeqIndex:
    """seq -> (offset, length) of the latest outgoing record, sorted by seq.

    Three ``array('q')`` columns: about 24 bytes per message, so a million
    messages cost 24 MB of RAM and the messages themselves stay on disk.
    """

    __slots__ = ("seqs", "offsets", "lengths")

    def __init__(self, seqs: array[int], offsets: array[int], lengths: array[int]) -> None:
        self.seqs = seqs
        self.offsets = offsets
        self.lengths = lengths

    @classmethod
    def from_log_order(cls, entries: array[int]) -> SeqIndex:
        """Build from interleaved (seq, offset, length) entries; a later record of a seq wins."""
        seqs, offsets, lengths = entries[0::3], entries[1::3], entries[2::3]
        if all(map(operator.lt, seqs, itertools.islice(seqs, 1, None))):
            return cls(seqs, offsets, lengths)
        latest = {seq: i for i, seq in enumerate(seqs)}
        order = sorted(latest)
        return cls(
            array("q", order),
            array("q", (offsets[latest[s]] for s in order)),
            array("q", (lengths[latest[s]] for s in order)),
        )

    def __len__(self) -> int:
        return len(self.seqs)

    def put(self, seq: int, offset: int, length: int) -> None:
        seqs = self.seqs
        if not seqs or seq > seqs[-1]:
            seqs.append(seq)
            self.offsets.append(offset)
            self.lengths.append(length)
            return
        i = bisect.bisect_left(seqs, seq)
        if seqs[i] == seq:
            self.offsets[i] = offset
            self.lengths[i] = length
        else:
            seqs.insert(i, seq)
            self.offsets.insert(i, offset)
            self.lengths.insert(i, length)

    def span(self, begin: int, end: int) -> tuple[int, int]:
        return bisect.bisect_left(self.seqs, begin), bisect.bisect_right(self.seqs, end)


def valid_index_prefix(entries: array[int], fd: int, log_size: int) -> int:
    """How many leading index entries point at intact records.

    Entries are in log order, so offsets ascend: a binary search finds the
    last one inside the log, then that entry (and if need be a few before it)
    is checked against the record it points at.
    """
    count = len(entries) // 3

    def inside(k: int) -> bool:
        offset, length = entries[3 * k + 1], entries[3 * k + 2]
        return offset >= 0 and 0 <= length <= MAX_MESSAGE_BYTES and offset + RECORD_HEADER_SIZE + length <= log_size

    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if inside(mid - 1):
            lo = mid
        else:
            hi = mid - 1
    k = lo
    for _ in range(MAX_INDEX_WALKBACK):
        if k == 0:
            return 0
        seq, offset, length = entries[3 * k - 3], entries[3 * k - 2], entries[3 * k - 1]
        if inside(k - 1) and read_record(fd, offset, seq, length) is not None:
            return k
        k -= 1
    return 0
