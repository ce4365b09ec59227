"""What each program reads from the topology, as a short digest: the key to reloading only what changed.

``fixmesh deploy render`` writes each program's digest into its section of
the supervisord configuration (``environment=FIXMESH_SETTINGS_DIGEST=...``).
supervisord compares sections when it rereads its configuration, so a
program whose digest is unchanged keeps running through ``fixmesh deploy
reload``, and one whose digest changed is restarted (``actors.tools.reload``).
A digest covers what the program reads from the topology when it starts:

* a session: its own resolved settings (its ``defaults:`` and pair
  included: the peer is a setting), the broker's endpoints, the bus's key
  folder and broker key, the runtime folder and whether its port is shared;
* the broker (and the backup): the broker's settings and, on a bus with
  keys, every principal's rights (the sessions, their peers, the pairs, the
  operators and subscribers), which it computes at start;
* a coordinator (a program whose command is ``coordinator``): the broker's
  endpoints and the bus's keys, not the pairs: it re-reads those on SIGHUP
  without a restart (``reload`` sends it);
* the listener: the shared ports and how it tells their sessions apart;
* the monitor: the broker's endpoints and the bus's keys;
* metrics, and any other program given ``--config``: the whole topology;
  a program of ``programs:`` whose command does not name the topology: only
  its own entry there (its section changes with its command anyway).

Files behind unchanged paths (a dictionary, a certificate) are not read:
their paths are in the digest, their contents are not, so an edited file
needs ``supervisorctl restart NAME``. The digest is a SHA-256 of a
canonical JSON form, the same in every process and on every machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any

from actors.gateway.topology import Topology

#: The variable each program's section sets; its value is the program's digest.
DIGEST_ENV = "FIXMESH_SETTINGS_DIGEST"
#: Hex digits kept of the SHA-256: 64 bits, far beyond any chance of two settings colliding.
DIGEST_CHARS = 16


def canonical(value: object, base: PurePath | None = None) -> Any:
    """``value`` as JSON-ready data that is the same for equal settings in any process (no hash order, no ids).

    A path is written relative to ``base``, the topology's folder (the loader resolves the file's
    relative paths against it), so the same deployment copied elsewhere has the same digests.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return canonical(value.value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, PurePath):
        return str(value) if base is None else f"<topology>/{os.path.relpath(value, base)}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: canonical(getattr(value, f.name), base) for f in dataclasses.fields(value)}
        return {"__": type(value).__name__, **fields}
    if isinstance(value, Mapping):
        return {str(k): canonical(v, base) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((canonical(v, base) for v in value), key=_text)
    if isinstance(value, list | tuple):
        return [canonical(v, base) for v in value]
    text = str(value)
    if " at 0x" in text:  # an object's default text names its address: different in every process
        raise TypeError(f"no canonical form for {type(value).__name__}: {text}")
    return f"{type(value).__name__}:{text}"


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def digest(value: object, base: PurePath | None = None) -> str:
    return hashlib.sha256(_text(canonical(value, base)).encode()).hexdigest()[:DIGEST_CHARS]


def _bus(topology: Topology) -> dict[str, Any]:
    """What every bus client reads: where the brokers are and where its key is."""
    b, bus = topology.broker, topology.bus
    return {"broker": [b.router, b.xsub, b.xpub],
            "backup": None if b.backup is None else [b.backup.router, b.backup.xsub, b.backup.xpub],
            "keys": None if bus is None else [bus.keys_dir, bus.broker_key]}


def _rights(topology: Topology) -> dict[str, Any] | None:
    """What the broker of a bus with keys derives every principal's rights from (``Topology.bus_principals``)."""
    if topology.bus is None:
        return None
    return {"sessions": {name: s.peer for name, s in topology.sessions.items()},
            "pairs": [[p.handler, p.driven] for p in topology.pairs],
            "operators": topology.bus.operators, "subscribers": topology.bus.subscribers}


def _shared_ports(topology: Topology) -> list[Any]:
    """What the listener serves: each shared port and how it tells its sessions apart."""
    out = []
    for (host, port), names in sorted(topology.shared_ports().items()):
        sessions = []
        for name in names:
            s = topology.sessions[name]
            c = s.config
            sessions.append([name, c.begin_string, c.sender_comp_id, c.target_comp_id, c.session_qualifier,
                             c.qualifier_tag, c.logon_timeout_s, s.max_pending_connections])
        out.append([host, port, sessions])
    return out


def whole(topology: Topology) -> str:
    """Every setting of the topology (its file's path aside)."""
    return digest({f.name: getattr(topology, f.name) for f in dataclasses.fields(topology) if f.name != "path"},
                  _base(topology))


def _base(topology: Topology) -> PurePath:
    return topology.path.resolve().parent


def program_digest(topology: Topology, name: str) -> str:
    """The digest of what program ``name`` (a session, ``broker``, ``coordinator``, ...) reads from ``topology``."""
    base = _base(topology)
    if name in topology.sessions:
        return digest({"session": topology.sessions[name], "bus": _bus(topology), "runtime": topology.runtime_dir,
                       "shared": topology.port_is_shared(name)}, base)
    if name in ("broker", "broker-backup"):
        return digest({"broker": topology.broker, "bus": topology.bus, "rights": _rights(topology)}, base)
    if name == "listener":
        return digest({"runtime": topology.runtime_dir, "ports": _shared_ports(topology)}, base)
    program = topology.programs.get(name)
    kind = program_kind(topology, name)
    if program is not None and kind in ("coordinator", "monitor"):
        return digest({kind: _bus(topology), "program": program}, base)
    if program is not None and program.command is not None and "--config" not in program.command.split():
        return digest({"program": program}, base)  # it does not read the topology (a venue simulator, say)
    return whole(topology)


def program_kind(topology: Topology, name: str) -> str:
    """The fixmesh command a program of ``programs:`` runs (``coordinator`` for ``coordinator-b`` too)."""
    program = topology.programs.get(name)
    if program is None or program.command is None:
        return name
    words = program.command.split()
    return words[0] if words else name

