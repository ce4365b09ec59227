"""A session's certificates: their ends read from PEM, said at start and once a day, in the counters.

The certificates are made by the ``openssl`` command line, which also says
each one's end (``openssl x509 -enddate``): the independent reading the
module's is compared with.
"""

from __future__ import annotations

import calendar
import logging
import subprocess
import time
from pathlib import Path

import pytest

from actors.fix.timefmt import NS_PER_S, Instant
from actors.shell.certificates import (
    DAY_S,
    WARN_DAYS,
    Certificate,
    CertificateError,
    ExpiryWatch,
    read_certificates,
    session_certificates,
)
from actors.shell.tls_settings import TlsSettings
from tests.unit.test_tls import OPENSSL, Pki, exchange, needs_openssl, pair, pki, server_settings

__all__ = ["pki"]  # the fixture, shared with test_tls


def openssl_end(path: Path) -> int:
    """The end of the first certificate of ``path``, as ``openssl x509 -enddate`` says it (Unix seconds)."""
    assert OPENSSL is not None
    out = subprocess.run([OPENSSL, "x509", "-noout", "-enddate", "-in", str(path)], capture_output=True, text=True,
                         timeout=30, check=True).stdout.strip()
    return calendar.timegm(time.strptime(out.removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z"))


def self_signed(directory: Path, name: str, days: int, subject: str = "") -> Path:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", str(days), "-subj",
                    subject or f"/O=fixmesh/CN={name}"], cwd=directory, capture_output=True, timeout=60, check=True)
    return directory / f"{name}.pem"


@needs_openssl
def test_the_end_and_name_are_what_openssl_says(pki: Pki) -> None:
    for path, name in ((pki.server_cert, "localhost"), (pki.client_cert, "TRADER"), (pki.ca, "fixmesh test CA")):
        [certificate] = read_certificates("cert", path)
        assert (certificate.name, certificate.not_after_s, certificate.index) == (name, openssl_end(path), 1)


@needs_openssl
def test_a_date_after_2049_is_a_generalized_time_and_read_as_well(tmp_path: Path) -> None:
    path = self_signed(tmp_path, "long", 30 * 366)  # past 2050: RFC 5280 writes GeneralizedTime
    [certificate] = read_certificates("ca", path)
    assert certificate.not_after_s == openssl_end(path) and time.gmtime(certificate.not_after_s).tm_year >= 2050


@needs_openssl
def test_every_certificate_of_a_bundle_and_a_subject_without_a_common_name(tmp_path: Path) -> None:
    first, second = self_signed(tmp_path, "a", 10), self_signed(tmp_path, "b", 400, subject="/O=no common name")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"# a comment line\n" + first.read_bytes() + second.read_bytes())
    certificates = read_certificates("ca", bundle)
    assert [(c.index, c.name, c.not_after_s) for c in certificates] == [
        (1, "a", openssl_end(first)), (2, "", openssl_end(second))]
    assert session_certificates(None, bundle) == certificates


def test_a_file_that_is_not_a_certificate_is_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nMIIBnot-base64!\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateError, match=r"broken.pem: certificate 1 cannot be read"):
        read_certificates("cert", broken)
    # ssl loaded the file already: a file these dates cannot be read from is logged, not fatal.
    with caplog.at_level(logging.WARNING, logger="fixmesh.tls"):
        assert session_certificates(broken, None) == []
    assert "cert: the expiry of the certificates in" in caplog.text


class Clock:
    def __init__(self, wall_s: float) -> None:
        self.wall_s = wall_s
        self.mono_s = 1000.0


def test_the_watch_says_each_end_at_start_then_warns_once_a_day_from_thirty_days_before(
        caplog: pytest.LogCaptureFixture) -> None:
    now = 1_800_000_000.0
    soon = Certificate("cert", Path("server.pem"), 1, "fix.example.com", int(now + (WARN_DAYS + 2) * DAY_S))
    later = Certificate("ca", Path("ca.pem"), 2, "Example CA", int(now + 400 * DAY_S))
    clock = Clock(now)
    watch = ExpiryWatch("client", [later, soon], now=lambda: Instant(clock.mono_s, int(clock.wall_s * NS_PER_S)))
    assert watch.earliest_s == soon.not_after_s
    with caplog.at_level(logging.INFO, logger="fixmesh.tls"):
        watch.start()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "client: certificate CN=fix.example.com (cert, 1 of server.pem) expires 2027-02-16 08:00 UTC, "
                 "in 32 days"),
        ("INFO", "client: certificate CN=Example CA (ca, 2 of ca.pem) expires 2028-02-19 08:00 UTC, in 400 days")]
    assert watch.next_deadline() == clock.mono_s + DAY_S
    caplog.clear()
    warnings = []
    for day in range(1, 36):  # a day's turn each: the warnings start 30 days before, the error at the end
        clock.wall_s, clock.mono_s = now + day * DAY_S, 1000.0 + day * DAY_S
        with caplog.at_level(logging.INFO, logger="fixmesh.tls"):
            watch.on_timer()
        warnings += [(day, r.levelname) for r in caplog.records]
        caplog.clear()
    assert [day for day, level in warnings if level == "WARNING"] == list(range(2, 32))
    assert [day for day, level in warnings if level == "ERROR"] == list(range(32, 36))
    assert soon.describe(now + 33 * DAY_S).endswith("expired 2027-02-16 08:00 UTC, 1 day ago")
    assert soon.describe(soon.not_after_s - 3 * 3600).endswith("in 3 hours")
    assert ExpiryWatch("client", []).next_deadline() is None


@needs_openssl
def test_the_peers_certificate_is_described_and_warned_of_when_it_ends_soon(pki: Pki, tmp_path: Path) -> None:
    # The test PKI's certificates last two days: each side's peer certificate draws the warning.
    mutual = server_settings(pki, ca=pki.ca, verify_client=True)
    client, server = pair(pki, mutual, TlsSettings(ca=pki.ca, cert=pki.client_cert, key=pki.client_key))
    exchange(client, server)
    server_end = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(openssl_end(pki.server_cert)))
    assert f", peer certificate CN=localhost expires {server_end}, in 1 day" in client.describe()
    assert client.peer_expiry_warning() == (f"the peer's certificate CN=localhost expires {server_end}, in 1 day: "
                                            "its owner must renew it")
    warning = server.peer_expiry_warning()
    assert warning is not None and warning.startswith("the peer's certificate CN=TRADER expires ")
    # A server that asks for no client certificate has no peer certificate to describe.
    client, server = pair(pki, server_settings(pki), TlsSettings(ca=pki.ca))
    exchange(client, server)
    assert server.peer_certificate() is None and server.peer_expiry_warning() is None
    assert "peer certificate" not in server.describe()
    # Far from its end: described, not warned of.
    long_cert = self_signed(tmp_path, "localhost", 400, subject="/CN=localhost")
    far = TlsSettings(cert=long_cert, key=tmp_path / "localhost.key")
    client, server = pair(pki, far, TlsSettings(ca=long_cert))
    exchange(client, server)
    assert client.secure and client.peer_expiry_warning() is None
    assert "peer certificate CN=localhost expires " in client.describe()
