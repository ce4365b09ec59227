"""Round-trip client with N sessions in one process: the scale section's traders.

    python -m bench.multi_client --session TRADER1@P1 --session TRADER2@P2 ... --target GATEWAY \\
        --out-dir D --phase warm=paced:300:1 --phase run=paced:300:5

Each ``--session SENDER@PORT`` is one fixmesh initiator (SenderCompID
SENDER) on its own blocking socket to PORT; all of them run in one
``select`` loop (``bench.rt_client.Runner``). A paced phase's RATE is the
total: orders go to the sessions in turn, so each session carries RATE / N.
One process serves every session because fifty client processes would take
the machine's two cores from the gateway being measured. Events, phases and
``.lat`` files are those of ``bench.rt_client``; the latencies of a phase
mix all sessions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from actors.shell.process import configure_logging
from bench.fixmsg import exit_on_sigterm
from bench.rt_client import ClientSession, Runner


def session_arg(text: str) -> tuple[str, int]:
    """``SENDER@PORT`` -> (sender, port)."""
    sender, at, port = text.rpartition("@")
    if not at or not sender or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected SENDER@PORT, got {text!r}")
    return sender, int(port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.multi_client", description=__doc__.split("\n\n")[0])
    p.add_argument("--session", type=session_arg, action="append", required=True, metavar="SENDER@PORT",
                   help="one client session (repeatable)")
    p.add_argument("--target", default="GATEWAY", help="TargetCompID of every session")
    p.add_argument("--host", default="127.0.0.1", help="where every session connects (default 127.0.0.1)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--phase", action="append", default=[], help="name=paced:TOTAL_RATE:SECONDS or "
                                                                 "name=closed:WINDOW:N")
    p.add_argument("--data-dictionary")
    p.add_argument("--connect-timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    configure_logging("WARNING")
    exit_on_sigterm()
    sessions = [ClientSession(port, sender, args.target, args.data_dictionary, args.connect_timeout,
                              name=f"client-{sender}", host=args.host) for sender, port in args.session]
    Runner(sessions, Path(args.out_dir), args.connect_timeout).run(args.phase)
    return 0


if __name__ == "__main__":
    sys.exit(main())
