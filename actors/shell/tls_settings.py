"""What a session says about its TLS, and the errors TLS raises: no ``ssl`` here.

``TlsSettings`` is what a topology (or a program's command line) says about
one session: its certificate and key, the CA bundle it trusts, whether an
acceptor demands client certificates (mutual TLS), the name an initiator
expects in the server's certificate, and the lowest TLS version it speaks.
``actors.shell.tls`` turns them into contexts and streams.

Kept apart from ``actors.shell.tls`` so that a process whose sessions speak
plain TCP never imports ``ssl``: with OpenSSL's libraries it adds about
5 MB to the resident memory of every process that loads it, and a gateway
host runs one process per session. Only what a TLS session builds imports
``actors.shell.tls``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The ``min_version`` values a session may give, with the name of their ``ssl.TLSVersion``; lower versions
#: are refused.
MIN_VERSIONS: Final = {"1.2": "TLSv1_2", "1.3": "TLSv1_3"}
DEFAULT_MIN_VERSION: Final = "1.2"


class TlsConfigError(ValueError):
    """TLS settings that cannot be used; ``key`` is the setting at fault (``cert``, ``ca``, ...)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"tls.{key}: {problem}")
        self.key = key
        self.problem = problem


class TlsError(Exception):
    """The TLS stream failed: a refused handshake, a bad record, an alert from the peer. The text says why."""


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """One session's TLS; no settings at all (None where a spec takes them) is plain TCP."""

    #: This side's certificate (PEM, the chain after it) and private key: an acceptor's are required,
    #: an initiator's are its client certificate for an acceptor that verifies clients.
    cert: Path | None = None
    key: Path | None = None
    #: The CA bundle (PEM) trusted for the peer's certificate; an initiator without one trusts the system's CAs.
    ca: Path | None = None
    #: Acceptor: demand a client certificate signed by ``ca`` (mutual TLS).
    verify_client: bool = False
    #: Initiator: the name the server's certificate must carry; None: the host connected to.
    server_name: str | None = None
    #: The lowest TLS version spoken: "1.2" or "1.3".
    min_version: str = DEFAULT_MIN_VERSION
    #: Certificate revocation lists (PEM) of the CAs of ``ca``: a peer certificate they list is refused. An
    #: acceptor's is read again when the file changes (``actors.shell.tls.CrlWatch``), with no restart.
    crl: Path | None = None

    def __post_init__(self) -> None:
        if self.min_version not in MIN_VERSIONS:
            raise TlsConfigError("min_version", f"is {self.min_version!r}; expected '1.2' or '1.3' "
                                 "(TLS 1.0 and 1.1 are refused, RFC 8996)")
        if (self.cert is None) != (self.key is None):
            missing = "key" if self.key is None else "cert"
            raise TlsConfigError(missing, "missing; cert and key go together (the certificate and its private key)")
        if self.verify_client and self.ca is None:
            raise TlsConfigError("ca", "missing; verify_client needs the CA bundle that signs client certificates")
