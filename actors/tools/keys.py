"""``fixmesh keys``: the CURVE key pairs of a bus with keys (``docs/bus.md``).

    fixmesh keys create NAME [NAME ...] [--dir DIR]   a key pair per name: NAME.key (public), NAME.key_secret (0600)
    fixmesh keys create --config T.yaml               every key the topology names that its keys_dir lacks
    fixmesh keys list [--dir DIR | --config T.yaml]   name, fingerprint, secret present; with --config, each key's role

A key's name is its principal: the broker names it in its logs and audit
events, and the topology gives it its rights (a session's key is named after
the session, the coordinator's is ``coordinator``, operators and subscribers
are listed under ``bus:``). Key files are made by pyzmq (``zmq.auth``) and
never overwritten: to rotate a key, delete both files first, then restart
the processes that use it and the broker.

Distribute them like any secret: the ``.key_secret`` file only to the host
of the process that uses it, the public ``.key`` files of every principal to
the broker's host, and the broker's public ``.key`` to every host.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import zmq
import zmq.auth

from broker import protocol

if TYPE_CHECKING:
    from actors.gateway.topology import Topology

DEFAULT_DIR = "var/keys"
#: The environment variable ``fixmesh ctl`` and ``fixmesh monitor`` read their key from when ``--key`` is not given.
KEY_ENV = "FIXMESH_BUS_KEY"
SECRET_SUFFIX = ".key_secret"
PUBLIC_SUFFIX = ".key"


def key_argument(value: str) -> tuple[str, Path | None]:
    """``--key``: a key name (found in the topology's ``keys_dir``) or the path of a ``.key_secret`` file.

    Returns the principal (the file's name without ``.key_secret``) and the file, or None for the default place.
    """
    if os.sep in value or value.endswith(SECRET_SUFFIX):
        path = Path(value).expanduser()
        name = path.name[: -len(SECRET_SUFFIX)] if path.name.endswith(SECRET_SUFFIX) else path.stem
        return name, path
    return value, None


def topology_keys(topology: Topology) -> dict[str, str]:
    """Every key a topology's bus uses, with its role, in the order they are listed."""
    from actors.gateway.topology import COORDINATOR_KEY

    bus = topology.bus
    if bus is None:
        return {}
    roles = {bus.broker_key: "broker"}
    roles |= {name: f"session ({s.role})" for name, s in topology.sessions.items()}
    if topology.pairs:
        roles[COORDINATOR_KEY] = "coordinator"
    roles |= {key: "operator" for key in bus.operators}
    roles |= {key: "subscriber" for key in bus.subscribers}
    return roles


def is_key_name(name: str) -> bool:
    return name != "" and name.replace("-", "").replace("_", "").isalnum()


@contextmanager
def _private_files() -> Iterator[None]:
    """New files readable by their owner only, from the moment they exist (no window before a chmod)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def create(directory: Path, name: str) -> tuple[Path, Path]:
    """A new key pair ``name`` in ``directory``; FileExistsError when either file is already there."""
    public_file, secret_file = directory / f"{name}{PUBLIC_SUFFIX}", directory / f"{name}{SECRET_SUFFIX}"
    for path in (public_file, secret_file):
        if path.exists():
            raise FileExistsError(f"{path} exists; keys are never overwritten: to rotate it, delete "
                                  f"{public_file.name} and {secret_file.name} first")
    with _private_files():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        made_public, made_secret = zmq.auth.create_certificates(directory, name)
    os.chmod(made_secret, 0o600)
    os.chmod(made_public, 0o644)  # the public half is meant to be copied
    return Path(made_public), Path(made_secret)


def _create(directory: Path, names: list[str], skip_existing: bool) -> int:
    status = 0
    for name in names:
        if not is_key_name(name):
            print(f"fixmesh keys: {name!r} is not a key name: use letters, digits, '-' and '_'", file=sys.stderr)
            status = 1
            continue
        if skip_existing and (directory / f"{name}{PUBLIC_SUFFIX}").exists():
            print(f"{name}: exists ({directory / (name + PUBLIC_SUFFIX)})")
            continue
        try:
            public_file, secret_file = create(directory, name)
        except (FileExistsError, OSError) as exc:
            print(f"fixmesh keys: {exc}", file=sys.stderr)
            status = 1
            continue
        public_key, _ = zmq.auth.load_certificate(public_file)
        print(f"{name}: created {public_file} (public) and {secret_file} (secret, mode 0600), "
              f"{protocol.key_fingerprint(public_key)}")
    return status


def _list(directory: Path, roles: dict[str, str]) -> int:
    names = sorted({p.name[: -len(PUBLIC_SUFFIX)] for p in directory.glob(f"*{PUBLIC_SUFFIX}")} |
                   {p.name[: -len(SECRET_SUFFIX)] for p in directory.glob(f"*{SECRET_SUFFIX}")} | set(roles))
    if not names:
        print(f"no keys in {directory}")
        return 0
    missing = False
    for name in names:
        public_file, secret_file = directory / f"{name}{PUBLIC_SUFFIX}", directory / f"{name}{SECRET_SUFFIX}"
        try:
            public_key, _ = zmq.auth.load_certificate(public_file)
            fingerprint = protocol.key_fingerprint(public_key)
        except (OSError, ValueError):
            fingerprint = "no public key"
            missing = missing or name in roles
        if secret_file.exists():
            mode = stat.S_IMODE(secret_file.stat().st_mode)
            secret = f"secret {mode:04o}" + (" (readable by others: chmod 600)" if mode & 0o077 else "")
        else:
            secret = "no secret here"
        role = roles.get(name, "not in the topology" if roles else "")
        print(f"{name:<20} {fingerprint:<24} {secret:<20} {role}".rstrip())
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fixmesh keys", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("create", help="create key pairs")
    make.add_argument("names", nargs="*", metavar="NAME")
    show = commands.add_parser("list", help="list the keys of a folder")
    for sub in (make, show):
        where = sub.add_mutually_exclusive_group()
        where.add_argument("--dir", help=f"the keys folder (default: {DEFAULT_DIR})")
        where.add_argument("--config", help="a topology: its bus.keys_dir, and the keys it names")
    args = parser.parse_args(argv)
    roles: dict[str, str] = {}
    if args.config is not None:
        from actors.gateway.topology import ConfigError, load_topology

        try:
            topology = load_topology(args.config)
        except ConfigError as exc:
            print(f"fixmesh keys: {exc}", file=sys.stderr)
            return 2
        if topology.bus is None:
            print(f"fixmesh keys: {args.config}: the topology has no bus: section, so its bus uses no keys; add "
                  "bus: {keys_dir: FOLDER} (docs/bus.md)", file=sys.stderr)
            return 2
        directory = topology.bus.keys_dir
        roles = topology_keys(topology)
    else:
        directory = Path(args.dir or DEFAULT_DIR)
    if args.command == "create":
        names = args.names or list(roles)
        if not names:
            parser.error("create: name the keys, or give --config to create every key of a topology")
        return _create(directory, names, skip_existing=not args.names)
    return _list(directory, roles)


if __name__ == "__main__":
    sys.exit(main())
