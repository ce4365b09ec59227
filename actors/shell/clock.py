"""The only place in fixmesh that reads the clocks.

Everything else receives the time: the session core as an argument, the
shell's parts through ``now()`` or ``monotonic_s()`` (tests pass a fake
``now`` callable where a part takes one). The broker, which imports nothing
of ``actors``, takes its clocks as constructor arguments for the same reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from actors.fix.timefmt import Instant


def now() -> Instant:
    """Monotonic seconds (timers, deadlines) and UTC nanoseconds (SendingTime, schedules), read together."""
    return Instant(time.monotonic(), time.time_ns())


#: Monotonic seconds alone, for deadlines the loop compares with its own (no wall-clock read).
#: The function itself, not a wrapper: the loop reads it twice per turn.
monotonic_s: Final[Callable[[], float]] = time.monotonic
