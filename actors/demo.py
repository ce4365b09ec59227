"""``fixmesh demo``: run the demo topology of ``supervisord.conf`` in the foreground.

The topology grows with the gateway; today it is the FIX.4.4 acceptor of the
acceptance scripts on 127.0.0.1:9880 (SenderCompID ISLD, TargetCompID TW44),
which any FIX 4.4 initiator can log on to. Ctrl-C stops every program.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fixmesh demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "supervisord.conf"))
    args = parser.parse_args(argv)
    conformance = os.environ.get("FIXMESH_CONFORMANCE_DIR", str(ROOT.parent / "shared" / "conformance" / "quickfix"))
    if not (Path(conformance) / "spec" / "FIX44.xml").is_file():
        print(f"fixmesh demo: data dictionaries not found in {conformance}/spec; set FIXMESH_CONFORMANCE_DIR",
              file=sys.stderr)
        return 1
    env = dict(os.environ, FIXMESH_CONFORMANCE_DIR=conformance, FIXMESH_ROOT=str(ROOT),
               FIXMESH_PYTHON=sys.executable)
    (ROOT / "var" / "log").mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)
    os.execvpe(sys.executable, [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", args.config], env)


if __name__ == "__main__":
    sys.exit(main())
