"""``fixmesh demo``: run the demo topology of ``supervisord.conf`` in the foreground.

Broker, a Handler/Driven pair (``deploy/topology.yaml``), a venue stand-in
and the monitor, each its own program. A trader can log on to
127.0.0.1:9876 as TRADER -> GATEWAY, for example with
``fixmesh endpoint --role initiator --port 9876 --sender TRADER --target GATEWAY --send 10``;
``var/log/monitor.log`` shows each step. Ctrl-C stops every program.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fixmesh demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "supervisord.conf"))
    args = parser.parse_args(argv)
    # supervisord finds `fixmesh` on PATH: the one installed beside this interpreter.
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, FIXMESH_ROOT=str(ROOT), PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")]))
    (ROOT / "var" / "log").mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)
    os.execvpe(sys.executable, [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", args.config], env)


if __name__ == "__main__":
    sys.exit(main())
