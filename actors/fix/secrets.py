"""Secrets inside FIX messages, and their masked form for everything a person reads.

Password (554), NewPassword (925), EncryptedPassword (1402) and
EncryptedNewPassword (1404) travel in Logon and UserRequest messages. The
wire and the store need them as sent (a stored UserRequest may be resent);
every place that shows a message to a person (a log line, an event, the
monitor, a store dump) shows ``***`` instead, through this module. A
deployment adds its own secret tags (``secret_tags`` in the topology).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from actors.fix import tags as T

#: Shown instead of a secret value.
MASK: Final = b"***"
#: Tags whose values are secrets in every FIX version.
SECRET_TAGS: Final = frozenset({T.PASSWORD, 925, 1402, 1404})


def mask_wire(data: bytes, extra: Iterable[int] = ()) -> bytes:
    """``data`` (FIX, SOH-separated, possibly partial or garbled) with every secret value replaced by ``***``.

    Works on bytes that do not parse: a garbled Logon is exactly what gets logged.
    """
    secrets = SECRET_TAGS.union(extra) if extra else SECRET_TAGS
    if not any(b"%d=" % tag in data for tag in secrets):
        return data
    fields = data.split(T.SOH)
    for i, field in enumerate(fields):
        tag, eq, _ = field.partition(b"=")
        if eq and tag.isdigit() and len(tag) <= 9 and int(tag) in secrets:
            fields[i] = tag + b"=" + MASK
    return T.SOH.join(fields)


def mask_fields(fields: Iterable[tuple[int, bytes]], extra: Iterable[int] = ()) -> list[tuple[int, bytes]]:
    """Parsed fields with every secret value replaced by ``***``."""
    secrets = SECRET_TAGS.union(extra) if extra else SECRET_TAGS
    return [(tag, MASK if tag in secrets else value) for tag, value in fields]
