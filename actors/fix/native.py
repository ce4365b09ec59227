"""Which session-core modules are compiled with mypyc, and a guard against running stale builds.

The session core is plain Python written to ``mypy --strict``. Installing
fixmesh compiles the modules named here to C extensions with mypyc
(``setup.py``; docs/decisions.md, "Compiled session core"): the same source,
about a third less time per message. Python imports an extension module in
preference to the ``.py`` beside it, so an editable install whose sources
changed after the build would run the old code without a word. The build
therefore records each source's digest, and the package refuses to load an
extension whose source no longer matches, naming the file and the fix.

This module must not import anything from the package: ``setup.py`` runs it
by path before the package can be imported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any


def _builtin_sha256() -> Callable[[bytes | memoryview], Any]:
    """CPython's own SHA-256 (``_sha256``; ``_sha2`` from 3.12), not ``hashlib``'s.

    ``hashlib`` loads OpenSSL's libcrypto, about 3.5 MB resident in every
    process that imports it, and a session on plain TCP needs nothing else
    from it; the digests are the same.
    """
    for module, name in (("_sha256", "sha256"), ("_sha2", "sha256")):
        try:
            return getattr(__import__(module), name)  # type: ignore[no-any-return]
        except ImportError:
            continue
    import hashlib

    return hashlib.sha256


#: SHA-256 without OpenSSL: ``sha256(data).hexdigest()``.
sha256 = _builtin_sha256()

#: Modules of ``actors.fix`` compiled at install. Not here: ``hooks`` (applications
#: subclass it, which compiled classes do not allow), ``states`` (mypyc cannot compile
#: its exception, a RuntimeError subclass), ``outputs`` and ``config`` (measured
#: compiled: no gain) and ``dictionary`` (it runs once, when a dictionary is loaded).
COMPILED_MODULES: tuple[str, ...] = ("codec", "message", "tags", "timefmt", "validation", "session")
#: Written by the build beside the sources: module -> SHA-256 of the source it compiled.
BUILD_RECORD = "compiled.json"
#: Set to any value at install time to skip compiling (pure Python everywhere).
PURE_PYTHON_ENV = "FIXMESH_PURE_PYTHON"

PACKAGE_DIR = Path(__file__).resolve().parent


class StaleBuild(ImportError):
    """A compiled module does not match its source; the message says how to rebuild."""


def source_digests(package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    return {name: sha256((package_dir / f"{name}.py").read_bytes()).hexdigest()
            for name in COMPILED_MODULES}


def write_build_record(package_dir: Path = PACKAGE_DIR) -> None:
    (package_dir / BUILD_RECORD).write_text(json.dumps(source_digests(package_dir), indent=1, sort_keys=True) + "\n")


def remove_build_record(package_dir: Path = PACKAGE_DIR) -> None:
    (package_dir / BUILD_RECORD).unlink(missing_ok=True)


def extension_of(name: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The compiled module that Python would import for ``name``, if there is one."""
    for suffix in EXTENSION_SUFFIXES:
        path = package_dir / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def stale_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """One line per compiled module that would run other code than its source says."""
    compiled = {name: ext for name in COMPILED_MODULES if (ext := extension_of(name, package_dir)) is not None}
    if not compiled:
        return []
    try:
        recorded = json.loads((package_dir / BUILD_RECORD).read_text())
    except (OSError, ValueError):
        recorded = {}
    current = source_digests(package_dir)
    return [f"{package_dir / (name + '.py')} differs from what {ext.name} was compiled from"
            for name, ext in sorted(compiled.items()) if recorded.get(name) != current[name]]


def ensure_fresh(package_dir: Path = PACKAGE_DIR) -> None:
    problems = stale_modules(package_dir)
    if problems:
        raise StaleBuild(
            "stale compiled session core: " + "; ".join(problems)
            + ". Rebuild it (pip install -e . in the project), or delete those extension files to run the "
            f"pure-Python source (install with {PURE_PYTHON_ENV}=1 to skip compiling)"
        )


def compiled_modules() -> list[str]:
    """The session-core modules that run compiled in this process's install."""
    return [name for name in COMPILED_MODULES if extension_of(name) is not None]
