"""TLS as bytes in and bytes out (``actors.shell.tls``): two layers talking through memory, no socket.

The certificates are made for each test by the ``openssl`` command line
(``make_pki``, also used by the system tests): a CA, a server certificate for
localhost and 127.0.0.1, a client certificate, and a second CA with a client
certificate of its own that the first CA does not vouch for.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors.shell.tls import TlsLayer, client_context, server_context
from actors.shell.tls_settings import TlsConfigError, TlsError, TlsSettings

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command line is not installed")


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    stranger_cert: Path
    stranger_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    result = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"openssl {' '.join(args)} failed:\n{result.stderr}"


def _key_and_request(directory: Path, name: str, subject: str) -> None:
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=directory)


def _ca(directory: Path, name: str, subject: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", subject,
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)


def _sign(directory: Path, name: str, ca: str, extensions: str, serial: int) -> None:
    (directory / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-set_serial", str(serial), "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
             cwd=directory)


def make_pki(directory: Path) -> Pki:
    """Certificates for TLS tests, made with the openssl command line in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    _ca(directory, "ca", "/CN=fixmesh test CA")
    _ca(directory, "other-ca", "/CN=another CA")
    _key_and_request(directory, "server", "/CN=localhost")
    _sign(directory, "server", "ca", "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
          "subjectAltName=DNS:localhost,IP:127.0.0.1\n", 2)
    _key_and_request(directory, "client", "/CN=TRADER")
    _sign(directory, "client", "ca", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n", 3)
    _key_and_request(directory, "stranger", "/CN=STRANGER")
    _sign(directory, "stranger", "other-ca", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n", 4)
    d = directory
    return Pki(ca=d / "ca.pem", server_cert=d / "server.pem", server_key=d / "server.key",
               client_cert=d / "client.pem", client_key=d / "client.key", other_ca=d / "other-ca.pem",
               stranger_cert=d / "stranger.pem", stranger_key=d / "stranger.key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if OPENSSL is None:
        pytest.skip("the openssl command line is not installed")
    return make_pki(tmp_path_factory.mktemp("pki"))


def exchange(client: TlsLayer, server: TlsLayer, rounds: int = 10) -> tuple[bytes, bytes]:
    """Move ciphertext both ways until neither side has more to say; returns (to client, to server) plaintext."""
    to_client, to_server = b"", b""
    client.start()
    for _ in range(rounds):
        c_out, s_out = client.outgoing(), server.outgoing()
        if not c_out and not s_out:
            break
        if c_out:
            to_server += server.receive(c_out)
        if s_out:
            to_client += client.receive(s_out)
    return to_client, to_server


def pair(pki: Pki, server: TlsSettings, client: TlsSettings, name: str = "localhost") -> tuple[TlsLayer, TlsLayer]:
    return (TlsLayer(client_context(client), server_side=False, server_name=name),
            TlsLayer(server_context(server), server_side=True))


def server_settings(pki: Pki, **kw: object) -> TlsSettings:
    return TlsSettings(cert=pki.server_cert, key=pki.server_key, **kw)  # type: ignore[arg-type]


@needs_openssl
def test_handshake_then_plaintext_both_ways_then_close_notify(pki: Pki) -> None:
    client, server = pair(pki, server_settings(pki), TlsSettings(ca=pki.ca))
    exchange(client, server)
    assert client.secure and server.secure
    assert client.describe().startswith("TLSv1.3")
    client.send(b"8=FIX.4.4\x019=5\x0135=A\x0110=000\x01")
    assert server.receive(client.outgoing()) == b"8=FIX.4.4\x019=5\x0135=A\x0110=000\x01"
    server.send(b"reply")
    assert client.receive(server.outgoing()) == b"reply"
    client.close()
    assert server.receive(client.outgoing()) == b""
    assert server.closed_by_peer


@needs_openssl
def test_an_ip_address_as_server_name_matches_the_ip_subject_alt_name(pki: Pki) -> None:
    client, server = pair(pki, server_settings(pki), TlsSettings(ca=pki.ca), name="127.0.0.1")
    exchange(client, server)
    assert client.secure


@needs_openssl
def test_the_client_refuses_a_certificate_for_another_name(pki: Pki) -> None:
    client, server = pair(pki, server_settings(pki), TlsSettings(ca=pki.ca), name="venue.example")
    with pytest.raises(TlsError, match="TLS handshake failed: certificate verify failed: Hostname mismatch"):
        exchange(client, server)
    assert not client.secure


@needs_openssl
def test_the_client_refuses_a_server_its_ca_does_not_vouch_for(pki: Pki) -> None:
    client, server = pair(pki, server_settings(pki), TlsSettings(ca=pki.other_ca))
    with pytest.raises(TlsError, match="certificate verify failed: unable to get local issuer certificate"):
        exchange(client, server)


@needs_openssl
def test_verify_client_admits_the_right_certificate_only(pki: Pki) -> None:
    mutual = server_settings(pki, ca=pki.ca, verify_client=True)
    client, server = pair(pki, mutual, TlsSettings(ca=pki.ca, cert=pki.client_cert, key=pki.client_key))
    exchange(client, server)
    assert server.secure

    client, server = pair(pki, mutual, TlsSettings(ca=pki.ca))
    with pytest.raises(TlsError, match="peer did not return a certificate"):
        exchange(client, server)

    client, server = pair(pki, mutual, TlsSettings(ca=pki.ca, cert=pki.stranger_cert, key=pki.stranger_key))
    with pytest.raises(TlsError, match="certificate verify failed"):
        exchange(client, server)


@needs_openssl
def test_a_peer_below_the_minimum_version_is_refused(pki: Pki) -> None:
    only_12 = client_context(TlsSettings(ca=pki.ca))
    only_12.maximum_version = ssl.TLSVersion.TLSv1_2
    client = TlsLayer(only_12, server_side=False, server_name="localhost")
    server = TlsLayer(server_context(server_settings(pki, min_version="1.3")), server_side=True)
    with pytest.raises(TlsError, match="unsupported protocol"):
        exchange(client, server)

    # The default minimum, 1.2, is the floor: a context never speaks below it.
    assert server_context(server_settings(pki)).minimum_version is ssl.TLSVersion.TLSv1_2
    assert client_context(TlsSettings(ca=pki.ca, min_version="1.3")).minimum_version is ssl.TLSVersion.TLSv1_3


def test_settings_that_cannot_work_are_refused_with_the_key_named(tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError, match=r"tls.min_version: is '1.1'; expected '1.2' or '1.3'"):
        TlsSettings(min_version="1.1")
    with pytest.raises(TlsConfigError, match="tls.key: missing"):
        TlsSettings(cert=tmp_path / "c.pem")
    with pytest.raises(TlsConfigError, match="tls.ca: missing; verify_client"):
        TlsSettings(cert=tmp_path / "c.pem", key=tmp_path / "k.pem", verify_client=True)
    with pytest.raises(TlsConfigError, match="tls.cert: missing; an acceptor"):
        server_context(TlsSettings())
    with pytest.raises(TlsConfigError, match="tls.verify_client: only an acceptor"):
        client_context(TlsSettings(verify_client=True, ca=tmp_path / "ca.pem"))
    with pytest.raises(TlsConfigError, match="tls.cert: cannot load the certificate"):
        server_context(TlsSettings(cert=tmp_path / "none.pem", key=tmp_path / "none.key"))


@needs_openssl
def test_a_key_that_is_not_the_certificates_is_refused(pki: Pki) -> None:
    with pytest.raises(TlsConfigError, match="tls.cert: cannot load the certificate .* key values mismatch"):
        server_context(TlsSettings(cert=pki.server_cert, key=pki.client_key))
    with pytest.raises(TlsConfigError, match="tls.ca: cannot load the CA bundle"):
        client_context(TlsSettings(ca=pki.server_key))
