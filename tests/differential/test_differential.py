"""QuickFIX's acceptor and fixmesh's answer the same session scenarios alike, in every FIX version.

One test per (version, scenario): FIX.4.0 to FIX.4.4 and FIXT.1.1 with
DefaultApplVerID FIX.5.0, FIX.5.0SP1 and FIX.5.0SP2, times the scenarios of
``scenarios.py`` that apply to the version. Both acceptors run once for the
module (``engines.py``), with one session per selected pair; the first test
plays every selected pair against both, several at a time, and each test then
judges its own pair: no difference, or only the differences ``allowlist.py``
names with their reasons. A known fixmesh defect is an expected failure that
turns into a failure once the defect is gone, so that its entry is removed.

The ``fast`` scenarios run in every suite run; the others are marked slow.
Missing dictionaries fail the run, never skip it, and so does a missing
QuickFIX (it is a test dependency).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import quickfix as _quickfix  # noqa: F401  (a missing QuickFIX fails the suite, never skips it)

from tests.differential import VERSIONS, Version, missing_dictionaries, spec_dir
from tests.differential.allowlist import judge
from tests.differential.engines import Engines, Outcome, all_pairs, play_all, start_engines
from tests.differential.scenarios import Scenario
from tests.selection import selected_cases

pytestmark = [pytest.mark.interop]

#: Engine start (QuickFIX copies a FIX.5.0 dictionary per FIXT session) and the parallel play of every pair.
RUN_TIMEOUT_S = 600


@dataclass(frozen=True)
class Case:
    version: Version
    scenario: Scenario

    @property
    def id(self) -> str:
        return f"{self.version.key}-{self.scenario.name}"


CASES = [Case(v, s) for v, s in all_pairs()]


def _params() -> list[object]:
    return [
        pytest.param(case, id=case.id, marks=() if case.scenario.fast else (pytest.mark.slow,))
        for case in CASES
    ]


class Run:
    """The module's engines and the outcomes of the selected pairs, played on first use."""

    def __init__(self, selected: list[Case], work_dir_factory: pytest.TempPathFactory) -> None:
        self.selected = selected
        self._factory = work_dir_factory
        self._outcomes: dict[str, Outcome] | None = None
        self.engines: Engines | None = None

    def outcome(self, case: Case) -> Outcome:
        if self._outcomes is None:
            problem = missing_dictionaries(spec_dir())
            if problem is not None:
                pytest.fail(problem, pytrace=False)
            pairs = [(c.version, c.scenario) for c in self.selected]
            self.engines = start_engines(self._factory.mktemp("differential"), pairs)
            outcomes = play_all(self.engines, pairs)
            self.engines.check_alive()
            self._outcomes = {c.id: o for c, o in zip(self.selected, outcomes, strict=True)}
        return self._outcomes[case.id]

    def logs(self) -> str:
        if self.engines is None:
            return ""
        return f"acceptor logs: {self.engines.quickfix.log_path}, {self.engines.fixmesh.log_path}"

    def close(self) -> None:
        if self.engines is not None:
            self.engines.stop()


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Only the pairs pytest selected (``-m 'not slow'``, ``-k``) get sessions and are played."""
    state = Run(selected_cases(request, Case), tmp_path_factory)
    try:
        yield state
    finally:
        state.close()


@pytest.mark.timeout(RUN_TIMEOUT_S)
@pytest.mark.parametrize("case", _params())
def test_same_replies(case: Case, run: Run) -> None:
    outcome = run.outcome(case)
    verdict = judge(outcome)
    if verdict.defect is not None:
        pytest.xfail(f"known fixmesh defect: {verdict.defect.summary} (tests/differential/allowlist.py)")
    assert verdict.ok, f"{verdict.summary}: {verdict.message}\n{outcome.report()}\n{run.logs()}"


def test_every_version_has_scenarios() -> None:
    """Each version plays the shared scenarios; the version-specific ones only add to them."""
    for version in VERSIONS:
        names = {c.scenario.name for c in CASES if c.version == version}
        assert len(names) >= 90, f"FIX {version.key}: only {len(names)} scenarios"
        assert {"logon_plain", "seq_too_high", "resend_mixed", "reject_invalid_tag", "app_unsupported"} <= names
