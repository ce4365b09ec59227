"""fixmesh's acceptor for the differential test, run as its own process.

    python -m tests.differential.fm_acceptor --port 5002 --sessions sessions.json

The acceptor of ``fixmesh acceptance-server`` (the same ``SessionHost``, the
same echo application and application MsgTypes) with the sessions of the
sessions file instead of the acceptance scripts' fixed ones: one per
(version, scenario), each with its version's dictionaries and a memory store,
every other setting at fixmesh's default (``SessionConfig``,
``ValidationOptions``). That is what lets every scenario start on a fresh
session; ``qf_acceptor`` configures QuickFIX the same way. SIGTERM logs out
what is logged on and exits 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from actors.fix.config import Role, SessionConfig
from actors.shell.host import AcceptorSpec, HostSpec, SessionHost, SessionSpec, StoreSpec
from actors.shell.process import configure_logging
from actors.sim.acceptance_server import ECHOED, EchoApplication
from tests.differential import read_sessions


def build(args: argparse.Namespace) -> SessionHost:
    sender, sessions = read_sessions(Path(args.sessions))
    host = SessionHost(HostSpec(listen=AcceptorSpec(args.host, args.port), stop_text="differential acceptor stopping"))
    for entry in sessions:
        config = SessionConfig(
            begin_string=entry.begin_string,
            sender_comp_id=sender,
            target_comp_id=entry.target_comp_id,
            role=Role.ACCEPTOR,
            default_appl_ver_id=entry.appl_ver_id,
            app_msg_types=ECHOED,
        )
        name = f"{entry.begin_string}-{sender}-{entry.target_comp_id}"
        spec = SessionSpec(name, config, StoreSpec("memory"), app_dictionary=entry.app_dictionary,
                           transport_dictionary=entry.transport_dictionary)
        host.add_session(spec, EchoApplication())
    return host


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.differential.fm_acceptor", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sessions", required=True, help="the sessions file (tests/differential/__init__.py)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    configure_logging(args.log_level)
    host = build(args)
    host.start()
    print(f"listening on {args.host}:{host.port} with {len(host.drivers)} sessions", flush=True)
    host.run(max_wait_s=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
