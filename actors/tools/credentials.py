"""``fixmesh credentials hash``: turn a password into the ``scrypt$...`` line an acceptor's topology keeps.

The password is read from standard input, never from the command line (where
``ps`` and the shell history would show it): typed twice without echo at a
terminal, or the first line of a pipe (``fixmesh credentials hash < secret``).
The line printed goes under ``credentials: {username: NAME, password_hash: ...}``
(docs/configuration.md); it carries a fresh random salt and the scrypt
parameters, so hashing the same password twice prints two different lines,
both valid.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from actors.gateway.credentials import PasswordHash


def read_password(stdin: TextIO) -> str | None:
    """The password from ``stdin``: prompted twice without echo at a terminal, else its first line."""
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            print("fixmesh credentials: the two passwords differ; nothing printed", file=sys.stderr)
            return None
        return first
    return stdin.readline().rstrip("\r\n")  # the newline of `echo` or an editor is not part of it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fixmesh credentials", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("hash", help="read a password from stdin and print its scrypt$... line")
    parser.parse_args(argv)
    password = read_password(sys.stdin)
    if password is None:
        return 1
    if not password:
        print("fixmesh credentials: empty password; nothing printed", file=sys.stderr)
        return 1
    print(PasswordHash.of(password.encode("utf-8", "surrogateescape")).text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
