"""QuickFIX's acceptance scripts against the real acceptor process, one test per ``.def`` file.

Each folder gets its own acceptor process and its files play serially in
sorted order, because the scripts of a folder share one session (FORMAT.md
section 5). Missing scripts fail the run rather than skip it: a conformance
suite that silently runs nothing would report a pass for an untested gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from . import conformance_dir, missing_conformance_data
from .conftest import AcceptorPool, AcceptorSpec, AcceptorUnavailable
from .player import load_field_patterns, play_file
from .script import FieldPatterns

SCRIPT_TIMEOUT_S = 60


@dataclass(frozen=True)
class Suite:
    """A script folder under ``definitions/`` and the FIX version its acceptor is started with."""

    folder: str
    fix_version: str

    @property
    def label(self) -> str:
        return Path(self.folder).name


# validate/ logs on as TW and NO_CHECK_FIELDS_HAVE_VALUES, FIX.4.4 sessions (FORMAT.md section 5).
SUITES = (
    Suite("server/fix42", "4.2"),
    Suite("server/fix44", "4.4"),
    Suite("server/validate", "4.4"),
)


@dataclass(frozen=True)
class Case:
    """One test: a script of a suite, or a problem that must fail the run in its place."""

    suite: Suite | None
    path: Path | None
    problem: str | None = None

    @property
    def id(self) -> str:
        if self.path is not None and self.suite is not None:
            return f"{self.suite.label}/{self.path.name}"
        return f"{self.suite.label}/no-scripts" if self.suite is not None else "conformance-data-missing"


def collect_cases(directory: Path) -> list[Case]:
    """Every script of every suite, or one failing case per thing that is missing."""
    problem = missing_conformance_data(directory)
    if problem is not None:
        return [Case(None, None, problem)]
    cases: list[Case] = []
    for suite in SUITES:
        folder = directory / "definitions" / suite.folder
        scripts = sorted(folder.glob("*.def"))
        if not scripts:
            cases.append(Case(suite, None, f"no .def files in {folder} (conformance folder {directory})"))
        cases.extend(Case(suite, path) for path in scripts)
    return cases


CONFORMANCE_DIR = conformance_dir()
CASES = collect_cases(CONFORMANCE_DIR)


@cache
def field_patterns(directory: Path) -> FieldPatterns:
    """Read once: every script of every folder is compared with the same patterns."""
    return load_field_patterns(directory / "definitions" / "fields.fmt")


@pytest.mark.conformance
@pytest.mark.timeout(SCRIPT_TIMEOUT_S)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_script(case: Case, acceptors: AcceptorPool) -> None:
    if case.problem is not None or case.suite is None or case.path is None:
        pytest.fail(case.problem or "incomplete test case", pytrace=False)
    spec = AcceptorSpec(case.suite.folder, case.suite.fix_version, CONFORMANCE_DIR / "spec")
    try:
        patterns = field_patterns(CONFORMANCE_DIR)
        acceptor = acceptors.running(spec)
    except (OSError, ValueError, AcceptorUnavailable) as error:
        # The report already names the cause; the chained traceback would only repeat it.
        raise pytest.fail.Exception(str(error), pytrace=False) from None
    outcome = play_file(case.path, acceptor.host, acceptor.port, patterns, name=case.id)
    if outcome.failure is not None:
        context = acceptor.report("the acceptor this script played against:")
        pytest.fail(f"{outcome.describe()}\n\n{context}", pytrace=False)
