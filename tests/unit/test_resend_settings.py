"""The resend safeguards' settings: topology keys, defaults, and one clear error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.fix.config import Role, SessionConfig
from actors.gateway.topology import ConfigError, load_topology

TOPOLOGY = """
sessions:
  client: {{role: handler, sender_comp_id: GW, target_comp_id: T, port: 9876{extra}}}
  venue: {{role: driven, sender_comp_id: GW, target_comp_id: V, port: 9877}}
pairs:
  - {{handler: client, driven: venue}}
"""


def load(tmp_path: Path, extra: str = "") -> SessionConfig:
    path = tmp_path / "topology.yaml"
    path.write_text(TOPOLOGY.format(extra=extra))
    return load_topology(path).session("client").config


def test_defaults_answer_in_parts_of_1000_detect_storms_within_2_s_and_ask_whole_gaps(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert (config.resend_answer_chunk_size, config.resend_storm_interval_s, config.resend_request_chunk_size) \
        == (1000, 2.0, 0)


def test_the_keys_reach_the_session_config(tmp_path: Path) -> None:
    config = load(tmp_path, ", resend_request_chunk_size: 2500, resend_answer_chunk_size: 200, "
                            "resend_storm_interval: 0")
    assert (config.resend_request_chunk_size, config.resend_answer_chunk_size, config.resend_storm_interval_s) \
        == (2500, 200, 0.0)


@pytest.mark.parametrize(("extra", "message"), [
    (", resend_request_chunk_size: -1", "sessions.client.resend_request_chunk_size: is -1; expected 0"),
    (", resend_request_chunk_size: 2.5", "sessions.client.resend_request_chunk_size: is a number 2.5; expected 0"),
    (", resend_answer_chunk_size: 0", "sessions.client.resend_answer_chunk_size: is 0; expected how many"),
    (", resend_storm_interval: -2", "sessions.client.resend_storm_interval: is -2.0; expected seconds >= 0"),
    (", resend_storm_interval: soon", "sessions.client.resend_storm_interval: is text 'soon'; expected seconds"),
    (", resend_chunk_size: 5", "sessions.client.resend_chunk_size: unknown key"),
])
def test_a_wrong_value_names_the_file_and_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra)
    assert str(caught.value).startswith(f"{tmp_path / 'topology.yaml'}: {message}"), str(caught.value)


@pytest.mark.parametrize(("field", "value"), [
    ("resend_request_chunk_size", -1), ("resend_answer_chunk_size", 0), ("resend_storm_interval_s", -0.5)])
def test_the_core_refuses_what_the_topology_would(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        SessionConfig("FIX.4.4", "A", "B", Role.ACCEPTOR, **{field: value})  # type: ignore[arg-type]
