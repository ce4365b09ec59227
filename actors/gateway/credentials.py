"""Logon credentials of an acceptor session: a salted scrypt hash and the check of a Logon against it.

Pure: no file, environment or clock; the topology (``actors.gateway.topology``)
reads the secret and hands it here to be hashed, and ``ActorHooks`` asks
``Credentials.check`` about each Logon. Only the salted hash is kept, so a
core dump or a debugger shows no password.

Rules:

* The hash text carries its own parameters, ``scrypt$N$r$p$<salt>$<key>``
  (salt and key base64), so the cost can be raised later without breaking
  hashes written earlier.
* Every refusal reads the same to the peer (``REFUSAL_TEXT``): telling
  "unknown user" from "wrong password" would let a guesser find the user
  first. The log, which only the operator reads, says which check failed.
* The password is hashed and compared even when the username is wrong or
  missing, and both comparisons use ``hmac.compare_digest``, so the time of
  a refusal does not tell which check failed.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Final

#: The one text a refused peer reads, whatever failed.
REFUSAL_TEXT: Final = "Logon refused: invalid credentials"
SCHEME: Final = "scrypt"
#: scrypt cost: N=2**14, r=8 (16 MiB, tens of milliseconds): costly to guess offline, cheap per Logon.
DEFAULT_N: Final = 2**14
DEFAULT_R: Final = 8
DEFAULT_P: Final = 1
SALT_BYTES: Final = 16
KEY_BYTES: Final = 32
#: Bound on the memory scrypt may take (128 * N * r * p bytes): a typo must not ask for gigabytes at each Logon.
_MAX_MEMORY: Final = 2**28
#: A hash of this placeholder is checked when the Logon has no password, so a refusal costs the same.
_NO_PASSWORD: Final = b"\x00no password\x00"


class CredentialsError(ValueError):
    """A password hash text that cannot be used; the message says what is wrong with it."""


class Failure(enum.Enum):
    """Which check refused a Logon (for the log and the counter, never for the peer)."""

    NO_USERNAME = "no Username(553) in the Logon"
    NO_PASSWORD = "no Password(554) in the Logon"
    WRONG_USERNAME = "Username(553) is not the configured one"
    WRONG_PASSWORD = "Password(554) does not match the configured hash"


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A salted scrypt hash with its parameters."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    @classmethod
    def of(cls, password: bytes, *, salt: bytes | None = None, n: int = DEFAULT_N, r: int = DEFAULT_R,
           p: int = DEFAULT_P) -> PasswordHash:
        """Hash ``password`` with a fresh random salt (a given one only in tests)."""
        salt = os.urandom(SALT_BYTES) if salt is None else salt
        return cls(n, r, p, salt, _scrypt(password, salt, n, r, p, KEY_BYTES))

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """Read ``scrypt$N$r$p$<salt>$<key>``; CredentialsError says what is wrong."""
        import base64  # with binascii, about 0.15 MB: loaded only by a session that has credentials
        import binascii

        parts = text.strip().split("$")
        if len(parts) != 6 or parts[0] != SCHEME:
            raise CredentialsError("expected 'scrypt$N$r$p$<salt>$<key>' as printed by `fixmesh credentials hash`")
        try:
            n, r, p = (int(v) for v in parts[1:4])
            salt = base64.b64decode(parts[4], validate=True)
            key = base64.b64decode(parts[5], validate=True)
        except (ValueError, binascii.Error):
            raise CredentialsError("N, r and p must be numbers and the salt and key base64") from None
        if n < 2 or n & (n - 1) or r < 1 or p < 1:
            raise CredentialsError("N must be a power of 2 and r, p 1 or more")
        if 128 * n * r * p > _MAX_MEMORY:
            raise CredentialsError(f"N*r*p asks scrypt for more than {_MAX_MEMORY >> 20} MiB per Logon")
        if len(salt) < 8 or len(key) < 16:
            raise CredentialsError("the salt (8 bytes or more) or the key (16 bytes or more) is too short")
        return cls(n, r, p, salt, key)

    def text(self) -> str:
        """The form the topology keeps: ``scrypt$N$r$p$<salt>$<key>``."""
        from base64 import b64encode as b64

        return f"{SCHEME}${self.n}${self.r}${self.p}${b64(self.salt).decode()}${b64(self.key).decode()}"

    def matches(self, password: bytes) -> bool:
        """True when ``password`` hashes to this key (constant-time comparison)."""
        import hmac  # with hashlib, OpenSSL's libcrypto: loaded only by a session that checks passwords

        return hmac.compare_digest(_scrypt(password, self.salt, self.n, self.r, self.p, len(self.key)), self.key)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a Logon to an acceptor must carry: this Username(553) and a Password(554) matching the hash."""

    username: str
    password_hash: PasswordHash

    def check(self, username: bytes | None, password: bytes | None) -> Failure | None:
        """None when both match, otherwise the first failed check (both are always evaluated)."""
        import hmac

        name_ok = hmac.compare_digest(username or b"", self.username.encode())
        password_ok = self.password_hash.matches(password if password is not None else _NO_PASSWORD)
        if username is None:
            return Failure.NO_USERNAME
        if password is None:
            return Failure.NO_PASSWORD
        if not name_ok:
            return Failure.WRONG_USERNAME
        if not password_ok:
            return Failure.WRONG_PASSWORD
        return None


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # maxmem above the default 32 MiB so the larger accepted parameters run; 128*r*N*p plus slack.
    import hashlib

    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=length, maxmem=129 * r * n * p + 2**20)
