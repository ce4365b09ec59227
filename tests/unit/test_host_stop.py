"""``fixmesh deploy stop``'s plan: which programs stop together, in which order, and how long it waits for them.

The command itself runs against a real supervisord in ``tests/system/test_host_stop.py``; here the grouping of
supervisord's answers (``getAllConfigInfo``, the states), and the command's answer when supervisord is absent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from actors.tools.host_stop import Level, levels, run


def _info(name: str, priority: int, stop_wait_s: int = 10) -> dict[str, object]:
    return {"name": name, "group": name, "process_prio": priority, "stopwaitsecs": stop_wait_s}


def test_running_programs_are_grouped_by_priority_the_highest_first() -> None:
    infos = [_info("broker", 10, 5), _info("client", 20, 10), _info("venue", 20, 15), _info("coordinator", 25),
             _info("monitor", 30)]
    states = {"broker": "RUNNING", "client": "RUNNING", "venue": "STARTING", "coordinator": "RUNNING",
              "monitor": "RUNNING"}
    assert levels(infos, states) == [Level(30, ("monitor",), 10.0), Level(25, ("coordinator",), 10.0),
                                     Level(20, ("client", "venue"), 15.0), Level(10, ("broker",), 5.0)]


def test_programs_already_down_are_left_out_and_an_empty_priority_is_no_level() -> None:
    infos = [_info("broker", 10), _info("client", 20), _info("venue", 20), _info("monitor", 30)]
    states = {"broker": "RUNNING", "client": "STOPPED", "venue": "BACKOFF", "monitor": "FATAL"}
    assert levels(infos, states) == [Level(20, ("venue",), 10.0), Level(10, ("broker",), 10.0)]


def test_without_a_supervisord_nothing_is_stopped_and_the_answer_says_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisorctl]\nserverurl = unix://{tmp_path / 'absent.sock'}\n", encoding="utf-8")
    code = run(argparse.Namespace(conf=str(conf), keep_supervisord=False), out=lambda line: None)
    assert code == 2
    err = capsys.readouterr().err
    assert str(conf) in err and "supervisord does not answer" in err and "nothing was stopped" in err
