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

OPENSSL_MODULES = ("ssl", "_ssl", "hashlib", "_hashlib", "hmac")


def loaded_after_import(*modules: str) -> list[str]:
    code = (f"import sys\nimport {', '.join(modules)}\n"
            f"print(','.join(m for m in {OPENSSL_MODULES!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return [m for m in done.stdout.strip().split(",") if m]


def test_a_session_actor_and_a_broker_import_no_openssl() -> None:
    assert loaded_after_import("actors.gateway.session_actor", "broker.broker", "actors.shell.host") == []


def test_the_builtin_sha256_gives_hashlibs_digests() -> None:
    # The store's folder names hold this digest: a different one would lose every existing store.
    for data in (b"", b"FIX.4.4:GATEWAY->VENUE", bytes(range(256)) * 9):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
