"""FIX over TLS: contexts built from a session's settings, and TLS as bytes in and bytes out.

The settings (``TlsSettings``, ``actors.shell.tls_settings``) say what one
session's TLS is; this module, the only one that imports ``ssl``, is loaded
by a process only when one of its sessions speaks TLS. ``server_context``
and ``client_context`` turn the settings into ``ssl.SSLContext``s; a file
that cannot be loaded is a ``TlsConfigError`` naming the key.

``TlsLayer`` is TLS without a socket (``ssl.SSLObject`` over two
``ssl.MemoryBIO``s): ciphertext from the socket goes in through ``receive``,
which returns the plaintext it completes; plaintext goes in through ``send``;
``outgoing`` is the ciphertext to write. It never blocks and needs no thread:
the socket stays the non-blocking one of the selector loop
(``actors.shell.transport.SocketTransport`` does the I/O). A failed handshake
or a broken stream raises ``TlsError``, whose text is the reason for the log
("TLS handshake failed: certificate verify failed: Hostname mismatch, ...").

Rules:

* Nothing below TLS 1.2 (RFC 8996 deprecates 1.0 and 1.1); ``min_version``
  may raise the floor to 1.3.
* An initiator always verifies the server: its certificate must chain to
  ``ca`` (the system's CAs when none is given) and name ``server_name``
  (default: the host it connects to; an IP address matches an IP
  subjectAltName).
* An acceptor presents ``cert`` and ``key``; with ``verify_client`` it asks
  for a client certificate, refuses a connection without one, and accepts
  only certificates that chain to ``ca``.
* With ``crl``, a peer certificate that a revocation list of its CA names is
  refused (OpenSSL's check of the leaf certificate: the list of the CA that
  signed it must be in the file, and current). An acceptor reads the file
  again when it changes (``CrlWatch``): the next handshakes use the new list,
  and the sessions already connected stay (log one out with ``fixmesh ctl``).
* Renegotiation is off: nothing in FIX needs it and it has been a way in for
  attacks (CVE-2009-3555).
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Final, cast

from actors.fix.timefmt import NS_PER_S
from actors.shell import clock
from actors.shell.certificates import Certificate
from actors.shell.tls_settings import MIN_VERSIONS, TlsConfigError, TlsError, TlsSettings

log = logging.getLogger("fixmesh.tls")

READ_CHUNK: Final = 65536
#: How often an acceptor looks whether its CRL file changed (one ``stat``).
CRL_CHECK_S: Final = 5.0

#: OpenSSL's reason codes that are worth a word on what to check.
_HINTS: Final = {
    "UNSUPPORTED_PROTOCOL": "the peer offers no TLS version from the minimum up",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the peer refused our TLS versions",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "verify_client is on and the client sent no certificate",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate (give cert and key)",
    "WRONG_VERSION_NUMBER": "not TLS: is the peer speaking plain TCP?",
    "HTTP_REQUEST": "not TLS: an HTTP request",
    "TLSV1_ALERT_UNKNOWN_CA": "the peer does not trust the CA of our certificate",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "the peer's revocation list names our certificate",
}


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """An acceptor's context: its certificate, and the client check when ``verify_client`` is on."""
    if settings.cert is None or settings.key is None:
        raise TlsConfigError("cert", "missing; an acceptor with TLS presents a certificate: give cert and key")
    if settings.server_name is not None:
        raise TlsConfigError("server_name", "only an initiator checks the server's name")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(context, settings)
    _load_chain(context, settings.cert, settings.key)
    if settings.verify_client:
        assert settings.ca is not None  # TlsSettings checks it
        _load_ca(context, settings.ca)
        context.verify_mode = ssl.CERT_REQUIRED
        if settings.crl is not None:
            _load_crl(context, settings.crl)
    elif settings.ca is not None or settings.crl is not None:
        key = "ca" if settings.ca is not None else "crl"
        raise TlsConfigError(key, "is used only with verify_client: true (an acceptor checks no client otherwise)")
    return context


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """An initiator's context: the server's certificate is verified, its name checked."""
    if settings.verify_client:
        raise TlsConfigError("verify_client", "only an acceptor verifies clients; an initiator always verifies "
                             "the server (give ca: PATH for a private CA)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    _harden(context, settings)
    if settings.ca is not None:
        _load_ca(context, settings.ca)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if settings.crl is not None:
        _load_crl(context, settings.crl)
    if settings.cert is not None and settings.key is not None:
        _load_chain(context, settings.cert, settings.key)
    return context


def _harden(context: ssl.SSLContext, settings: TlsSettings) -> None:
    context.minimum_version = ssl.TLSVersion[MIN_VERSIONS[settings.min_version]]
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        context.load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError is an OSError too
        raise TlsConfigError("cert", f"cannot load the certificate {cert} with the key {key}: {describe(exc)}; "
                             "check both paths, that this process may read them, and that the key is the "
                             "certificate's (PEM, unencrypted)") from None


def _load_ca(context: ssl.SSLContext, ca: Path) -> None:
    _load_verify(context, "ca", ca, "the CA bundle", "CA certificates")


def _load_crl(context: ssl.SSLContext, crl: Path) -> None:
    _load_verify(context, "crl", crl, "the revocation list", "X509 CRLs of the CAs in ca")
    context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF


def _load_verify(context: ssl.SSLContext, key: str, path: Path, what: str, holds: str) -> None:
    try:
        context.load_verify_locations(cafile=path)
    except OSError as exc:
        raise TlsConfigError(key, f"cannot load {what} {path}: {describe(exc)}; give a PEM file of {holds}") from None


class CrlWatch:
    """An acceptor's revocation list, read again when its file changes: a timer source of the loop.

    Every ``CRL_CHECK_S`` one ``stat`` of the file; when its size or time
    changed, a new context is built from the settings and handed to
    ``apply`` (the acceptor's next handshakes use it). A file that cannot be
    loaded (half written, say) keeps the context in use, with an error in
    the log, and is tried again at the next look.
    """

    def __init__(self, name: str, settings: TlsSettings, apply: Callable[[ssl.SSLContext], None],
                 now_s: Callable[[], float] = clock.monotonic_s) -> None:
        assert settings.crl is not None
        self.name = name
        self.settings = settings
        self.crl = settings.crl
        self._apply = apply
        self._now_s = now_s
        self._seen = self._stamp()
        self._deadline = now_s() + CRL_CHECK_S

    def next_deadline(self) -> float | None:
        return self._deadline

    def on_timer(self) -> None:
        self._deadline = self._now_s() + CRL_CHECK_S
        stamp = self._stamp()
        if stamp == self._seen:
            return
        try:
            context = server_context(self.settings)
        except TlsConfigError as exc:
            log.error("%s: %s; the list read before stays in use", self.name, exc)
            return
        self._seen = stamp
        self._apply(context)
        log.info("%s: tls.crl %s changed: the next handshakes check the new revocation list", self.name, self.crl)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.crl)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size


def describe(exc: OSError) -> str:
    """Words for an ``ssl`` error: the verification message, or OpenSSL's reason in lower case with a hint."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        words = exc.reason.lower().replace("_", " ")
        hint = _HINTS.get(exc.reason)
        return f"{words} ({hint})" if hint else words
    return exc.strerror or str(exc)


class TlsLayer:
    """One TLS connection as bytes in and bytes out; the caller moves the ciphertext to and from the socket."""

    def __init__(self, context: ssl.SSLContext, *, server_side: bool, server_name: str | None = None) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                     server_hostname=None if server_side else server_name)
        #: The handshake has completed: plaintext flows both ways.
        self.secure = False
        #: The peer ended the TLS stream with a close_notify.
        self.closed_by_peer = False
        self._closing = False

    def start(self) -> None:
        """Begin the handshake: a client's first flight goes to ``outgoing``; a server waits for the client."""
        self._handshake()

    def receive(self, data: bytes) -> bytes:
        """Ciphertext from the peer in; the plaintext it completes out (nothing while the handshake runs)."""
        if data:
            self._incoming.write(data)
        if not self.secure and not self._handshake():
            return b""
        chunks: list[bytes] = []
        while not self.closed_by_peer:
            try:
                chunk = self._tls.read(READ_CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.closed_by_peer = True
                break
            except ssl.SSLError as exc:
                raise TlsError(f"TLS error: {describe(exc)}") from None
            if not chunk:  # the peer's close_notify (SSLObject reads it as the end of the data)
                self.closed_by_peer = True
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def send(self, data: bytes) -> None:
        """Plaintext to the peer (after the handshake); its records go to ``outgoing``."""
        if not self.secure:
            raise TlsError("TLS error: data to send before the handshake completed")
        if self._closing:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[self._tls.write(view):]
        except ssl.SSLError as exc:
            raise TlsError(f"TLS error: {describe(exc)}") from None

    def close(self) -> None:
        """End the stream: a close_notify goes to ``outgoing`` (the peer's is not waited for)."""
        if self._closing or not self.secure:
            return
        self._closing = True
        # SSLWantReadError: the peer's close_notify has not come, and need not.
        with contextlib.suppress(ssl.SSLError):
            self._tls.unwrap()

    def outgoing(self) -> bytes:
        """The ciphertext to write to the socket, taken out of the layer."""
        return self._outgoing.read() if self._outgoing.pending else b""

    def describe(self) -> str:
        """Version and cipher of the established connection, and the peer's certificate when it gave one."""
        cipher = self._tls.cipher()
        text = f"{self._tls.version()} ({cipher[0] if cipher else 'no cipher'})"
        peer = self.peer_certificate()
        if peer is not None:
            text += f", peer certificate {peer.describe(clock.now().utc_ns / NS_PER_S)}"
        return text

    def peer_certificate(self) -> Certificate | None:
        """The peer's verified certificate (a server's; a client's with ``verify_client``); None without one."""
        cert = self._tls.getpeercert()
        if not cert or "notAfter" not in cert:
            return None
        subject = cast("tuple[tuple[tuple[str, str], ...], ...]", cert.get("subject", ()))
        name = next((value for rdn in subject for key, value in rdn if key == "commonName"), "")
        return Certificate("peer", None, 1, name, int(ssl.cert_time_to_seconds(str(cert["notAfter"]))))

    def peer_expiry_warning(self) -> str | None:
        """Words for the log when the peer's certificate ends within ``WARN_DAYS`` (or has ended); else None."""
        peer = self.peer_certificate()
        now_s = clock.now().utc_ns / NS_PER_S
        if peer is None or not peer.due(now_s):
            return None
        return f"the peer's certificate {peer.describe(now_s)}: its owner must renew it"

    def _handshake(self) -> bool:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLError as exc:
            raise TlsError(f"TLS handshake failed: {describe(exc)}") from None
        self.secure = True
        return True
