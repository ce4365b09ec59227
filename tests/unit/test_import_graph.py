"""The dependency rule of the rooms, read from the source (``actors/__init__.py`` states it).

Every ``import`` of every module of ``actors/`` and ``broker/`` (at any depth,
lazy imports included) is checked against what its room may import. Nothing
imports upward: the core knows nothing of the store, the shell nothing of
the bus, the gateway nothing of the broker's loop, and no product room knows
the tools or the simulators.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Room -> the rooms it may import (its own included). A room is the longest matching prefix below.
ALLOWED: dict[str, frozenset[str]] = {
    "actors.fix": frozenset({"actors.fix"}),
    "actors.store": frozenset({"actors.fix", "actors.store"}),
    "actors.shell": frozenset({"actors.fix", "actors.store", "actors.shell"}),
    "actors.gateway": frozenset({"actors.fix", "actors.store", "actors.shell", "actors.gateway", "broker.protocol"}),
    "actors.tools": frozenset({"actors.fix", "actors.store", "actors.shell", "actors.gateway", "actors.tools",
                               "broker.protocol"}),
    "actors.sim": frozenset({"actors.fix", "actors.store", "actors.shell", "actors.sim"}),
    "actors.cli": frozenset(),  # the front door imports its commands by name, through importlib
    "actors": frozenset(),  # the package's own __init__ holds only the map of the rooms
    "broker.protocol": frozenset({"broker.protocol"}),
    "broker": frozenset({"broker"}),
}
PROJECT = ("actors", "broker")


def room_of(module: str) -> str:
    """The room a dotted module name belongs to (``actors.shell.driver`` -> ``actors.shell``)."""
    matches = [room for room in ALLOWED if module == room or module.startswith(room + ".")]
    if not matches:
        raise AssertionError(f"{module} belongs to no room; add its room to ALLOWED and to actors/__init__.py")
    return max(matches, key=len)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import of a project module in ``path``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from actors.shell import clock`` imports actors.shell.clock: judge the fullest name.
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in PROJECT]


def allowed(importer_room: str, name: str) -> bool:
    targets = ALLOWED[importer_room]
    return any(name == room or name.startswith(room + ".") for room in targets)


MODULES = sorted(p for package in PROJECT for p in (ROOT / package).rglob("*.py"))


def test_every_module_is_in_a_room() -> None:
    assert MODULES, "no modules found"
    for path in MODULES:
        room_of(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_outside_its_room_rule(path: Path) -> None:
    importer = room_of(module_name(path))
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {name}" for line, name in project_imports(path)
             if not allowed(importer, name)]
    assert not wrong, f"{importer} may import only {sorted(ALLOWED[importer])}:\n" + "\n".join(wrong)


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an import the rule forbids is reported, one it allows is not."""
    source = tmp_path / "upward.py"
    source.write_text("from actors.gateway.topology import Topology\nfrom actors.fix import tags\n")
    names = [name for _line, name in project_imports(source)]
    assert names == ["actors.gateway.topology.Topology", "actors.fix.tags"]
    assert not allowed("actors.shell", names[0])
    assert allowed("actors.shell", names[1])
    assert not allowed("actors.gateway", "broker.broker.Broker")
    assert allowed("actors.gateway", "broker.protocol.Envelope")
