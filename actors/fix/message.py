"""The parsed FIX message: an ordered list of (tag, value) pairs.

Values stay as the bytes that came off the wire so that a message can be
validated field by field (order, repeats, empty values) and forwarded without
changing a single byte of a value. Lookups build a first-occurrence index
lazily, because most messages on the hot path are looked at for a handful of
header tags only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from actors.fix import tags as T
from actors.fix.secrets import mask_fields


class Message:
    """A FIX message in wire order, 8/9/35 first and 10 last when parsed."""

    __slots__ = ("fields", "_index", "_msg_type")

    def __init__(self, fields: list[tuple[int, bytes]]) -> None:
        self.fields = fields
        self._index: dict[int, bytes] | None = None
        self._msg_type: str | None = None

    def _idx(self) -> dict[int, bytes]:
        index = self._index
        if index is None:
            index = {}
            for tag, value in self.fields:
                if tag not in index:
                    index[tag] = value
            self._index = index
        return index

    def get(self, tag: int) -> bytes | None:
        return self._idx().get(tag)

    def get_str(self, tag: int, default: str | None = None) -> str | None:
        value = self._idx().get(tag)
        return default if value is None else value.decode("latin-1")

    def get_int(self, tag: int) -> int | None:
        """The field as an integer, or None when absent or not an integer."""
        value = self._idx().get(tag)
        if value is None or not _is_int(value):
            return None
        return int(value)

    def has(self, tag: int) -> bool:
        return tag in self._idx()

    def flag(self, tag: int) -> bool:
        """True when a Boolean field is present and 'Y'."""
        return self._idx().get(tag) == b"Y"

    @property
    def msg_type(self) -> str:
        """MsgType (35); read several times per message on the hot path, so decoded once."""
        msg_type = self._msg_type
        if msg_type is None:
            value = self._idx().get(T.MSG_TYPE)
            msg_type = self._msg_type = "" if value is None else value.decode("latin-1")
        return msg_type

    @property
    def seq_num(self) -> int | None:
        return self.get_int(T.MSG_SEQ_NUM)

    @property
    def begin_string(self) -> str:
        value = self._idx().get(T.BEGIN_STRING)
        return "" if value is None else value.decode("latin-1")

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __repr__(self) -> str:
        return f"Message({self.to_text()})"

    def to_text(self) -> str:
        """Human-readable form with '|' for SOH and secrets as ``***``, for logs."""
        return "|".join(f"{t}={v.decode('latin-1')}" for t, v in mask_fields(self.fields))

    def body_fields(self) -> list[tuple[int, bytes]]:
        """Fields that are neither standard header nor trailer, in wire order."""
        return [(t, v) for t, v in self.fields if t not in T.HEADER_TAGS and t not in T.TRAILER_TAGS]

    def header_fields(self) -> list[tuple[int, bytes]]:
        return [(t, v) for t, v in self.fields if t in T.HEADER_TAGS]


def _is_int(value: bytes) -> bool:
    if not value:
        return False
    start = 1 if value[:1] == b"-" else 0
    return value[start:].isdigit() and start < len(value) <= start + T.MAX_INT_DIGITS


def fields_from(pairs: Iterable[tuple[int, bytes | str | int]]) -> list[tuple[int, bytes]]:
    """Normalise caller-friendly values (str, int) to wire bytes."""
    out: list[tuple[int, bytes]] = []
    for tag, value in pairs:
        if isinstance(value, bytes):
            out.append((tag, value))
        elif isinstance(value, int):
            out.append((tag, str(value).encode("ascii")))
        else:
            out.append((tag, value.encode("latin-1")))
    return out
