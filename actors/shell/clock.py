"""The only place in fixmesh that reads the clocks."""

from __future__ import annotations

import time

from actors.fix.timefmt import Instant


def now() -> Instant:
    return Instant(time.monotonic(), time.time_ns())
