"""Logon credentials on acceptor sessions: the hash, the check, the topology keys and the hash tool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actors.fix.message import Message
from actors.fix.states import SessionState as S
from actors.gateway.credentials import REFUSAL_TEXT, Credentials, CredentialsError, Failure, PasswordHash
from actors.gateway.session_actor import ActorHooks
from actors.gateway.topology import ConfigError, SessionSettings, Topology, load_topology, resolve_credentials
from actors.gateway.vocabulary import LogonRefusedEvent, StatusReply, parse_reply
from tests.pair import FakeClock, SessionPair
from tests.unit.test_session import sent_messages

ROOT = Path(__file__).resolve().parents[2]
#: Cheap parameters for tests that hash many times; the shipped defaults are checked separately.
FAST = {"n": 2**4, "r": 1, "p": 1}
SECRET = b"correct horse"


def topology(tmp_path: Path, client_extra: str, venue_extra: str = "") -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(f"""
sessions:
  client: {{role: handler, sender_comp_id: GW, target_comp_id: T, port: 9876{client_extra}}}
  venue: {{role: driven, sender_comp_id: GW, target_comp_id: V, port: 9877{venue_extra}}}
pairs:
  - {{handler: client, driven: venue}}
""")
    return path


def client(tmp_path: Path, client_extra: str) -> tuple[Topology, SessionSettings]:
    t = load_topology(topology(tmp_path, client_extra))
    return t, t.session("client")


# ------------------------------------------------------------------ the hash


def test_a_hash_verifies_its_password_only_and_survives_its_text() -> None:
    h = PasswordHash.of(SECRET)
    again = PasswordHash.parse(h.text())
    assert again == h and (h.n, h.r, h.p) == (2**14, 8, 1)
    assert again.matches(SECRET)
    assert not again.matches(b"correct horsE") and not again.matches(b"")


def test_every_hash_has_its_own_salt() -> None:
    a, b = PasswordHash.of(SECRET, **FAST), PasswordHash.of(SECRET, **FAST)
    assert a.salt != b.salt and a.key != b.key and a.text() != b.text()


@pytest.mark.parametrize("text", [
    "plain-password", "scrypt$16384$8$1$c2FsdA==", "bcrypt$16384$8$1$AAAAAAAAAAA=$AAAA",
    "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # N not a power of 2
    "scrypt$1048576$64$64$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # gigabytes per Logon
    "scrypt$16384$8$1$not*base64$" + "A" * 44, "scrypt$16384$8$1$AAAA$" + "A" * 44,  # salt too short
])
def test_a_bad_hash_text_is_refused(text: str) -> None:
    with pytest.raises(CredentialsError):
        PasswordHash.parse(text)


@pytest.mark.parametrize(("username", "password", "failure"), [
    (b"trader1", SECRET, None),
    (None, SECRET, Failure.NO_USERNAME),
    (b"trader1", None, Failure.NO_PASSWORD),
    (None, None, Failure.NO_USERNAME),
    (b"trader2", SECRET, Failure.WRONG_USERNAME),
    (b"trader1", b"wrong", Failure.WRONG_PASSWORD),
    (b"trader1", b"", Failure.WRONG_PASSWORD),
    (b"", SECRET, Failure.WRONG_USERNAME),
])
def test_the_check_names_the_first_failed_check(username: bytes | None, password: bytes | None,
                                                failure: Failure | None) -> None:
    credentials = Credentials("trader1", PasswordHash.of(SECRET, **FAST))
    assert credentials.check(username, password) is failure


# ------------------------------------------------------------------ the hook


def logon(username: bytes | None, password: bytes | None) -> Message:
    fields = [(35, b"A"), (98, b"0"), (108, b"30")]
    fields += [(553, username)] if username is not None else []
    fields += [(554, password)] if password is not None else []
    return Message(fields)


def test_the_hook_refuses_every_failure_with_one_text_and_counts_it(tmp_path: Path) -> None:
    _, settings = client(tmp_path, "")
    hooks = ActorHooks(settings, Credentials("trader1", PasswordHash.of(SECRET, **FAST)))
    now = FakeClock()()
    answers = [hooks.on_logon_request(logon(u, p), now)
               for u, p in ((None, None), (b"trader1", None), (b"x", SECRET), (b"trader1", b"guess"))]
    assert answers == [REFUSAL_TEXT] * 4
    seen = [refusal.failure for refusal in hooks.take_refusals()]
    assert seen == [Failure.NO_USERNAME, Failure.NO_PASSWORD, Failure.WRONG_USERNAME, Failure.WRONG_PASSWORD]
    assert hooks.take_refusals() == [], "each refusal is reported once"
    assert hooks.on_logon_request(logon(b"trader1", SECRET), now) is None
    assert hooks.logon_failures == 4


def test_a_session_with_the_wrong_password_gets_the_refusal_in_a_logout_and_stays_down(tmp_path: Path) -> None:
    _, settings = client(tmp_path, "")
    credentials = Credentials("trader1", PasswordHash.of(SECRET, **FAST))
    wrong = SessionPair(username="trader1", password="guess")
    wrong.acceptor.driver.session.hooks = ActorHooks(settings, credentials)
    wrong.connect()
    assert not wrong.both_logged_on and wrong.acceptor.driver.session.state is not S.CONNECTED
    texts = [m.get_str(58) for m in sent_messages(wrong.acceptor) if m.msg_type == "5"]
    assert texts == [REFUSAL_TEXT]
    right = SessionPair(username="trader1", password=SECRET.decode())
    right.acceptor.driver.session.hooks = ActorHooks(settings, credentials)
    right.connect()
    assert right.both_logged_on


def test_the_status_reply_and_the_event_carry_the_failures() -> None:
    reply = StatusReply(S.DISCONNECTED, "client", "handler", 1, False, 0, "i", "r", 0, {}, logon_failures=3)
    back = parse_reply(reply.to_body())
    assert isinstance(back, StatusReply) and back.logon_failures == 3 and "logon_failures" not in back.core
    event = LogonRefusedEvent("wrong_password", 3, 123)
    assert LogonRefusedEvent.from_body(event.to_body()) == event


# ------------------------------------------------------------------ the topology


def test_a_password_hash_loads_as_it_is(tmp_path: Path) -> None:
    text = PasswordHash.of(SECRET, **FAST).text()
    t, settings = client(tmp_path, f", credentials: {{username: trader1, password_hash: '{text}'}}")
    credentials = resolve_credentials(t, settings)
    assert credentials is not None and credentials.username == "trader1"
    assert credentials.check(b"trader1", SECRET) is None
    assert settings.config.password is None and settings.config.username is None


def test_a_password_from_the_environment_is_hashed_at_start_and_not_kept(tmp_path: Path) -> None:
    t, settings = client(tmp_path, ", credentials: {username: trader1, password_env: CLIENT_PW}")
    credentials = resolve_credentials(t, settings, {"CLIENT_PW": SECRET.decode()})
    assert credentials is not None and credentials.check(b"trader1", SECRET) is None
    assert SECRET not in repr(credentials).encode() and SECRET not in repr(settings).encode()


def test_a_password_file_is_read_without_its_newline(tmp_path: Path) -> None:
    (tmp_path / "client.pw").write_bytes(SECRET + b"\n")
    t, settings = client(tmp_path, ", credentials: {username: trader1, password_file: client.pw}")
    credentials = resolve_credentials(t, settings)
    assert credentials is not None and credentials.check(b"trader1", SECRET) is None


def test_a_missing_variable_is_one_error_naming_file_key_and_fix(tmp_path: Path) -> None:
    t, settings = client(tmp_path, ", credentials: {username: trader1, password_env: CLIENT_PW}")
    with pytest.raises(ConfigError) as error:
        resolve_credentials(t, settings, {})
    assert str(error.value).startswith(f"{t.path}: sessions.client.credentials.password_env: ")
    assert "CLIENT_PW is not set" in str(error.value) and "environment=CLIENT_PW=" in str(error.value)


def test_an_unreadable_file_is_one_error_naming_file_key_and_fix(tmp_path: Path) -> None:
    t, settings = client(tmp_path, ", credentials: {username: trader1, password_file: missing.pw}")
    with pytest.raises(ConfigError) as error:
        resolve_credentials(t, settings)
    message = str(error.value)
    assert message.startswith(f"{t.path}: sessions.client.credentials.password_file: cannot read ")
    assert str(tmp_path / "missing.pw") in message and "check the path" in message


@pytest.mark.parametrize(("client_extra", "venue_extra", "message"), [
    (", password: hunter2", "", "sessions.client.password: an acceptor keeps no plain password in the topology; "
                                "use credentials: {username: NAME, password_hash: 'scrypt$...'}"),
    (", username: trader1", "", "sessions.client.username: an acceptor checks the user's Username under credentials"),
    (", credentials: {username: trader1, password: hunter2}", "",
     "sessions.client.credentials.password: a plain password is never kept in the topology"),
    (", credentials: {username: trader1}", "", "sessions.client.credentials.password_hash: missing; give exactly one"),
    (", credentials: {username: trader1, password_env: A, password_file: b}", "",
     "sessions.client.credentials.password_env: given together with password_file"),
    (", credentials: {username: trader1, password_hash: 'scrypt$1$2'}", "",
     "sessions.client.credentials.password_hash: expected 'scrypt$N$r$p$<salt>$<key>'"),
    (", credentials: {password_env: A}", "", "sessions.client.credentials.username: missing"),
    (", credentials: {username: trader1, password_env: A, pasword_file: b}", "",
     "sessions.client.credentials.pasword_file: unknown key"),
    ("", ", credentials: {username: u, password_env: A}",
     "sessions.venue.credentials: only an acceptor (handler) checks credentials"),
])
def test_credential_mistakes_are_refused_with_the_key_and_the_fix(
        tmp_path: Path, client_extra: str, venue_extra: str, message: str) -> None:
    path = topology(tmp_path, client_extra, venue_extra)
    with pytest.raises(ConfigError) as error:
        load_topology(path)
    assert str(error.value).startswith(f"{path}: {message}"), str(error.value)


def test_an_initiator_still_sends_a_username_and_password(tmp_path: Path) -> None:
    t = load_topology(topology(tmp_path, "", ", username: gw, password: venue-pw"))
    assert (t.session("venue").config.username, t.session("venue").config.password) == ("gw", "venue-pw")


# ------------------------------------------------------------------ the tool


def test_the_hash_command_reads_stdin_and_prints_a_line_the_topology_takes(tmp_path: Path) -> None:
    fixmesh = Path(sys.executable).parent / "fixmesh"
    result = subprocess.run([str(fixmesh), "credentials", "hash"], input=SECRET.decode() + "\n",
                            capture_output=True, text=True, timeout=60, check=True)
    line = result.stdout.strip()
    assert line.startswith("scrypt$16384$8$1$") and SECRET.decode() not in result.stdout + result.stderr
    t, settings = client(tmp_path, f", credentials: {{username: trader1, password_hash: '{line}'}}")
    credentials = resolve_credentials(t, settings)
    assert credentials is not None and credentials.check(b"trader1", SECRET) is None


def test_the_hash_command_refuses_an_empty_password() -> None:
    fixmesh = Path(sys.executable).parent / "fixmesh"
    result = subprocess.run([str(fixmesh), "credentials", "hash"], input="\n", capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and result.stdout == "" and "empty password" in result.stderr
