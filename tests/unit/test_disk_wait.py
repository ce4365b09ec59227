"""A starting session waits while its store's file system is full or read-only, and only then.

The waits run on a real directory and real stores; the sleep and the clock are
the test's, so that minutes of waiting take none.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from actors.shell.disk_wait import REPEAT_S, RETRY_S, free_bytes, open_when_writable
from actors.store import FileStore, StoreError, StoreLockedError, StoreWriteError, write_error


class Clock:
    """The wait's sleep and monotonic clock; ``fail`` answers the opens until it is empty."""

    def __init__(self, fail: list[BaseException]) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.fail = fail

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def open(self) -> str:
        if self.fail:
            raise self.fail.pop(0)
        return "opened"


def full(message: str = "cannot open") -> StoreError:
    """A StoreError as ``FileStore`` raises it for a full disk: the OSError is its cause."""
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as cause:
        try:
            raise StoreError(message) from cause
        except StoreError as exc:
            return exc


def test_waits_while_the_file_system_is_full_then_opens(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Fourteen failed opens: 70 s of waiting, so the error is logged at the start and once more after a minute.
    clock = Clock([full() for _ in range(14)])
    with caplog.at_level(logging.INFO, logger="fixmesh.store"):
        assert open_when_writable(clock.open, tmp_path, "client", sleep=clock.sleep,
                                  monotonic=lambda: clock.now) == "opened"
    assert clock.sleeps == [RETRY_S] * 14
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 + int(14 * RETRY_S // REPEAT_S)
    assert errors[0] == (f"client: not starting: cannot open (looking again every {RETRY_S:.0f} s; "
                         "nothing is sent meanwhile)")
    assert caplog.records[-1].getMessage() == ("client: the store's file system takes writes again after 70 s "
                                               "of waiting; starting")


def test_a_failed_write_of_a_full_disk_is_waited_for_too(tmp_path: Path) -> None:
    clock = Clock([write_error("write the forwarding journal x", OSError(errno.EROFS, "Read-only file system"))])
    assert open_when_writable(clock.open, tmp_path, "venue", sleep=clock.sleep, monotonic=lambda: clock.now)
    assert clock.sleeps == [RETRY_S]


def test_a_configuration_error_is_not_waited_for(tmp_path: Path) -> None:
    with FileStore(tmp_path, "client", now_ns=1):
        # A second writer: locked, which no waiting for the disk cures.
        def second() -> FileStore:
            return FileStore(tmp_path, "client", now_ns=1)

        slept: list[float] = []
        with pytest.raises(StoreLockedError):
            open_when_writable(second, tmp_path, "client", sleep=slept.append)
        assert slept == []
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(StoreError, match="check that the path is a directory") as failed:
        open_when_writable(lambda: FileStore(not_a_folder, "client", now_ns=1), tmp_path, "client",
                           sleep=slept.append)
    assert not isinstance(failed.value, StoreWriteError) and slept == []


def test_too_little_room_is_waited_for_without_opening(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    opens: list[int] = []
    free = free_bytes(tmp_path)

    class Enough(Exception):
        pass

    def sleep(seconds: float) -> None:
        raise Enough

    with caplog.at_level(logging.ERROR, logger="fixmesh.store"), pytest.raises(Enough):
        open_when_writable(lambda: opens.append(1), tmp_path, "client", min_free=free * 2 + (1 << 30), sleep=sleep)
    assert opens == []
    assert f"the file system of {tmp_path} has " in caplog.text and "free space on it" in caplog.text


def test_free_bytes_of_a_folder_not_made_yet_is_its_parents(tmp_path: Path) -> None:
    stats = os.statvfs(tmp_path)
    later = tmp_path / "store" / "not" / "yet"
    assert abs(free_bytes(later) - stats.f_bavail * stats.f_frsize) < 64 << 20
