"""Build hook: compiles the session core with mypyc (``actors/fix/native.py`` names the modules).

Everything else about the package is in pyproject.toml. ``FIXMESH_PURE_PYTHON=1``
at install time skips compiling; fixmesh then runs the same source as plain Python.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = HERE / "actors" / "fix"
# Run by path: importing the package would run its stale-build check on the build's own input.
native = runpy.run_path(str(PACKAGE_DIR / "native.py"))

if os.environ.get(native["PURE_PYTHON_ENV"]):
    native["remove_build_record"](PACKAGE_DIR)
    setup()
else:
    from mypyc.build import mypycify

    modules = [f"actors/fix/{name}.py" for name in native["COMPILED_MODULES"]]
    extensions = mypycify(modules, group_name="fixmesh_core")
    native["write_build_record"](PACKAGE_DIR)
    setup(ext_modules=extensions)
