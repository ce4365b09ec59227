"""A session actor or a broker on plain TCP without keys never loads OpenSSL.

``ssl`` and ``hashlib`` (through ``_hashlib``) map OpenSSL's libraries into
the process: about 5 MB resident per process, and a gateway host runs one
process per session. They are imported only by what needs them (TLS, password
checks, bus keys); these tests keep it so.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

from actors.fix.native import sha256
from actors.shell.name_lookup import lookup_name

OPENSSL_MODULES = ("ssl", "_ssl", "hashlib", "_hashlib", "hmac")


def loaded_by(code: str, watched: tuple[str, ...], env: dict[str, str] | None = None) -> list[str]:
    """Which of ``watched`` a fresh interpreter (in ``env``, if given) has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {watched!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    return [m for m in done.stdout.strip().split(",") if m]


def loaded_after_import(*modules: str) -> list[str]:
    return loaded_by(f"import {', '.join(modules)}", OPENSSL_MODULES)


def test_a_session_actor_and_a_broker_import_no_openssl() -> None:
    assert loaded_after_import("actors.gateway.session_actor", "broker.broker", "actors.shell.host") == []


#: What an idle session actor on plain TCP never runs, so never imports: the XML reader and
#: parser (its dictionary's tables come from the cache), PyYAML (so does its topology's
#: document), ``difflib`` (misspelt keys only), ``zoneinfo`` and the ``sysconfig`` it reads its
#: path from (schedules in another zone than UTC only), ``argparse`` (its options are read by
#: ``actors.gateway.program``), ``shutil`` with the ``bz2`` and ``lzma`` it maps (a store's reset
#: only), ``zmq.auth`` (a bus with keys only), ``base64`` and ``binascii`` (logon credentials only).
#: About 4 MB resident in each actor.
IDLE_ACTOR_NEVER_LOADS = ("actors.fix.dictionary_xml", "xml.etree.ElementTree", "pyexpat", "yaml", "difflib",
                          "zoneinfo", "sysconfig", "argparse", "shutil", "bz2", "lzma", "unicodedata", "zmq.auth",
                          "base64", "binascii")


def test_a_session_actor_imports_only_what_an_idle_session_runs() -> None:
    assert loaded_by("import actors.gateway.session_actor", IDLE_ACTOR_NEVER_LOADS) == []


def test_the_builtin_sha256_gives_hashlibs_digests() -> None:
    # The store's folder names hold this digest: a different one would lose every existing store.
    for data in (b"", b"FIX.4.4:GATEWAY->VENUE", bytes(range(256)) * 9):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()


def test_an_initiator_resolves_an_ascii_host_without_the_idna_codec() -> None:
    # getaddrinfo encodes a str host with the idna codec, which loads unicodedata (0.2 MB).
    code = ("import socket\nfrom actors.shell.name_lookup import lookup_name, numeric_address\n"
            "assert numeric_address('127.0.0.1', 9) and numeric_address('::1', 9)\n"
            "assert numeric_address('localhost', 9) is None\n"
            "socket.getaddrinfo(lookup_name('localhost'), 9, type=socket.SOCK_STREAM)")
    assert loaded_by(code, ("unicodedata", "encodings.idna")) == []


def test_an_ascii_host_is_given_as_the_idna_codec_gives_it() -> None:
    for host in ("127.0.0.1", "venue.example.com", "venue.example.com.", "::1", "VENUE-1", "", "a" * 63):
        assert lookup_name(host) == host.encode("idna")
    # Anything else is left to the codec: a non-ASCII name (encoded), a label it refuses (its error).
    for host in ("börse.example", "a..b", "a" * 64, ".a"):
        assert lookup_name(host) == host
