"""The topology's allow_from and lockout keys (acceptor sessions only)."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import pytest

from actors.gateway.topology import ConfigError, load_topology
from tests.unit.test_settings import MINIMAL, write


def test_acceptors_lock_out_by_default_and_allow_every_address(tmp_path: Path) -> None:
    topology = load_topology(write(tmp_path, MINIMAL))
    rules = topology.session("client").admission
    assert rules is not None and rules.allow == () and rules.max_failures == 5
    assert topology.session("venue").admission is None


def test_allow_from_and_lockout_are_read(tmp_path: Path) -> None:
    text = MINIMAL.replace("port: 9876}", "port: 9876, allow_from: [198.18.0.0/15, 127.0.0.1],"
                                           " lockout: {max_failures: 3, window: 30, duration: 600}}")
    rules = load_topology(write(tmp_path, text)).session("client").admission
    assert rules is not None
    assert rules.allow == (ip_network("198.18.0.0/15"), ip_network("127.0.0.1/32"))
    assert (rules.max_failures, rules.window_s, rules.lockout_s) == (3, 30.0, 600.0)


def test_allow_from_under_defaults_applies_to_acceptors_only(tmp_path: Path) -> None:
    topology = load_topology(write(tmp_path, "defaults: {allow_from: [127.0.0.1]}\n" + MINIMAL))
    client = topology.session("client").admission
    assert client is not None and client.allow == (ip_network("127.0.0.1/32"),)
    assert topology.session("venue").admission is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("port: 9876}", "port: 9876, allow_from: [198.18.0.0/33]}"),
         "sessions.client.allow_from: '198.18.0.0/33' is not a network"),
        (("port: 9876}", "port: 9876, allow_from: 127.0.0.1}"), "sessions.client.allow_from: is text"),
        (("port: 9876}", "port: 9876, lockout: {max_failures: 0}}"),
         "sessions.client.lockout.max_failures: is 0; expected 1 or more"),
        (("port: 9876}", "port: 9876, lockout: {duraton: 5}}"), "sessions.client.lockout.duraton: unknown key"),
        (("port: 9877}", "port: 9877, allow_from: [127.0.0.1]}"),
         "sessions.venue.allow_from: only an acceptor (handler) admits connections"),
    ],
)
def test_a_bad_admission_setting_names_the_file_the_key_and_the_fix(
        tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = write(tmp_path, MINIMAL.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value), info.value
