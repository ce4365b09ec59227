"""The session core is pure: it imports no I/O, clock or serialisation library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ["socket", "select", "selectors", "asyncio", "threading", "zmq", "msgpack", "yaml", "time",
             "actors.store", "actors.shell.driver", "actors.shell.clock", "broker"]


def test_core_imports_nothing_with_side_effects() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import actors.fix.session, actors.fix.codec, actors.fix.validation, actors.fix.dictionary\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    bad = sorted(m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + "."))
    assert not bad, f"actors.fix imported {bad}"


def test_core_source_reads_no_clock() -> None:
    for path in (ROOT / "actors" / "fix").glob("*.py"):
        text = path.read_text()
        for needle in ("time.time(", "time.monotonic(", "datetime.now(", "datetime.utcnow(", "open("):
            assert needle not in text, f"{path.name} uses {needle}"


def test_broker_never_imports_actors() -> None:
    for path in (ROOT / "broker").rglob("*.py"):
        assert "import actors" not in path.read_text() and "from actors" not in path.read_text(), path
