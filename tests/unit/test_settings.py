"""The topology file: what loads, and the one clear error for what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.fix.config import Role
from actors.gateway.topology import ConfigError, load_topology

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
sessions:
  client: {role: handler, sender_comp_id: GW, target_comp_id: T, port: 9876}
  venue: {role: driven, sender_comp_id: GW, target_comp_id: V, port: 9877}
pairs:
  - {handler: client, driven: venue}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return path


def test_the_shipped_demo_topology_loads() -> None:
    topology = load_topology(ROOT / "deploy" / "topology.yaml")
    client, venue = topology.session("client"), topology.session("venue")
    assert client.config.role is Role.ACCEPTOR and venue.config.role is Role.INITIATOR
    assert client.peer == "venue" and venue.peer == "client"
    assert venue.reconnect_max_tries == 3
    assert client.store.directory == (ROOT / "var" / "store").resolve()


def test_defaults_apply_and_sessions_override(tmp_path: Path) -> None:
    text = "defaults: {heartbeat_interval: 5, begin_string: FIX.4.2}\n" + MINIMAL.replace(
        "target_comp_id: V,", "target_comp_id: V, heartbeat_interval: 7,")
    topology = load_topology(write(tmp_path, text))
    assert topology.session("client").config.heartbeat_interval_s == 5
    assert topology.session("venue").config.heartbeat_interval_s == 7
    assert topology.session("venue").config.begin_string == "FIX.4.2"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("port: 9876", "port: 99999"), "sessions.client.port: is 99999; expected a TCP port 1-65535"),
        (("port: 9876", "prot: 9876"), "sessions.client.prot: unknown key; did you mean 'port'?"),
        (("role: handler", "role: hander"), "sessions.client.role: is 'hander'; expected one of handler, driven"),
        (("heartbeat_interval", "x"), None),
        (("sender_comp_id: GW, target_comp_id: T", "target_comp_id: T"),
         "sessions.client.sender_comp_id: missing; your CompID"),
        (("driven: venue}", "driven: nowhere}"), "pairs[0].driven: no session named 'nowhere'"),
        (("handler: client, driven", "handler: venue, driven"), "pairs[0].handler: session 'venue' has role driven"),
        (("port: 9877", "port: 9876"), None),
        (("sessions:", "sesions:"), "sesions: unknown key; did you mean 'sessions'?"),
        (("port: 9876", "port: '9876'"), "sessions.client.port: is text '9876'; expected a TCP port"),
    ],
)
def test_a_bad_file_gets_one_error_naming_file_key_and_fix(
    tmp_path: Path, change: tuple[str, str], message: str | None
) -> None:
    text = MINIMAL.replace(*change)
    path = write(tmp_path, text)
    if message is None:
        load_topology(path)
        return
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    assert str(info.value).startswith(f"{path}: "), info.value
    assert message in str(info.value)


def test_duplicate_session_identity_is_rejected(tmp_path: Path) -> None:
    text = MINIMAL.replace("target_comp_id: V", "target_comp_id: T").replace("role: driven", "role: initiator")
    text = text.replace("pairs:\n  - {handler: client, driven: venue}\n", "")
    with pytest.raises(ConfigError, match="sessions.venue: same BeginString"):
        load_topology(write(tmp_path, text))


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 3, column 1: not valid YAML"):
        load_topology(write(tmp_path, "sessions:\n  client: {role: [\n"))


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the topology file"):
        load_topology(tmp_path / "nope.yaml")


def test_acceptors_share_a_port_only_with_session_qualifiers(tmp_path: Path) -> None:
    two = """
sessions:
  a: {role: acceptor, sender_comp_id: GW, target_comp_id: T, port: 9876, session_qualifier: A}
  b: {role: acceptor, sender_comp_id: GW, target_comp_id: T, port: 9876, session_qualifier: B}
"""
    topology = load_topology(write(tmp_path, two))
    assert topology.shared_ports() == {("127.0.0.1", 9876): ["a", "b"]}
    with pytest.raises(ConfigError, match="share a port only when each has a session_qualifier"):
        load_topology(write(tmp_path, two.replace(", session_qualifier: B", "").replace("target_comp_id: T, port:\
 9876}", "target_comp_id: U, port: 9876}")))


# ------------------------------------------------------------------ the reconnect budget


def test_the_reconnect_budget_is_finite_by_default(tmp_path: Path) -> None:
    """Out of the box a vanished venue is reported to the user: the Driven gives up after a few tries."""
    from actors.gateway.session_actor import host_spec
    from actors.gateway.topology import DEFAULT_RECONNECT_MAX_TRIES

    topology = load_topology(write(tmp_path, MINIMAL))
    venue = topology.session("venue")
    assert venue.reconnect_max_tries == DEFAULT_RECONNECT_MAX_TRIES > 0
    connect = host_spec(topology, venue).connect
    assert connect is not None and connect.max_tries == DEFAULT_RECONNECT_MAX_TRIES
    assert connect.reconnect_after_logout, "a Driven recovers from a venue Logout like from a drop"


def test_unlimited_tries_are_asked_for_by_name(tmp_path: Path) -> None:
    from actors.gateway.session_actor import host_spec

    text = MINIMAL.replace("port: 9877}", "port: 9877, reconnect_max_tries: unlimited}")
    topology = load_topology(write(tmp_path, text))
    assert topology.session("venue").reconnect_max_tries is None
    connect = host_spec(topology, topology.session("venue")).connect
    assert connect is not None and connect.max_tries == 0  # the initiator's own spelling of "for ever"


@pytest.mark.parametrize("value", ["0", "-2", "forever", "2.5", "true"])
def test_a_wrong_reconnect_budget_names_the_file_the_key_and_the_fix(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, MINIMAL.replace("port: 9877}", f"port: 9877, reconnect_max_tries: {value}}}"))
    with pytest.raises(ConfigError) as caught:
        load_topology(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: sessions.venue.reconnect_max_tries: is ")
    assert "expected a number of tries, 1 or more (default 6), or 'unlimited' to retry for ever" in message
    if value == "0":
        assert "no longer means unlimited" in message


# ------------------------------------------------------------------ logon_waits_for_venue


def test_logon_waits_for_venue_is_off_by_default_and_a_handler_may_turn_it_on(tmp_path: Path) -> None:
    assert not load_topology(write(tmp_path, MINIMAL)).session("client").logon_waits_for_venue
    text = MINIMAL.replace("port: 9876}", "port: 9876, logon_waits_for_venue: true}")
    assert load_topology(write(tmp_path, text)).session("client").logon_waits_for_venue


@pytest.mark.parametrize(("change", "problem"), [
    (("port: 9877}", "port: 9877, logon_waits_for_venue: true}"), "only a handler waits for its venue"),
    (("pairs:\n  - {handler: client, driven: venue}\n", ""), "in no pair"),
])
def test_logon_waits_for_venue_elsewhere_names_the_file_and_the_key(
        tmp_path: Path, change: tuple[str, str], problem: str) -> None:
    text = MINIMAL.replace(*change)
    if "in no pair" in problem:
        text = text.replace("port: 9876}", "port: 9876, logon_waits_for_venue: true}")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_topology(path)
    session = "venue" if "handler waits" in problem else "client"
    assert str(caught.value).startswith(f"{path}: sessions.{session}.logon_waits_for_venue: "), caught.value
    assert problem in str(caught.value)


def test_a_waiting_handler_holds_the_logon_only_inside_its_schedule(tmp_path: Path) -> None:
    """The schedule's refusal comes first: a Logon that cannot be accepted is not held for the venue."""
    from actors.fix.hooks import LogonHold
    from actors.fix.message import Message
    from actors.fix.timefmt import Instant
    from actors.gateway.session_actor import ActorHooks

    # Sunday 2026-01-04 12:00 UTC: inside a non-stop window, outside a weekday one.
    sunday = Instant(0.0, 1_767_528_000 * 10**9)
    logon = Message([(35, b"A")])
    waiting = MINIMAL.replace("port: 9876}", "port: 9876, logon_waits_for_venue: true}")
    hooks = ActorHooks(load_topology(write(tmp_path, waiting)).session("client"))
    assert isinstance(hooks.on_logon_request(logon, sunday), LogonHold)
    weekdays = waiting.replace("logon_waits_for_venue: true}", "logon_waits_for_venue: true, schedule: "
                               "{start_time: '08:00', end_time: '17:00', days: [mon, tue], time_zone: UTC}}")
    hooks = ActorHooks(load_topology(write(tmp_path, weekdays)).session("client"))
    refusal = hooks.on_logon_request(logon, sunday)
    assert isinstance(refusal, str) and refusal.startswith("Logon refused: outside the session schedule")
    off = ActorHooks(load_topology(write(tmp_path, MINIMAL)).session("client"))
    assert off.on_logon_request(logon, sunday) is None


@pytest.mark.parametrize(("store", "days"), [("", 0), ("archive_days: 30", 30), ("archive: false", None),
                                             ("archive: true, archive_days: 0", 0),
                                             ("archive: false, archive_days: 3", None)])
def test_a_file_store_archives_ended_sequences_unless_told_not_to(tmp_path: Path, store: str, days: int | None) -> None:
    topology = load_topology(write(tmp_path, f"defaults: {{store: {{{store}}}}}\n" + MINIMAL))
    assert topology.session("client").store.archive_days == days


@pytest.mark.parametrize(("store", "message"), [
    ("archive_days: -1", "sessions.client.store.archive_days: is -1; expected days to keep an ended sequence"),
    ("archive: 'no'", "sessions.client.store.archive: is text 'no'; expected true or false"),
])
def test_a_wrong_archive_setting_names_the_file_the_key_and_the_fix(tmp_path: Path, store: str, message: str) -> None:
    path = write(tmp_path, f"defaults: {{store: {{{store}}}}}\n" + MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value), info.value
