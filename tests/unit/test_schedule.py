"""Schedule windows: daily, overnight, weekly, non-stop, daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from actors.shell.schedule import Schedule, ScheduleError, parse_day, parse_time

NS = 1_000_000_000


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * NS


def london(start: str, end: str, **kw: object) -> Schedule:
    return Schedule(non_stop=False, start_time=parse_time(start), end_time=parse_time(end),
                    time_zone="Europe/London", **kw)  # type: ignore[arg-type]


WEEKDAYS = frozenset(range(5))


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        ("2026-01-14 07:59:59", False),  # Wednesday, winter: London = UTC
        ("2026-01-14 08:00:00", True),
        ("2026-01-14 16:59:59", True),
        ("2026-01-14 17:00:00", False),
        ("2026-01-17 12:00:00", False),  # Saturday
        ("2026-07-15 07:30:00", True),  # summer: 08:30 BST
        ("2026-07-15 15:59:59", True),
        ("2026-07-15 16:00:00", False),  # 17:00 BST
    ],
)
def test_daily_weekday_window_in_london(when: str, open_: bool) -> None:
    assert london("08:00", "17:00", days=WEEKDAYS).is_open(at(when)) is open_


def test_overnight_window_crosses_midnight() -> None:
    s = london("22:00", "06:00", days=frozenset({0}))  # opens Monday night only
    assert s.is_open(at("2026-01-12 23:00:00"))  # Monday
    assert s.is_open(at("2026-01-13 05:59:00"))  # Tuesday morning, same window
    assert not s.is_open(at("2026-01-13 23:00:00"))  # Tuesday night: no window opens


def test_weekly_window_sunday_to_friday() -> None:
    s = Schedule(non_stop=False, start_day=parse_day("sun"), end_day=parse_day("fri"),
                 start_time=time(18), end_time=time(17), time_zone="America/New_York")
    assert s.is_open(at("2026-01-14 12:00:00"))  # Wednesday
    assert not s.is_open(at("2026-01-16 22:30:00"))  # Friday 17:30 New York
    assert not s.is_open(at("2026-01-17 12:00:00"))  # Saturday
    assert s.is_open(at("2026-01-18 23:30:00"))  # Sunday 18:30 New York


def test_next_change_is_the_end_of_the_open_window_or_the_next_start() -> None:
    s = london("08:00", "17:00", days=WEEKDAYS)
    assert s.next_change(at("2026-01-14 12:00:00")) == at("2026-01-14 17:00:00")
    assert s.next_change(at("2026-01-16 18:00:00")) == at("2026-01-19 08:00:00")  # Friday -> Monday
    window = s.window_at(at("2026-01-14 12:00:00"))
    assert window is not None and window.start_ns == at("2026-01-14 08:00:00")


def test_non_stop_is_always_open() -> None:
    s = Schedule()
    assert s.is_open(0) and s.next_change(0) is None and s.describe() == "non-stop"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Schedule(time_zone="Mars/Olympus"), "not an IANA time zone"),
        (lambda: Schedule(start_day=0), "start_day and end_day go together"),
        (lambda: parse_time("25:00"), "not a time of day"),
        (lambda: parse_day("funday"), "not a day"),
    ],
)
def test_bad_settings_say_what_to_write(build: object, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        build()  # type: ignore[operator]


def test_sequence_numbers_reset_at_the_first_logon_of_a_new_window() -> None:
    from actors.shell.seqpolicy import SequencePolicy
    from actors.store import MemoryStore

    s = london("08:00", "17:00", days=WEEKDAYS)
    policy = SequencePolicy(reset_on_new_window=True)
    store = MemoryStore("s", now_ns=at("2026-01-14 09:00:00"))  # sequence created Wednesday morning
    wednesday_noon, thursday_nine = at("2026-01-14 12:00:00"), at("2026-01-15 09:00:00")
    assert not policy.reset_due(store, wednesday_noon, s.window_at(wednesday_noon).start_ns)  # type: ignore[union-attr]
    assert policy.reset_due(store, thursday_nine, s.window_at(thursday_nine).start_ns)  # type: ignore[union-attr]
    assert not SequencePolicy().reset_due(store, thursday_nine, s.window_at(thursday_nine).start_ns)  # type: ignore[union-attr]
