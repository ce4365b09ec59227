"""``fixmesh broker``: the bus broker, started from a topology or from its endpoints.

    fixmesh broker --config deploy/topology.yaml [--backup] [--log-level INFO]
    fixmesh broker [--router ...] [--xsub ...] [--xpub ...] [--policy FILE] [--log-level INFO]

The broker (``python -m broker``) knows nothing of topologies, sessions or
pairs: it routes envelopes and enforces the rights of keys it is given. With
``--config`` this program reads the topology once, takes the broker's
endpoints from ``broker:`` and, on a bus with keys (``bus:``), every key's
rights (``Topology.bus_principals``), writes them with the broker's key file
to ``<runtime_dir>/broker-policy.json`` and replaces itself with the broker
(``exec``: the process supervisord watches is the broker). A topology
mistake or a missing key file stops it here, exit status 2, with one line
naming the file, the key and the fix. Without ``--config`` the arguments go
to the broker unchanged.

With ``broker.backup`` in the topology the brokers are a pair: ``fixmesh
broker --config T`` runs the primary (on ``broker:``'s endpoints, its state
told on ``broker.peer``), ``fixmesh broker --config T --backup`` the backup
(on ``broker.backup``'s, its state on ``broker.backup.peer``). Both use the
broker's key pair on a bus with keys, so every client needs only the one
broker public key; each writes its own policy file (``broker-policy.json``,
``broker-backup-policy.json``) in case both run on one host.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

POLICY_FILE = "broker-policy.json"
BACKUP_POLICY_FILE = "broker-backup-policy.json"


def broker_command(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "broker", *argv]


def write_policy(path: Path, text: str) -> None:
    """Whole or not at all: the broker never reads a half-written policy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--config" or a.startswith("--config=") for a in args):
        os.execv(sys.executable, broker_command(args))
    # Only now: the broker's own start (exec'd above) should not wait for the topology's imports.
    from actors.gateway.topology import ConfigError, load_topology
    parser = argparse.ArgumentParser(prog="fixmesh broker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the topology YAML file")
    parser.add_argument("--backup", action="store_true",
                        help="run the backup broker of the pair (broker.backup); default: the primary")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    options = parser.parse_args(args)
    try:
        topology = load_topology(options.config)
        policy = topology.bus_policy()
    except ConfigError as exc:
        print(f"fixmesh broker: {exc}", file=sys.stderr)
        return 2
    broker = topology.broker
    backup = broker.backup
    if options.backup and backup is None:
        print(f"fixmesh broker: {topology.path}: broker.backup: missing; --backup runs the backup broker of a pair, "
              "which the topology does not have (docs/bus.md)", file=sys.stderr)
        return 2
    if options.backup and backup is not None:
        command = ["--router", backup.router, "--xsub", backup.xsub, "--xpub", backup.xpub,
                   "--role", "backup", "--peer-bind", backup.peer, "--peer-connect", str(broker.peer)]
    else:
        command = ["--router", broker.router, "--xsub", broker.xsub, "--xpub", broker.xpub]
        if backup is not None:
            command += ["--role", "primary", "--peer-bind", str(broker.peer), "--peer-connect", backup.peer]
    command += ["--log-level", options.log_level]
    if policy is not None:
        path = topology.runtime_dir / (BACKUP_POLICY_FILE if options.backup else POLICY_FILE)
        try:
            write_policy(path, policy.to_json())
        except OSError as exc:
            print(f"fixmesh broker: cannot write the bus policy {path} ({exc.strerror}); check runtime_dir in "
                  f"{topology.path}", file=sys.stderr)
            return 2
        command += ["--policy", str(path)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, broker_command(command))


if __name__ == "__main__":
    sys.exit(main())
