"""QuickFIX's acceptance scripts against the real acceptor process, one test per ``.def`` file.

Each folder gets its own acceptor process and its files play serially in
sorted order, because the scripts of a folder share one session (FORMAT.md
section 5). The folders share nothing, so they play at the same time: the
first test plays every selected script and each test then reports its own.
The scripts that wait out heartbeat intervals (about 46 s in each of fix42
and fix44) then overlap instead of adding up. Missing scripts fail the run
rather than skip it: a conformance suite that silently runs nothing would
report a pass for an untested gateway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.selection import selected_cases

from . import conformance_dir, missing_conformance_data
from .conftest import AcceptorProcess, AcceptorSpec, AcceptorUnavailable
from .player import load_field_patterns, play_file
from .script import FieldPatterns

#: The longest folder plays in about 50 s; each wait inside a script is bounded by the player (15 s at most).
RUN_TIMEOUT_S = 300


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


class Run:
    """The selected scripts, played on first use: each folder against its own acceptor, the folders at once."""

    def __init__(self, selected: list[Case], make_work_dir: Callable[[str], Path]) -> None:
        self._selected = selected
        self._make_work_dir = make_work_dir
        self._failures: dict[str, str | None] | None = None
        self._threads: list[threading.Thread] = []

    def failure(self, case: Case) -> str | None:
        """None if the script passed, else the player's report and the acceptor's command and log tail."""
        if self._failures is None:
            self._failures = {}
            self._play_all(self._failures)
        return self._failures.get(case.id, f"{case.id} did not finish within {RUN_TIMEOUT_S - 30} s")

    def _play_all(self, failures: dict[str, str | None]) -> None:
        try:
            patterns = load_field_patterns(CONFORMANCE_DIR / "definitions" / "fields.fmt")
        except (OSError, ValueError) as error:
            failures.update((c.id, f"cannot read fields.fmt: {error}") for c in self._selected)
            return
        folders: dict[Suite, list[Case]] = {}
        for case in self._selected:
            if case.suite is not None and case.path is not None:
                folders.setdefault(case.suite, []).append(case)
        # pytest's tmp_path_factory makes its base directory on first use and is not thread-safe:
        # every work directory is made here, before any player thread starts.
        work_dirs = {suite: self._make_work_dir(suite.folder) for suite in folders}
        for suite, cases in folders.items():
            thread = threading.Thread(target=self._play_folder,
                                      args=(suite, cases, work_dirs[suite], patterns, failures),
                                      name=f"conformance-{suite.label}", daemon=True)
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + RUN_TIMEOUT_S - 30
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _play_folder(self, suite: Suite, cases: list[Case], work_dir: Path, patterns: FieldPatterns,
                     failures: dict[str, str | None]) -> None:
        """Serially, in sorted order; an acceptor that did not start or has died fails the rest with its report."""
        spec = AcceptorSpec(suite.folder, suite.fix_version, CONFORMANCE_DIR / "spec")
        acceptor: AcceptorProcess | None = None
        try:
            acceptor = AcceptorProcess(spec, work_dir)
            acceptor.wait_until_listening()
            for case in cases:
                assert case.path is not None
                if acceptor.exit_code is not None:
                    raise AcceptorUnavailable(acceptor.report(f"acceptor exited with code {acceptor.exit_code}"))
                outcome = play_file(case.path, acceptor.host, acceptor.port, patterns, name=case.id)
                failures[case.id] = None if outcome.failure is None else (
                    f"{outcome.describe()}\n\n{acceptor.report('the acceptor this script played against:')}")
        except (OSError, AcceptorUnavailable) as error:
            for case in cases:
                failures.setdefault(case.id, str(error))
        except Exception as error:  # a defect of the player: said in each remaining test, not as a silent thread
            for case in cases:
                failures.setdefault(case.id, f"the player failed: {error!r}")
            raise
        finally:
            if acceptor is not None:
                acceptor.stop()

    def close(self) -> None:
        for thread in self._threads:
            thread.join(RUN_TIMEOUT_S)


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Only the scripts pytest selected (``-k fix44``) are played; each folder's acceptor stops after its last."""
    state = Run(selected_cases(request, Case),
                lambda name: tmp_path_factory.mktemp("acceptor-" + name.replace("/", "-")))
    try:
        yield state
    finally:
        state.close()


@pytest.mark.conformance
@pytest.mark.timeout(RUN_TIMEOUT_S)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_script(case: Case, run: Run) -> None:
    if case.problem is not None or case.suite is None or case.path is None:
        pytest.fail(case.problem or "incomplete test case", pytrace=False)
    failure = run.failure(case)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
