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

The dates are read from the PEM files' DER (RFC 5280: the TBSCertificate's
validity, and the subject's commonName for the log), not through ``ssl``,
which gives them only for CA certificates.
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

_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"
_SEQUENCE, _EXPLICIT_0, _UTC_TIME, _GENERALIZED_TIME = 0x30, 0xA0, 0x17, 0x18
#: The DER of the commonName attribute's type (OID 2.5.4.3).
_COMMON_NAME = bytes((0x06, 0x03, 0x55, 0x04, 0x03))


class CertificateError(ValueError):
    """A certificate whose dates cannot be read."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """One certificate of a PEM file, as the expiry watch needs it."""

    #: The setting it comes from (``cert``, ``ca``; ``peer``: presented by the other side), the file (None for
    #: a peer's), and its place in it (1 for the first).
    setting: str
    path: Path | None
    index: int
    #: The subject's commonName, or "" when it has none.
    name: str
    #: The end of its validity, Unix seconds.
    not_after_s: int

    def due(self, now_s: float) -> bool:
        """Within ``WARN_DAYS`` of its end, or past it: worth a warning (an error once past)."""
        return self.not_after_s - now_s <= WARN_DAYS * DAY_S

    def describe(self, now_s: float) -> str:
        """``certificate CN=x (cert, 1 of server.pem) expires 2027-01-01 00:00 UTC, in 31 days``; a peer's is
        ``CN=x expires ...``."""
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.not_after_s))
        left_s = self.not_after_s - now_s
        span = f"expired {when}, {_days(-left_s)} ago" if left_s <= 0 else f"expires {when}, in {_days(left_s)}"
        name = f"CN={self.name} " if self.name else ""
        if self.path is None:
            return f"{name}{span}"
        return f"certificate {name}({self.setting}, {self.index} of {self.path}) {span}"


def _days(seconds: float) -> str:
    days = int(seconds // DAY_S)
    if days == 0:
        return f"{int(seconds // 3600)} hours"
    return "1 day" if days == 1 else f"{days} days"


def read_certificates(setting: str, path: Path) -> list[Certificate]:
    """Every certificate of the PEM file ``path``, in order; ``CertificateError`` names one it cannot read."""
    data = path.read_bytes()
    found: list[Certificate] = []
    start = data.find(_BEGIN)
    while start >= 0:
        end = data.find(_END, start)
        if end < 0:
            raise CertificateError(f"{path}: a certificate without its END line")
        index = len(found) + 1
        try:
            der = base64.b64decode(b"".join(data[start + len(_BEGIN):end].split()), validate=True)
            name, not_after_s = _read_der(der)
        except (binascii.Error, ValueError, IndexError) as exc:
            raise CertificateError(f"{path}: certificate {index} cannot be read: {exc}") from None
        found.append(Certificate(setting, path, index, name, not_after_s))
        start = data.find(_BEGIN, end)
    return found


def session_certificates(cert: Path | None, ca: Path | None) -> list[Certificate]:
    """The certificates of a session's ``cert`` and ``ca`` files; a file whose dates cannot be read is logged.

    ``ssl`` has loaded the files already: one whose dates this module cannot read is not a reason to stop.
    """
    found: list[Certificate] = []
    for setting, path in (("cert", cert), ("ca", ca)):
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


def _read_der(der: bytes) -> tuple[str, int]:
    """The subject's commonName and notAfter of a DER certificate (RFC 5280, 4.1)."""
    tag, certificate, _ = _element(der, 0)
    tag_tbs, at, _ = _element(der, certificate)
    if tag != _SEQUENCE or tag_tbs != _SEQUENCE:
        raise ValueError("not a certificate")
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
    _, subject, subject_end = _element(der, at)
    name = ""
    found = der.find(_COMMON_NAME, subject, subject_end)
    if found >= 0:
        _, start, end = _element(der, found + len(_COMMON_NAME))
        name = der[start:end].decode("utf-8", "replace")
    return name, not_after_s


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
        """When the first of the certificates ends (Unix seconds); None without any."""
        return self.certificates[0].not_after_s if self.certificates else None

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
        self._deadline = now.mono_s + DAY_S if self.certificates else None
