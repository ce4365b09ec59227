"""``fixmesh listener --config T.yaml``: the shared ports of a topology.

For every TCP port that several acceptor sessions share (told apart by their
session qualifier), this process listens, reads each connection's Logon and
hands the connection to the session it names (``actors.shell.handoff``). A Logon
that names no configured session (an unknown qualifier, say) is closed with
nothing sent, and the log says why.

A shared port is served by one acceptor, so it has one set of connection
limits: the highest ``max_pending_connections`` and the longest
``logon_timeout`` of its sessions. Connections on a shared port are plain
TCP (the topology refuses ``tls`` there: TLS state cannot be handed over).
"""

from __future__ import annotations

import logging
import sys

from actors.fix.config import DEFAULT_QUALIFIER_TAG
from actors.gateway.program import start, topology_parser
from actors.gateway.topology import Topology
from actors.shell.acceptor import Acceptor, SessionKey
from actors.shell.handoff import HandoffTarget, handoff_path
from actors.shell.loop import Loop
from actors.shell.process import run_until_signalled

log = logging.getLogger("fixmesh.listener")


def build(topology: Topology, loop: Loop) -> list[Acceptor]:
    acceptors = []
    for (host, port), names in topology.shared_ports().items():
        targets: dict[SessionKey, HandoffTarget] = {}
        qualifier_tag = DEFAULT_QUALIFIER_TAG
        for name in names:
            c = topology.session(name).config
            qualifier_tag = c.qualifier_tag
            targets[SessionKey(c.begin_string, c.sender_comp_id, c.target_comp_id, c.session_qualifier)] = \
                HandoffTarget(name, handoff_path(topology.runtime_dir, name))
        sessions = [topology.session(name) for name in names]
        acceptors.append(Acceptor(
            loop, host, port, targets.get, qualifier_tag=qualifier_tag,
            logon_timeout_s=max(s.config.logon_timeout_s for s in sessions),
            max_pending_connections=max(s.max_pending_connections for s in sessions)))
        log.info("listening on %s:%d for %s", host, port, ", ".join(names))
    return acceptors


def main(argv: list[str] | None = None) -> int:
    started = start(topology_parser("fixmesh listener", __doc__), argv)
    if started is None:
        return 2
    _args, topology = started
    loop = Loop()
    acceptors = build(topology, loop)
    if not acceptors:
        log.info("no shared ports in %s; nothing to do", topology.path)
    run_until_signalled(loop)
    for acceptor in acceptors:
        acceptor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
