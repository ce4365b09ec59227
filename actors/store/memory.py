"""A store that lives in RAM: for tests, simulations and sessions that may lose state.

It is also the reference model: the property tests drive a ``FileStore`` and a
``MemoryStore`` with the same operations and require the same answers.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from actors.store.api import StoreClosedError, check_data, check_seq


class MemoryStore:
    """Keeps messages in dicts keyed by sequence number (latest wins)."""

    __slots__ = (
        "_session_id",
        "_creation_time_ns",
        "_keep_incoming",
        "_next_sender",
        "_next_target",
        "_outgoing",
        "_notes",
        "_out_seqs",
        "_incoming",
        "_closed",
    )

    def __init__(self, session_id: str, *, now_ns: int, keep_incoming: bool = False) -> None:
        if not session_id:
            raise ValueError("session_id must not be empty")
        self._session_id = session_id
        self._creation_time_ns = now_ns
        self._keep_incoming = keep_incoming
        self._next_sender = 1
        self._next_target = 1
        self._outgoing: dict[int, bytes] = {}
        self._notes: dict[int, bytes] = {}
        #: The outgoing numbers in order, so that a part of a long range is found by bisection.
        self._out_seqs: list[int] = []
        self._incoming: dict[int, bytes] = {}
        self._closed = False

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def next_sender_seq(self) -> int:
        return self._next_sender

    @property
    def next_target_seq(self) -> int:
        return self._next_target

    @property
    def creation_time_ns(self) -> int:
        return self._creation_time_ns

    def save_outgoing(self, seq: int, data: bytes, note: bytes = b"") -> None:
        self._check_open()
        check_seq("seq", seq)
        check_data(data)
        seqs = self._out_seqs
        if not seqs or seq > seqs[-1]:
            seqs.append(seq)
        elif seq not in self._outgoing:
            insort(seqs, seq)
        self._outgoing[seq] = bytes(data)
        if note:
            self._notes[seq] = bytes(note)
        else:
            self._notes.pop(seq, None)
        self._next_sender = seq + 1

    def save_incoming(self, seq: int, data: bytes) -> None:
        self._check_open()
        check_seq("seq", seq)
        check_data(data)
        if self._keep_incoming:
            self._incoming[seq] = bytes(data)
        self._next_target = seq + 1

    def set_next_sender_seq(self, n: int) -> None:
        self._check_open()
        check_seq("next_sender_seq", n)
        self._next_sender = n

    def set_next_target_seq(self, n: int) -> None:
        self._check_open()
        check_seq("next_target_seq", n)
        self._next_target = n

    def get_outgoing(self, begin: int, end: int, limit: int | None = None) -> list[tuple[int, bytes]]:
        self._check_open()
        seqs = self._out_seqs
        i, j = bisect_left(seqs, begin), bisect_right(seqs, end)
        if limit is not None:
            j = min(j, i + max(0, limit))
        outgoing = self._outgoing
        return [(s, outgoing[s]) for s in seqs[i:j]]

    def get_notes(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """The notes saved with the outgoing messages of ``begin..end``, ascending."""
        self._check_open()
        return _select(self._notes, begin, end)

    def get_incoming(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """The incoming journal in ``begin..end``; empty unless ``keep_incoming``."""
        self._check_open()
        return _select(self._incoming, begin, end)

    def reset(self, creation_time_ns: int) -> None:
        self._check_open()
        self._outgoing.clear()
        self._notes.clear()
        self._out_seqs.clear()
        self._incoming.clear()
        self._next_sender = 1
        self._next_target = 1
        self._creation_time_ns = creation_time_ns

    def sync_messages(self) -> None:
        self._check_open()

    def sync(self) -> None:
        self._check_open()

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"memory store for {self._session_id!r} is closed")


def _select(messages: dict[int, bytes], begin: int, end: int) -> list[tuple[int, bytes]]:
    """Walk whichever is smaller, the range or the dict, so a huge EndSeqNo stays cheap."""
    if end < begin:
        return []
    if end - begin < len(messages):
        return [(s, messages[s]) for s in range(begin, end + 1) if s in messages]
    return sorted((s, m) for s, m in messages.items() if begin <= s <= end)
