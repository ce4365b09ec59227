"""The options of a topology's programs: read as argparse read them, without argparse.

A program started with options it cannot use prints its usage and one error
line and exits 2, which supervisord shows as a failed start; ``--help``
prints every option and exits 0. The subprocess tests run the real session
actor, as supervisord does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actors.gateway.program import Options, topology_parser
from tests.unit.test_lean_imports import loaded_by


def run_actor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "actors.gateway.session_actor", *args],
                          capture_output=True, text=True, timeout=60)


def coordinator_like() -> Options:
    parser = topology_parser("fixmesh coordinator", "The coordinator.\n\nMore.")
    parser.add_argument("--driven-grace-s", type=float, default=10.0, help="seconds")
    parser.add_argument("--name", default="coordinator", help="its name")
    return parser


@pytest.mark.parametrize(("args", "error"), [
    ((), "the following arguments are required: --config, --session"),
    (("--config", "t.yaml"), "the following arguments are required: --session"),
    (("--config",), "argument --config: expected one value"),
    (("--config", "--session", "client"), "argument --config: expected one value"),
    (("--config", "t.yaml", "--session", "client", "--bogus", "1"), "unrecognized option: '--bogus'"),
    (("--config=t.yaml", "--session=client", "extra"), "unrecognized argument: 'extra'"),
    (("--conf", "t.yaml", "--session", "client"), "unrecognized option: '--conf'"),
])
def test_a_session_actor_with_options_it_cannot_use_exits_2_with_the_usage_and_one_error(
        args: tuple[str, ...], error: str) -> None:
    done = run_actor(*args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    usage, line = done.stderr.splitlines()
    assert usage == "usage: fixmesh session [-h] --config CONFIG [--log-level LOG_LEVEL] --session SESSION"
    assert line == f"fixmesh session: error: {error}"


def test_a_session_actor_prints_its_help_and_exits_0() -> None:
    for flag in ("-h", "--help"):
        done = run_actor("--config", "t.yaml", flag)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: fixmesh session [-h] --config CONFIG")
        for option in ("-h, --help", "--config CONFIG", "--log-level LOG_LEVEL", "--session SESSION"):
            assert option in done.stdout
        assert "the name of this session in the topology (required)" in done.stdout


def test_a_session_actor_with_a_missing_topology_names_the_file() -> None:
    done = run_actor("--config=/nonexistent/topology.yaml", "--session", "client")
    assert done.returncode == 2
    assert done.stderr.startswith("fixmesh session: /nonexistent/topology.yaml: ")


def test_values_defaults_types_and_the_last_of_two() -> None:
    args = coordinator_like().parse_args(["--config", "t.yaml", "--driven-grace-s=2.5", "--config", "u.yaml"])
    assert (args.config, args.log_level, args.driven_grace_s, args.name) == ("u.yaml", "INFO", 2.5, "coordinator")
    args = coordinator_like().parse_args(["--config=t.yaml", "--driven-grace-s", "-1", "--name", "coordinator-b"])
    assert (args.driven_grace_s, args.name) == (-1.0, "coordinator-b")  # a negative number is a value
    assert coordinator_like().parse_args(["--config", "", "--name="]).name == ""


def test_a_value_its_type_refuses_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        coordinator_like().parse_args(["--config", "t.yaml", "--driven-grace-s", "soon"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "fixmesh coordinator: error: argument --driven-grace-s: invalid float value: 'soon'"
    assert len(err) == 2 and err[0].startswith("usage: fixmesh coordinator [-h]")


def test_the_help_shows_each_options_default_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        coordinator_like().parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "The coordinator." in out and "More." not in out
    assert "seconds (default 10.0)" in out and "(default INFO)" in out


def test_an_idle_actors_option_reading_imports_neither_argparse_nor_shutil() -> None:
    code = ("from actors.gateway.program import topology_parser\n"
            "p = topology_parser('x', None)\np.add_argument('--session', required=True)\n"
            "p.parse_args(['--config', 'c', '--session', 's'])")
    assert loaded_by(code, ("argparse", "shutil", "gettext", "locale")) == []


def test_a_session_actor_whose_store_path_is_not_a_folder_exits_2_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("x")
    topology = tmp_path / "topology.yaml"
    topology.write_text(f"""\
broker: {{router: 'tcp://127.0.0.1:1', xsub: 'tcp://127.0.0.1:2', xpub: 'tcp://127.0.0.1:3'}}
defaults:
  store: {{path: {tmp_path / 'not-a-folder' / 'store'}}}
sessions:
  client: {{role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER, port: 4}}
  venue: {{role: driven, sender_comp_id: GATEWAY, target_comp_id: VENUE, port: 5}}
pairs:
  - {{handler: client, driven: venue}}
""")
    done = run_actor("--config", str(topology), "--session", "client")
    assert done.returncode == 2, done.stderr
    error = done.stderr.splitlines()[-1]
    assert error.startswith(f"fixmesh session: {topology}: sessions.client.store: cannot open the store of 'client' "
                            f"at {tmp_path / 'not-a-folder' / 'store'}/"), error
    assert "Not a directory" in error and error.endswith("check that the path is a directory of regular files "
                                                         "this user may read and write"), error
    assert "Traceback" not in done.stderr
