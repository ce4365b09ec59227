"""``bench.report.cpu_idle`` says how idle cores wait, from a system tree laid out like ``/sys``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report import cpu_idle


def sys_tree(root: Path, driver: str | None, halt_poll_ns: str | None) -> Path:
    if driver is not None:
        (root / "devices/system/cpu/cpuidle").mkdir(parents=True)
        (root / "devices/system/cpu/cpuidle/current_driver").write_text(driver + "\n")
    if halt_poll_ns is not None:
        (root / "module/haltpoll/parameters").mkdir(parents=True)
        (root / "module/haltpoll/parameters/guest_halt_poll_ns").write_text(halt_poll_ns + "\n")
    return root


@pytest.mark.parametrize(("driver", "halt_poll_ns", "said"), [
    ("haltpoll", "0", "haltpoll, no halt polling"),
    ("haltpoll", "200000", "haltpoll, halt polling 200 us"),
    ("intel_idle", None, "intel_idle"),
    ("haltpoll", "not a number", "haltpoll"),
    (None, None, "unknown"),
])
def test_the_idle_driver_and_its_halt_polling(tmp_path: Path, driver: str | None, halt_poll_ns: str | None,
                                              said: str) -> None:
    assert cpu_idle(sys_tree(tmp_path, driver, halt_poll_ns)) == said
