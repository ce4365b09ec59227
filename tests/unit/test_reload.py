"""What ``fixmesh deploy reload`` decides before it talks to supervisord.

Each program's section of a rendering carries a digest of what it reads from
the topology (``actors/tools/settings_digest.py``): the tests edit a topology
the ways an operator does and check which programs' sections change, so
which programs a reload restarts. The digests are the same in every process
and wherever the topology lives; the render options are read back from the
rendering's own header.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actors.gateway.topology import load_topology
from actors.tools.deploy import DEFAULT_ROOT, RenderOptions, render
from actors.tools.reload import ReloadError, coordinators_on, plan, program_sections, rendered_as
from actors.tools.settings_digest import DIGEST_ENV, canonical, program_digest

BASE = """\
broker: {router: 'tcp://127.0.0.1:6570', xsub: 'tcp://127.0.0.1:6571', xpub: 'tcp://127.0.0.1:6572'}
defaults:
  heartbeat_interval: 30
  store: {path: store}
sessions:
  client: {role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER, port: 7001}
  venue: {role: driven, sender_comp_id: GATEWAY, target_comp_id: VENUE, port: 7002}
pairs:
  - {handler: client, driven: venue}
programs:
  monitor: {}
  metrics: {}
"""

SECOND_PAIR = """\
  client2: {role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER2, port: 7003}
  venue2: {role: driven, sender_comp_id: GATEWAY, target_comp_id: VENUE2, port: 7004}
"""


def rendering(tmp_path: Path, text: str, name: str = "topology.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return render(load_topology(path), "local", RenderOptions(config=str(path), root=str(tmp_path)))


def with_second_pair(text: str) -> str:
    text = text.replace("pairs:\n", SECOND_PAIR + "pairs:\n")
    return text.replace("  - {handler: client, driven: venue}\n",
                        "  - {handler: client, driven: venue}\n  - {handler: client2, driven: venue2}\n")


def test_every_program_section_carries_its_digest(tmp_path: Path) -> None:
    sections = program_sections(rendering(tmp_path, BASE))
    assert set(sections) == {"broker", "client", "venue", "coordinator", "monitor", "metrics"}
    for name, section in sections.items():
        assert section["environment"].startswith(f'{DIGEST_ENV}="'), name


def test_a_pair_added_starts_its_two_sessions_and_restarts_nothing_that_trades(tmp_path: Path) -> None:
    before = rendering(tmp_path, BASE)
    after = rendering(tmp_path, with_second_pair(BASE))
    p = plan(before, after)
    assert sorted(p.added) == ["client2", "venue2"]
    # metrics reads every session (the status page lists them): it restarts; it trades nothing.
    assert p.changed == ["metrics"] and p.removed == []
    assert sorted(p.unchanged) == ["broker", "client", "coordinator", "monitor", "venue"]
    back = plan(after, before)
    assert sorted(back.removed) == ["client2", "venue2"] and back.added == []


def test_a_sessions_own_setting_restarts_that_session_alone(tmp_path: Path) -> None:
    before = rendering(tmp_path, with_second_pair(BASE))
    edited = with_second_pair(BASE).replace("target_comp_id: TRADER2, port: 7003}",
                                            "target_comp_id: TRADER2, port: 7003, heartbeat_interval: 20}")
    p = plan(before, rendering(tmp_path, edited))
    assert p.changed == ["client2", "metrics"] and not p.added and not p.removed


def test_a_default_changes_every_session_and_a_new_pairing_changes_both_halves(tmp_path: Path) -> None:
    base = with_second_pair(BASE)
    p = plan(rendering(tmp_path, base), rendering(tmp_path, base.replace("heartbeat_interval: 30",
                                                                          "heartbeat_interval: 25")))
    assert sorted(p.changed) == ["client", "client2", "metrics", "venue", "venue2"]
    # Re-pairing: client with venue2 and client2 with venue: each session's peer is one of its settings.
    swapped = base.replace("{handler: client, driven: venue}", "{handler: client, driven: VENUE_B}") \
        .replace("{handler: client2, driven: venue2}", "{handler: client2, driven: venue}") \
        .replace("VENUE_B", "venue2")
    p = plan(rendering(tmp_path, base), rendering(tmp_path, swapped))
    assert sorted(p.changed) == ["client", "client2", "metrics", "venue", "venue2"]
    assert "coordinator" in p.unchanged  # it re-reads the pairs on SIGHUP instead


def test_the_broker_endpoints_change_every_bus_client(tmp_path: Path) -> None:
    p = plan(rendering(tmp_path, BASE), rendering(tmp_path, BASE.replace("6570", "6580")))
    assert sorted(p.changed) == ["broker", "client", "coordinator", "metrics", "monitor", "venue"]


def test_the_same_topology_elsewhere_has_the_same_digests(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    here = load_topology(_write(tmp_path / "a" / "t.yaml", BASE))
    there = load_topology(_write(tmp_path / "b" / "deeper" / "t.yaml", BASE))
    for name in ("client", "venue", "broker", "coordinator", "metrics"):
        assert program_digest(here, name) == program_digest(there, name), name


def test_digests_do_not_depend_on_the_process(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.yaml", with_second_pair(BASE))
    code = ("import sys; from actors.gateway.topology import load_topology; "
            "from actors.tools.settings_digest import program_digest, whole; t = load_topology(sys.argv[1]); "
            "print(whole(t), *(program_digest(t, n) for n in sorted(t.sessions)))")
    outputs = {subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                              timeout=60, env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin",
                                               "PYTHONPATH": str(Path(__file__).resolve().parents[2])}).stdout
               for seed in ("1", "2", "3")}
    assert len(outputs) == 1, outputs


def test_an_object_without_a_stable_text_has_no_canonical_form() -> None:
    with pytest.raises(TypeError):
        canonical(object())
    assert canonical({"b": frozenset({3, 1, 2}), "a": (Path("/x"), b"\x01")}) == {"b": [1, 2, 3],
                                                                                  "a": ["/x", "01"]}


def test_the_render_options_are_read_back_from_the_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.yaml", BASE)
    text = render(load_topology(path), "local", RenderOptions(config="t.yaml", root="/srv/fm", fixmesh="/opt/fm",
                                                             user="fix"))
    how = rendered_as(text)
    assert how.host == "local"
    assert how.options == RenderOptions(config="t.yaml", root="/srv/fm", fixmesh="/opt/fm", user="fix")
    assert rendered_as(text, root="/else").options.root == "/else"
    plain = render(load_topology(path), "local", RenderOptions(config="t.yaml"))
    assert rendered_as(plain).options == RenderOptions(config="t.yaml", root=DEFAULT_ROOT)
    with pytest.raises(ReloadError, match="not rendered by fixmesh deploy"):
        rendered_as("[supervisord]\n")


def test_the_coordinators_of_a_host_are_found_by_their_command(tmp_path: Path) -> None:
    text = BASE + "  coordinator-b: {command: 'coordinator --config t.yaml --name coordinator-b'}\n"
    topology = load_topology(_write(tmp_path / "t.yaml", text))
    assert sorted(coordinators_on(topology, "local")) == ["coordinator", "coordinator-b"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
