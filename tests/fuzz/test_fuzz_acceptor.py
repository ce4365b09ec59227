"""A short run of the fuzzer against live acceptors (FIX.4.4 and FIXT.1.1 endpoints, validation on).

The long run (at least 100,000 inputs) is ``python -m tests.fuzz --inputs 100000 --seed S``; its
figures are in ``docs/fuzzing.md``. This one plays a few thousand inputs of a fixed seed
(``FIXMESH_FUZZ_SEED`` picks another) and asserts what the long run reports: no crash, no
finding (a wrong answer, a malformed or invalid message, a gap in the acceptor's numbers, a
traceback in its log), memory within the bound, and a clean session afterwards whose numbers and
store agree with the wire, also after a restart.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fuzz.__main__ import run
from tests.fuzz.runner import figures_table
from tests.fuzz.targets import environment_ready

pytestmark = [pytest.mark.slow, pytest.mark.skipif(environment_ready() is not None,
                                                   reason=environment_ready() or "")]

INPUTS = 2400
SEED = int(os.environ.get("FIXMESH_FUZZ_SEED", "20261130"))
MAX_RSS_GROWTH_MIB = 128


def test_a_short_fuzz_run_against_live_acceptors_finds_nothing(tmp_path: Path) -> None:
    results = run(INPUTS, SEED, work=tmp_path, max_rss_growth_mib=MAX_RSS_GROWTH_MIB, log=False)
    table = figures_table(results)
    print(table)
    assert sum(f.inputs for f in results) == INPUTS
    for figures in results:
        reports = "\n".join(finding.report() for finding in figures.findings[:20])
        assert figures.crashes == 0, f"{figures.version}: the acceptor crashed\n{reports}"
        assert not figures.findings, f"{figures.version}: {len(figures.findings)} findings\n{reports}\n{table}"
        assert figures.clean_session == "consistent", figures.clean_session
        assert figures.peak_rss_kib - figures.start_rss_kib < MAX_RSS_GROWTH_MIB * 1024, table
        # Every kind of answer the FIX spec gives to hostile input came up, so the run reached them.
        for kind in ("silence", "reject", "logout", "resend_request", "heartbeat", "logon", "disconnect"):
            assert figures.answers[kind] > 0, f"{figures.version}: no {kind!r} answer in the run\n{table}"
