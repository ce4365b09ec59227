"""UTCTimestamp formatting and parsing, with time passed in, never read.

Formatting caches the date-and-seconds text because consecutive messages
almost always share it; that saves most of the cost of SendingTime.
"""

from __future__ import annotations

from dataclasses import dataclass

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Instant:
    """One reading of both clocks: monotonic seconds for timers, UTC ns for the wire."""

    mono_s: float
    utc_ns: int


class TimestampFormatter:
    __slots__ = ("_sec", "_text", "_precision")

    def __init__(self, precision: int) -> None:
        if precision not in (0, 3, 6, 9):
            raise ValueError("timestamp precision must be 0, 3, 6 or 9")
        self._precision = precision
        self._sec = -1
        self._text = b""

    def format(self, utc_ns: int) -> bytes:
        sec, frac = divmod(utc_ns, NS_PER_S)
        if sec != self._sec:
            y, mo, d, h, mi, s = _civil(sec)
            self._text = b"%04d%02d%02d-%02d:%02d:%02d" % (y, mo, d, h, mi, s)
            self._sec = sec
        p = self._precision
        if p == 0:
            return self._text
        return self._text + b".%0*d" % (p, frac // 10 ** (9 - p))


def _civil(sec: int) -> tuple[int, int, int, int, int, int]:
    days, rem = divmod(sec, 86400)
    h, rem = divmod(rem, 3600)
    mi, s = divmod(rem, 60)
    # Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    mo = mp + 3 if mp < 10 else mp - 9
    return (y + (1 if mo <= 2 else 0), mo, d, h, mi, s)


#: The last ``YYYYMMDD-HH:MM:SS`` that ``parse_utc_timestamp`` read, and its value in epoch ns.
_last_second_text: bytes = b""
_last_second_ns: int = 0


def parse_utc_timestamp(value: bytes) -> int | None:
    """UTC epoch ns of ``YYYYMMDD-HH:MM:SS[.fff…]``, or None when malformed.

    Every received message has its SendingTime read, and consecutive messages
    share the part up to the second: that part's value is kept from the last
    call, so the date arithmetic runs once per second of traffic.
    """
    global _last_second_text, _last_second_ns
    if len(value) < 17:
        return None
    second_text = value[:17]
    if second_text == _last_second_text:
        second_ns = _last_second_ns
    else:
        parsed = _parse_second(second_text)
        if parsed is None:
            return None
        _last_second_text, _last_second_ns = second_text, parsed
        second_ns = parsed
    if len(value) == 17:
        return second_ns
    frac = value[18:]
    if value[17:18] != b"." or not frac.isdigit() or len(frac) > 9:
        return None
    scale: int = 10 ** (9 - len(frac))
    return second_ns + int(frac) * scale


def _parse_second(value: bytes) -> int | None:
    """Epoch ns of exactly ``YYYYMMDD-HH:MM:SS``, or None."""
    if value[8:9] != b"-" or value[11:12] != b":" or value[14:15] != b":":
        return None
    date, hh, mm, ss = value[:8], value[9:11], value[12:14], value[15:17]
    if not (date.isdigit() and hh.isdigit() and mm.isdigit() and ss.isdigit()):
        return None
    y, mo, d = int(date[:4]), int(date[4:6]), int(date[6:8])
    h, mi, s = int(hh), int(mm), int(ss)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        return None
    if d > _days_in_month(y, mo):
        return None
    epoch = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
    return epoch * NS_PER_S


def _days_in_month(y: int, mo: int) -> int:
    if mo == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if mo in (4, 6, 9, 11) else 31


def _days_from_civil(y: int, mo: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date."""
    y -= mo <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
