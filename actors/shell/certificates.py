"""When a session's TLS certificates expire, said before they do: at start, once a day, and in its counters.

An expired certificate is the classic TLS outage: nothing changes in the
gateway, and one morning every Logon fails its handshake. So each session
with TLS reads the end of validity (notAfter) of every certificate it uses,
its own chain (``cert``) and the CAs it trusts (``ca``), logs them at start,
warns every day from ``WARN_DAYS`` before the first of them ends, logs an
error once one has, and publishes the earliest end in its counters (the
metric ``fixmesh_session_tls_expiry_timestamp_seconds``, for an alert
rule). An initiator that trusts the system's CAs (no ``ca``) watches only
its own certificate: the system's bundle is the host's to keep.

A revocation list (``crl``) ends too: past its nextUpdate OpenSSL takes it
for expired and refuses every peer certificate it should vouch for. So its
nextUpdate is watched the same way, warned of from ``CRL_WARN_S`` before
(lists are short-lived: a day or a week), looked at every hour.

The dates are read from the PEM files' DER (RFC 5280: the TBSCertificate's
validity, and the subject's commonName for the log; the TBSCertList's
nextUpdate and issuer), not through ``ssl``, which gives them only for CA
certificates.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from actors.fix.timefmt import NS_PER_S, Instant
from actors.shell import clock

log = logging.getLogger("fixmesh.tls")

#: From how many days before a certificate's end the session warns, once a day.
WARN_DAYS = 30
DAY_S = 86_400
#: From how long before a revocation list's nextUpdate the session warns; it looks every ``CRL_PERIOD_S``.
CRL_WARN_S = 4 * 3_600
CRL_PERIOD_S = 3_600

_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"
_BEGIN_CRL = b"-----BEGIN X509 CRL-----"
_END_CRL = b"-----END X509 CRL-----"
_INTEGER = 0x02
_SEQUENCE, _EXPLICIT_0, _UTC_TIME, _GENERALIZED_TIME = 0x30, 0xA0, 0x17, 0x18
#: The DER of the commonName attribute's type (OID 2.5.4.3).
_COMMON_NAME = bytes((0x06, 0x03, 0x55, 0x04, 0x03))


class CertificateError(ValueError):
    """A certificate whose dates cannot be read."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """One certificate of a PEM file, as the expiry watch needs it."""

    #: The setting it comes from (``cert``, ``ca``, ``crl``: a revocation list; ``peer``: presented by the other
    #: side), the file (None for a peer's), and its place in it (1 for the first).
    setting: str
    path: Path | None
    index: int
    #: The subject's commonName (a revocation list's issuer's), or "" when it has none.
    name: str
    #: The end of its validity (a revocation list's nextUpdate), Unix seconds.
    not_after_s: int

    def due(self, now_s: float) -> bool:
        """Within ``WARN_DAYS`` of its end (a list: ``CRL_WARN_S``), or past it: a warning (an error once past)."""
        warn_s = CRL_WARN_S if self.setting == "crl" else WARN_DAYS * DAY_S
        return self.not_after_s - now_s <= warn_s

    def describe(self, now_s: float) -> str:
        """``certificate CN=x (cert, 1 of server.pem) expires 2027-01-01 00:00 UTC, in 31 days``; a peer's is
        ``CN=x expires ...``."""
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.not_after_s))
        left_s = self.not_after_s - now_s
        span = f"expired {when}, {_days(-left_s)} ago" if left_s <= 0 else f"expires {when}, in {_days(left_s)}"
        name = f"CN={self.name} " if self.name else ""
        if self.path is None:
            return f"{name}{span}"
        if self.setting == "crl":
            return f"revocation list of {name}({self.setting}, {self.index} of {self.path}) {span}"
        return f"certificate {name}({self.setting}, {self.index} of {self.path}) {span}"


def _days(seconds: float) -> str:
    days = int(seconds // DAY_S)
    if days == 0:
        return f"{int(seconds // 3600)} hours"
    return "1 day" if days == 1 else f"{days} days"


def read_certificates(setting: str, path: Path) -> list[Certificate]:
    """Every certificate of the PEM file ``path`` (every revocation list for ``crl``), in order;
    ``CertificateError`` names one it cannot read. A list without a nextUpdate is left out: it never ends."""
    crl = setting == "crl"
    begin, end_line, what = (_BEGIN_CRL, _END_CRL, "revocation list") if crl else (_BEGIN, _END, "certificate")
    data = path.read_bytes()
    found: list[Certificate] = []
    index = 0
    start = data.find(begin)
    while start >= 0:
        end = data.find(end_line, start)
        if end < 0:
            raise CertificateError(f"{path}: a {what} without its END line")
        index += 1
        try:
            der = base64.b64decode(b"".join(data[start + len(begin):end].split()), validate=True)
            name, not_after_s = _read_crl_der(der) if crl else _read_der(der)
        except (binascii.Error, ValueError, IndexError) as exc:
            raise CertificateError(f"{path}: {what} {index} cannot be read: {exc}") from None
        if not_after_s is not None:
            found.append(Certificate(setting, path, index, name, not_after_s))
        start = data.find(begin, end)
    if crl and index == 0:
        raise CertificateError(f"{path}: no revocation list (PEM, BEGIN X509 CRL) in it")
    return found


def session_certificates(cert: Path | None, ca: Path | None, crl: Path | None = None) -> list[Certificate]:
    """The certificates of a session's ``cert`` and ``ca`` files and the lists of its ``crl``; a file whose
    dates cannot be read is logged.

    ``ssl`` has loaded the files already: one whose dates this module cannot read is not a reason to stop.
    """
    found: list[Certificate] = []
    for setting, path in (("cert", cert), ("ca", ca), ("crl", crl)):
        if path is None:
            continue
        try:
            found += read_certificates(setting, path)
        except (OSError, CertificateError) as exc:
            log.warning("%s: the expiry of the certificates in %s is not watched: %s", setting, path, exc)
    return found


def _element(der: bytes, at: int) -> tuple[int, int, int]:
    """The DER element at ``at``: its tag, where its contents start and where they end."""
    tag, size = der[at], der[at + 1]
    at += 2
    if size & 0x80:
        count = size & 0x7F
        if not 0 < count <= 4:
            raise ValueError(f"length of {count} bytes")
        size = int.from_bytes(der[at:at + count], "big")
        at += count
    if at + size > len(der):
        raise ValueError("truncated")
    return tag, at, at + size


def _tbs(der: bytes, what: str) -> int:
    """Where the contents of the signed part (TBSCertificate, TBSCertList) of a DER ``what`` start."""
    tag, outer, _ = _element(der, 0)
    tag_tbs, at, _ = _element(der, outer)
    if tag != _SEQUENCE or tag_tbs != _SEQUENCE:
        raise ValueError(f"not a {what}")
    return at


def _common_name(der: bytes, name: tuple[int, int, int]) -> str:
    """The commonName of the DER Name ``name`` (an ``_element``), or ""."""
    _, start, end = name
    found = der.find(_COMMON_NAME, start, end)
    if found < 0:
        return ""
    _, start, end = _element(der, found + len(_COMMON_NAME))
    return der[start:end].decode("utf-8", "replace")


def _read_der(der: bytes) -> tuple[str, int]:
    """The subject's commonName and notAfter of a DER certificate (RFC 5280, 4.1)."""
    at = _tbs(der, "certificate")
    if der[at] == _EXPLICIT_0:  # version
        at = _element(der, at)[2]
    for _field in ("serialNumber", "signature", "issuer"):
        at = _element(der, at)[2]
    tag, validity, at = _element(der, at)
    if tag != _SEQUENCE:
        raise ValueError("no validity")
    not_before_end = _element(der, validity)[2]
    tag, start, end = _element(der, not_before_end)
    not_after_s = _time(tag, der[start:end].decode("ascii"))
    return _common_name(der, _element(der, at)), not_after_s


def _read_crl_der(der: bytes) -> tuple[str, int | None]:
    """The issuer's commonName and nextUpdate (None when absent) of a DER revocation list (RFC 5280, 5.1)."""
    at = _tbs(der, "revocation list")
    if der[at] == _INTEGER:  # version
        at = _element(der, at)[2]
    at = _element(der, at)[2]  # signature
    issuer = _element(der, at)
    name = _common_name(der, issuer)
    this_update_end = _element(der, issuer[2])[2]
    if this_update_end >= len(der):
        return name, None
    tag, start, end = _element(der, this_update_end)
    if tag not in (_UTC_TIME, _GENERALIZED_TIME):
        return name, None
    return name, _time(tag, der[start:end].decode("ascii"))


def _time(tag: int, text: str) -> int:
    """UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ) as Unix seconds."""
    if not text.endswith("Z"):
        raise ValueError(f"time {text!r} not in UTC")
    if tag == _UTC_TIME and len(text) == 13:
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != _GENERALIZED_TIME or len(text) != 15:
        raise ValueError(f"time {text!r} of tag {tag:#x}")
    return calendar.timegm(time.strptime(text, "%Y%m%d%H%M%SZ"))


class ExpiryWatch:
    """A session's certificates: logged at start, checked once a day; a timer source of the loop."""

    def __init__(self, name: str, certificates: Iterable[Certificate], now: Callable[[], Instant] = clock.now) -> None:
        self.name = name
        self.certificates = sorted(certificates, key=lambda c: c.not_after_s)
        self._now = now
        self._deadline: float | None = None

    @property
    def earliest_s(self) -> int | None:
        """When the first of the certificates ends (Unix seconds); None without any. Revocation lists are left
        out: they end every day or week by design, and an alert on this number is for renewals a person does."""
        return next((c.not_after_s for c in self.certificates if c.setting != "crl"), None)

    def start(self) -> None:
        """Say when each certificate ends (a warning or an error for those near or past their end)."""
        self._check(everything=True)

    def next_deadline(self) -> float | None:
        return self._deadline

    def on_timer(self) -> None:
        self._check(everything=False)

    def _check(self, *, everything: bool) -> None:
        now = self._now()
        now_s = now.utc_ns / NS_PER_S
        for certificate in self.certificates:
            if certificate.not_after_s <= now_s:
                log.error("%s: %s: TLS connections with it fail; renew it", self.name, certificate.describe(now_s))
            elif certificate.due(now_s):
                log.warning("%s: %s; renew it before then", self.name, certificate.describe(now_s))
            elif everything:
                log.info("%s: %s", self.name, certificate.describe(now_s))
        period_s = CRL_PERIOD_S if any(c.setting == "crl" for c in self.certificates) else DAY_S
        self._deadline = now.mono_s + period_s if self.certificates else None
