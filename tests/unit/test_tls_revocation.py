"""Revocation lists (``tls.crl``): real certificates and lists made by ``openssl ca``, real handshakes.

A list of the CA names the certificates it revoked; a session with ``crl``
refuses a peer whose certificate is on it, an acceptor reads a changed file
again without a restart (``CrlWatch``), and the list's own end (nextUpdate)
is read as ``openssl crl -nextupdate`` says it.
"""

from __future__ import annotations

import calendar
import logging
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from actors.fix.timefmt import NS_PER_S, Instant
from actors.shell.certificates import CRL_PERIOD_S, ExpiryWatch, read_certificates, session_certificates
from actors.shell.tls import CRL_CHECK_S, CrlWatch, TlsLayer, client_context, server_context
from actors.shell.tls_settings import TlsConfigError, TlsError, TlsSettings
from tests.unit.test_tls import OPENSSL, Pki, _key_and_request, _openssl, _sign, exchange, make_pki, needs_openssl

pytestmark = [needs_openssl]

CA_CONFIG = """\
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = {days}
certificate = {ca}.pem
private_key = {ca}.key
"""


def make_crl(directory: Path, revoked: Sequence[Path], *, out: Path, days: int = 2) -> Path:
    """A revocation list of the CA ``ca`` in ``directory`` naming exactly ``revoked``, written over ``out``."""
    db = directory / "crl-db"
    shutil.rmtree(db, ignore_errors=True)
    db.mkdir()
    (db / "index.txt").write_text("")
    (db / "crlnumber").write_text("1000\n")
    (db / "ca.cnf").write_text(CA_CONFIG.format(days=days, ca=directory / "ca"))
    for certificate in revoked:
        _openssl("ca", "-config", "ca.cnf", "-revoke", str(certificate), cwd=db)
    _openssl("ca", "-config", "ca.cnf", "-gencrl", "-out", "new.pem", cwd=db)
    os.replace(db / "new.pem", out)
    return out


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    made = make_pki(tmp_path)
    _key_and_request(tmp_path, "client2", "/CN=TRADER2")
    _sign(tmp_path, "client2", "ca", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n", 5)
    return made


def client(pki: Pki, name: str) -> TlsSettings:
    return TlsSettings(ca=pki.ca, cert=pki.ca.parent / f"{name}.pem", key=pki.ca.parent / f"{name}.key")


def mutual(pki: Pki, crl: Path) -> TlsSettings:
    return TlsSettings(cert=pki.server_cert, key=pki.server_key, ca=pki.ca, verify_client=True, crl=crl)


def handshake(server: ssl.SSLContext, settings: TlsSettings) -> None:
    exchange(TlsLayer(client_context(settings), server_side=False, server_name="localhost"),
             TlsLayer(server, server_side=True))


def test_a_revoked_client_certificate_is_refused_and_the_others_admitted(pki: Pki, tmp_path: Path) -> None:
    crl = make_crl(tmp_path, [tmp_path / "client2.pem"], out=tmp_path / "crl.pem")
    server = server_context(mutual(pki, crl))
    handshake(server, client(pki, "client"))
    with pytest.raises(TlsError, match="certificate verify failed: certificate revoked"):
        handshake(server, client(pki, "client2"))


def test_an_initiator_with_a_list_refuses_a_revoked_server_certificate(pki: Pki, tmp_path: Path) -> None:
    crl = make_crl(tmp_path, [pki.server_cert], out=tmp_path / "crl.pem")
    server = server_context(TlsSettings(cert=pki.server_cert, key=pki.server_key))
    handshake(server, TlsSettings(ca=pki.ca))  # without the list: admitted
    with pytest.raises(TlsError, match="certificate verify failed: certificate revoked"):
        handshake(server, TlsSettings(ca=pki.ca, crl=crl))


def test_an_acceptor_reads_a_changed_list_again_and_keeps_the_old_one_for_a_broken_file(
        pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    crl = make_crl(tmp_path, [], out=tmp_path / "crl.pem")
    settings = mutual(pki, crl)
    contexts = [server_context(settings)]
    clock = [100.0]
    watch = CrlWatch("client", settings, contexts.append, now_s=lambda: clock[0])
    assert watch.next_deadline() == 100.0 + CRL_CHECK_S
    handshake(contexts[-1], client(pki, "client"))

    clock[0] += CRL_CHECK_S
    watch.on_timer()
    assert len(contexts) == 1, "the file did not change: nothing read"

    time.sleep(0.01)  # a new modification time
    make_crl(tmp_path, [tmp_path / "client.pem"], out=crl)
    clock[0] += CRL_CHECK_S
    with caplog.at_level(logging.INFO, logger="fixmesh.tls"):
        watch.on_timer()
    assert len(contexts) == 2 and "tls.crl" in caplog.text and "changed" in caplog.text
    with pytest.raises(TlsError, match="certificate revoked"):
        handshake(contexts[-1], client(pki, "client"))
    handshake(contexts[-1], client(pki, "client2"))

    crl.write_text("-----BEGIN X509 CRL-----\nnot a list\n")  # a half-written file, say
    clock[0] += CRL_CHECK_S
    with caplog.at_level(logging.ERROR, logger="fixmesh.tls"):
        watch.on_timer()
    assert len(contexts) == 2 and "the list read before stays in use" in caplog.text


def test_a_list_needs_verify_client_on_an_acceptor_and_a_readable_file(pki: Pki, tmp_path: Path) -> None:
    crl = make_crl(tmp_path, [], out=tmp_path / "crl.pem")
    with pytest.raises(TlsConfigError, match="tls.crl: is used only with verify_client"):
        server_context(TlsSettings(cert=pki.server_cert, key=pki.server_key, crl=crl))
    with pytest.raises(TlsConfigError, match="tls.crl: cannot load the revocation list"):
        server_context(mutual(pki, pki.server_key))


def test_the_end_of_a_list_is_its_next_update_as_openssl_says_it(pki: Pki, tmp_path: Path) -> None:
    crl = make_crl(tmp_path, [tmp_path / "client2.pem"], out=tmp_path / "crl.pem", days=3)
    assert OPENSSL is not None
    said = subprocess.run([OPENSSL, "crl", "-noout", "-nextupdate", "-in", str(crl)], capture_output=True,
                          text=True, timeout=30, check=True).stdout.strip().removeprefix("nextUpdate=")
    (listed,) = read_certificates("crl", crl)
    assert listed.not_after_s == calendar.timegm(time.strptime(said, "%b %d %H:%M:%S %Y %Z"))
    assert (listed.setting, listed.name, listed.index) == ("crl", "fixmesh test CA", 1)
    now_s = time.time()
    assert listed.describe(now_s).startswith(f"revocation list of CN=fixmesh test CA (crl, 1 of {crl}) expires")
    assert not listed.due(now_s) and listed.due(listed.not_after_s - 3_600)


def test_the_watch_warns_of_a_list_near_its_end_but_leaves_it_out_of_the_renewal_metric(
        pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    crl = make_crl(tmp_path, [], out=tmp_path / "crl.pem", days=1)
    (listed,) = read_certificates("crl", crl)
    certificates = session_certificates(pki.server_cert, None, crl)
    at_ns = (listed.not_after_s - 3_600) * NS_PER_S  # an hour before the list's end
    watch = ExpiryWatch("client", certificates, now=lambda: Instant(500.0, at_ns))
    with caplog.at_level(logging.INFO, logger="fixmesh.tls"):
        watch.start()
    assert "WARNING" in caplog.text and "revocation list of CN=fixmesh test CA" in caplog.text
    assert watch.next_deadline() == 500.0 + CRL_PERIOD_S
    assert watch.earliest_s == read_certificates("cert", pki.server_cert)[0].not_after_s
