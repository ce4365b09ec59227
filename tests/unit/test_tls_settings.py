"""The topology's ``tls:`` and ``max_pending_connections`` keys: what loads, and one clear error for what does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actors.gateway.session_actor import host_spec
from actors.gateway.topology import ConfigError, load_topology
from actors.shell.acceptor import DEFAULT_MAX_PENDING_CONNECTIONS
from actors.shell.tls_settings import TlsSettings

TOPOLOGY = """
sessions:
  client: {{role: handler, sender_comp_id: GW, target_comp_id: T, port: 9876{client}}}
  venue: {{role: driven, sender_comp_id: GW, target_comp_id: V, port: 9877{venue}}}
pairs:
  - {{handler: client, driven: venue}}
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """Empty stand-ins for the PEM files: the topology checks that they exist; the session reads them."""
    (tmp_path / "certs").mkdir()
    for name in ("server.pem", "server.key", "ca.pem", "client.pem", "client.key"):
        (tmp_path / "certs" / name).write_text("")
    return tmp_path


def load(directory: Path, client: str = "", venue: str = "") -> object:
    path = directory / "topology.yaml"
    path.write_text(TOPOLOGY.format(client=client, venue=venue))
    return load_topology(path)


def test_plain_tcp_is_the_default_and_limits_have_defaults(files: Path) -> None:
    topology = load(files)
    client = topology.session("client")  # type: ignore[attr-defined]
    assert client.tls is None and topology.session("venue").tls is None  # type: ignore[attr-defined]
    assert client.max_pending_connections == DEFAULT_MAX_PENDING_CONNECTIONS == 256
    assert client.config.logon_timeout_s == 10.0


def test_tls_on_both_legs_with_paths_relative_to_the_topology(files: Path) -> None:
    topology = load(
        files,
        client=", max_pending_connections: 50, logon_timeout: 3, tls: {cert: certs/server.pem, key: certs/server.key, "
               "ca: certs/ca.pem, verify_client: true, min_version: 1.3}",
        venue=", tls: {ca: certs/ca.pem, server_name: venue.example, cert: certs/client.pem, key: certs/client.key}")
    client, venue = topology.session("client"), topology.session("venue")  # type: ignore[attr-defined]
    certs = (files / "certs").resolve()
    assert client.tls == TlsSettings(cert=certs / "server.pem", key=certs / "server.key", ca=certs / "ca.pem",
                                     verify_client=True, min_version="1.3")
    assert venue.tls == TlsSettings(cert=certs / "client.pem", key=certs / "client.key", ca=certs / "ca.pem",
                                    server_name="venue.example")
    assert client.max_pending_connections == 50
    listen = host_spec(topology, client).listen  # type: ignore[arg-type]
    assert listen is not None and listen.tls == client.tls and listen.max_pending_connections == 50
    connect = host_spec(topology, venue).connect  # type: ignore[arg-type]
    assert connect is not None and connect.tls == venue.tls


def test_an_initiator_may_use_tls_with_nothing_but_the_system_cas(files: Path) -> None:
    venue = load(files, venue=", tls: {}").session("venue")  # type: ignore[attr-defined]
    assert venue.tls == TlsSettings()


@pytest.mark.parametrize(
    ("client", "venue", "message"),
    [
        (", tls: {cert: certs/server.pem}", "",
         "sessions.client.tls.key: missing; an acceptor with tls presents its certificate"),
        (", tls: {key: certs/server.key}", "", "sessions.client.tls.cert: missing"),
        (", tls: {cert: certs/nothere.pem, key: certs/server.key}", "",
         "sessions.client.tls.cert: file .*nothere.pem does not exist; give the path of the PEM certificate"),
        (", tls: {cert: certs/server.pem, key: certs/server.key, min_version: 1.1}", "",
         r"sessions.client.tls.min_version: is 1.1; expected '1.2' or '1.3' \(TLS 1.0 and 1.1 are refused"),
        (", tls: {cert: certs/server.pem, key: certs/server.key, min_version: '1.0'}", "",
         "sessions.client.tls.min_version: is '1.0'"),
        (", tls: {cert: certs/server.pem, key: certs/server.key, verify_client: true}", "",
         "sessions.client.tls.ca: missing; verify_client needs ca: PATH"),
        (", tls: {cert: certs/server.pem, key: certs/server.key, ca: certs/ca.pem}", "",
         "sessions.client.tls.ca: is used only with verify_client: true"),
        (", tls: {cert: certs/server.pem, key: certs/server.key, crl: certs/ca.pem}", "",
         "sessions.client.tls.crl: is used only with verify_client: true"),
        (", tls: {cert: certs/server.pem, key: certs/server.key, ca: certs/ca.pem, verify_client: true, "
         "crl: certs/gone.pem}", "", "sessions.client.tls.crl: file .*gone.pem does not exist"),
        (", tls: {cert: certs/server.pem, key: certs/server.key, server_name: x}", "",
         "sessions.client.tls.server_name: only an initiator checks the server's name"),
        (", tls: {cert: certs/server.pem, key: certs/server.key, verfy_client: true}", "",
         "sessions.client.tls.verfy_client: unknown key; did you mean 'verify_client'"),
        ("", ", tls: {verify_client: true, ca: certs/ca.pem}",
         "sessions.venue.tls.verify_client: only an acceptor verifies client certificates"),
        ("", ", tls: {cert: certs/client.pem}",
         "sessions.venue.tls.key: missing; an initiator's client certificate needs both"),
        (", max_pending_connections: 0", "", "sessions.client.max_pending_connections: is 0; expected 1 or more"),
        ("", ", max_pending_connections: 10",
         "sessions.venue.max_pending_connections: only an acceptor \\(handler\\) listens"),
    ],
)
def test_tls_mistakes_name_the_file_the_key_and_the_fix(files: Path, client: str, venue: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load(files, client, venue)
    assert str(caught.value).startswith(str(files / "topology.yaml"))


def test_tls_on_a_shared_port_is_refused(files: Path) -> None:
    text = """
sessions:
  a: {role: acceptor, sender_comp_id: GW, target_comp_id: T, session_qualifier: A, port: 9876,
      tls: {cert: certs/server.pem, key: certs/server.key}}
  b: {role: acceptor, sender_comp_id: GW, target_comp_id: T, session_qualifier: B, port: 9876}
"""
    path = files / "topology.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="sessions.a.tls: 127.0.0.1:9876 is shared by a, b, and the listener of a "
                                          "shared port hands over plain TCP connections only"):
        load_topology(path)


def test_a_certificate_that_cannot_be_loaded_stops_the_session_with_the_key_named(files: Path) -> None:
    path = files / "topology.yaml"
    path.write_text(TOPOLOGY.format(client=", tls: {cert: certs/server.pem, key: certs/server.key}", venue="")
                    + f"defaults: {{store: {{path: {files / 'store'}}}}}\n")
    fixmesh = Path(sys.executable).parent / "fixmesh"
    result = subprocess.run([str(fixmesh), "session", "--config", str(path), "--session", "client"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"{path}: sessions.client.tls.cert: cannot load the certificate" in result.stderr
