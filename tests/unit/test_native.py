"""The compiled session core: the installed build is the one the tests run, and a stale build refuses to load."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from actors.fix import native


def test_the_suite_runs_the_compiled_core_unless_built_pure() -> None:
    """An install compiles every listed module; only FIXMESH_PURE_PYTHON=1 at install leaves them plain."""
    if os.environ.get(native.PURE_PYTHON_ENV):
        pytest.skip(f"{native.PURE_PYTHON_ENV} is set: this run tests the pure-Python core")
    assert native.compiled_modules() == list(native.COMPILED_MODULES)
    import actors.fix.session

    assert actors.fix.session.__file__ is not None
    assert not actors.fix.session.__file__.endswith(".py")


def _fake_build(tmp_path: Path) -> Path:
    """The sources of the compiled modules, a stand-in extension for one of them, and a build record."""
    for name in native.COMPILED_MODULES:
        shutil.copy(native.PACKAGE_DIR / f"{name}.py", tmp_path / f"{name}.py")
    (tmp_path / f"codec{EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    native.write_build_record(tmp_path)
    return tmp_path


def test_a_build_that_matches_its_sources_loads(tmp_path: Path) -> None:
    native.ensure_fresh(_fake_build(tmp_path))


def test_pure_sources_without_any_extension_load_without_a_record(tmp_path: Path) -> None:
    for name in native.COMPILED_MODULES:
        shutil.copy(native.PACKAGE_DIR / f"{name}.py", tmp_path / f"{name}.py")
    native.ensure_fresh(tmp_path)


def test_a_source_edited_after_the_build_is_refused_with_the_file_and_the_fix(tmp_path: Path) -> None:
    package = _fake_build(tmp_path)
    with open(package / "codec.py", "a") as source:
        source.write("# edited\n")
    with pytest.raises(native.StaleBuild) as caught:
        native.ensure_fresh(package)
    text = str(caught.value)
    assert str(package / "codec.py") in text
    assert "pip install -e ." in text


def test_an_extension_without_a_build_record_is_refused(tmp_path: Path) -> None:
    package = _fake_build(tmp_path)
    native.remove_build_record(package)
    with pytest.raises(native.StaleBuild):
        native.ensure_fresh(package)


#: The tests of the compiled modules, run again below on their uncompiled source.
CORE_TESTS = ("tests/unit/test_codec.py", "tests/unit/test_validation.py", "tests/unit/test_session.py",
              "tests/unit/test_states.py", "tests/property/test_session_inputs.py")


def test_the_pure_python_source_passes_the_core_tests(tmp_path: Path) -> None:
    """What FIXMESH_PURE_PYTHON=1 installs: the same tests pass on the source without its extensions."""
    root = native.PACKAGE_DIR.parents[1]
    tree = tmp_path / "pure"
    shutil.copytree(root, tree, ignore=shutil.ignore_patterns(
        "*.so", "build", "var", ".git", "__pycache__", ".hypothesis", ".venv", "results", "*.egg-info"))
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    check = "import actors.fix.native as n, actors.fix.session as s; print(n.compiled_modules(), s.__file__)"
    probe = subprocess.run([sys.executable, "-c", check], cwd=tree, env=env, capture_output=True, text=True,
                           timeout=60)
    assert probe.stdout.startswith("[] "), probe.stdout + probe.stderr
    assert probe.stdout.strip().endswith("session.py")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CORE_TESTS], cwd=tree,
                         env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
