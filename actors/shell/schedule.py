"""Session schedules: when a session may be logged on.

QuickFIX's model, which FIX operations engineers know: a daily window
(``start_time``-``end_time`` on the listed ``days``), a weekly window
(``start_day start_time`` to ``end_day end_time``), or non-stop; times are
local to ``time_zone`` (IANA name, daylight saving applied). A window whose
end is not after its start crosses midnight (daily) or the week end (weekly).

Pure: time is passed in as UTC nanoseconds; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

NS_PER_S = 1_000_000_000
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleError(ValueError):
    """A schedule that cannot be built; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Window:
    start_ns: int
    end_ns: int

    def contains(self, utc_ns: int) -> bool:
        return self.start_ns <= utc_ns < self.end_ns


@dataclass(frozen=True, slots=True)
class Schedule:
    non_stop: bool = True
    start_time: time = time(0, 0)
    end_time: time = time(0, 0)
    #: Daily windows open on these days (0 = Monday); ignored for weekly windows.
    days: frozenset[int] = frozenset(range(7))
    #: Weekly window: opens on ``start_day`` at ``start_time``, closes on ``end_day`` at ``end_time``.
    start_day: int | None = None
    end_day: int | None = None
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        # zoneinfo (and the sysconfig it reads its search path from, 0.5 MB) is loaded only for a
        # zone other than the default: every session has a schedule, most are non-stop in UTC.
        if self.time_zone != "UTC":
            _check_time_zone(self.time_zone)
        if (self.start_day is None) != (self.end_day is None):
            raise ScheduleError("start_day and end_day go together (a weekly window); give both or neither")
        if not self.days:
            raise ScheduleError("days is empty; list the days the window opens, e.g. [mon, tue, wed, thu, fri]")

    @property
    def weekly(self) -> bool:
        return self.start_day is not None

    def describe(self) -> str:
        if self.non_stop:
            return "non-stop"
        hours = f"{_hhmm(self.start_time)}-{_hhmm(self.end_time)} {self.time_zone}"
        if self.weekly:
            assert self.start_day is not None and self.end_day is not None
            return f"{DAYS[self.start_day]} {_hhmm(self.start_time)} to {DAYS[self.end_day]} " \
                   f"{_hhmm(self.end_time)} {self.time_zone}"
        day_names = ",".join(DAYS[d] for d in sorted(self.days))
        return f"{day_names} {hours}"

    # ------------------------------------------------------------------ queries

    def window_at(self, utc_ns: int) -> Window | None:
        """The window that contains this instant, or None when the session is closed."""
        if self.non_stop:
            return Window(-(2**62), 2**62)
        for window in self._windows_around(utc_ns):
            if window.contains(utc_ns):
                return window
        return None

    def is_open(self, utc_ns: int) -> bool:
        return self.window_at(utc_ns) is not None

    def next_change(self, utc_ns: int) -> int | None:
        """When the open/closed state next changes (None for non-stop)."""
        if self.non_stop:
            return None
        current = self.window_at(utc_ns)
        if current is not None:
            return current.end_ns
        starts = [w.start_ns for w in self._windows_around(utc_ns) if w.start_ns > utc_ns]
        return min(starts) if starts else None

    # ---------------------------------------------------------------- internals

    def _windows_around(self, utc_ns: int) -> list[Window]:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(self.time_zone)
        today = datetime.fromtimestamp(utc_ns / NS_PER_S, tz=UTC).astimezone(zone).date()
        windows = []
        for offset in range(-8, 9):
            day = today + timedelta(days=offset)
            window = self._window_opening_on(day, zone)
            if window is not None:
                windows.append(window)
        return windows

    def _window_opening_on(self, day: date, zone: ZoneInfo) -> Window | None:
        if self.weekly:
            assert self.start_day is not None and self.end_day is not None
            if day.weekday() != self.start_day:
                return None
            span_days = (self.end_day - self.start_day) % 7
            if span_days == 0 and self.end_time <= self.start_time:
                span_days = 7
        else:
            if day.weekday() not in self.days:
                return None
            span_days = 0 if self.end_time > self.start_time else 1
        start = _utc_ns(datetime.combine(day, self.start_time, zone))
        end = _utc_ns(datetime.combine(day + timedelta(days=span_days), self.end_time, zone))
        return Window(start, end)


def _check_time_zone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"time_zone {name!r} is not an IANA time zone (e.g. Europe/London)") from None


def _hhmm(t: time) -> str:
    return f"{t:%H:%M:%S}" if t.second else f"{t:%H:%M}"


def _utc_ns(local: datetime) -> int:
    return int(local.timestamp()) * NS_PER_S + local.microsecond * 1000


def parse_time(text: str) -> time:
    """``HH:MM`` or ``HH:MM:SS``."""
    try:
        parts = [int(p) for p in text.split(":")]
        if len(parts) not in (2, 3):
            raise ValueError
        return time(parts[0], parts[1], parts[2] if len(parts) == 3 else 0)
    except (ValueError, TypeError):
        raise ScheduleError(f"{text!r} is not a time of day; write HH:MM or HH:MM:SS") from None


def parse_day(text: str) -> int:
    key = text.strip().lower()[:3]
    if key not in DAYS:
        raise ScheduleError(f"{text!r} is not a day; write mon, tue, wed, thu, fri, sat or sun")
    return DAYS.index(key)
