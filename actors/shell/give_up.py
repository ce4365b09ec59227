"""How an initiator says it has stopped trying: words at the end of its final state reason.

The session core's transition table has no state for "gave up" (the session is
DISCONNECTED either way), so the initiator ends its last reason with
``"; gave up after N tries"`` and readers, the gateway's pure pair policy
among them, recognise it here. Pure: no I/O, so a pure module may import it.
"""

from __future__ import annotations

from typing import Final

GAVE_UP: Final = "gave up after"


def give_up_reason(reason: str, tries: int) -> str:
    """The final reason of an initiator that stops after ``tries`` failed attempts."""
    return f"{reason}; {GAVE_UP} {tries} tries"


def gave_up(reason: str) -> bool:
    """Whether a DISCONNECTED state's reason is an initiator's give-up (no further tries will come)."""
    return f"; {GAVE_UP} " in reason
