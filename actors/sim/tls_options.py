"""The ``--tls-*`` options of the endpoint, the venue simulator and the trader's client: FIX over TLS.

Without any of them a program speaks plain TCP. ``--tls`` alone makes an
initiator use TLS with the system's CAs and the host's name; an acceptor
needs ``--tls-cert`` and ``--tls-key``. The options mean what the topology's
``tls:`` keys mean (docs/security.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from actors.shell.tls import client_context, server_context
from actors.shell.tls_settings import DEFAULT_MIN_VERSION, MIN_VERSIONS, TlsConfigError, TlsSettings


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("FIX over TLS (default: plain TCP)")
    group.add_argument("--tls", action="store_true", help="use TLS (implied by any other --tls-* option)")
    group.add_argument("--tls-cert", metavar="PEM", help="our certificate (chain); an acceptor's is required")
    group.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    group.add_argument("--tls-ca", metavar="PEM",
                       help="CA bundle trusted for the peer's certificate (initiator default: the system's)")
    group.add_argument("--tls-crl", metavar="PEM",
                       help="revocation lists of the CAs of --tls-ca: a peer certificate they name is refused")
    group.add_argument("--tls-verify-client", action="store_true",
                       help="acceptor: demand a client certificate signed by --tls-ca (mutual TLS)")
    group.add_argument("--tls-server-name", metavar="NAME",
                       help="initiator: the name the server's certificate must carry (default: --host)")
    group.add_argument("--tls-min-version", choices=sorted(MIN_VERSIONS), default=DEFAULT_MIN_VERSION,
                       help=f"lowest TLS version spoken (default {DEFAULT_MIN_VERSION})")


def tls_settings(args: argparse.Namespace, parser: argparse.ArgumentParser, *, acceptor: bool) -> TlsSettings | None:
    """The TLS the options ask for, checked by loading its files now (a mistake ends in ``parser.error``)."""
    wanted = (args.tls or args.tls_cert or args.tls_key or args.tls_ca or args.tls_crl or args.tls_verify_client
              or args.tls_server_name or args.tls_min_version != DEFAULT_MIN_VERSION)
    if not wanted:
        return None
    try:
        settings = TlsSettings(
            cert=Path(args.tls_cert) if args.tls_cert else None,
            key=Path(args.tls_key) if args.tls_key else None,
            ca=Path(args.tls_ca) if args.tls_ca else None,
            verify_client=args.tls_verify_client,
            server_name=args.tls_server_name,
            min_version=args.tls_min_version,
            crl=Path(args.tls_crl) if args.tls_crl else None,
        )
        (server_context if acceptor else client_context)(settings)
    except TlsConfigError as exc:
        parser.error(f"--tls-{exc.key.replace('_', '-')}: {exc.problem}")
    return settings
