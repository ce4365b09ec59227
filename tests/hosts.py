"""Several hosts on one machine for the system tests: ``bench.netns`` (network namespaces on a bridge), failing
the test when namespaces cannot be made.

    with Hosts(["a", "b", "c"], tmp_path, children) as hosts:
        hosts.address("a")                               # 198.18.N.1: this run's address of host a
        hosts.start("b", "supervisord", [...], env=..., cwd=...)  # a process inside host b (a ``Child``)
        hosts.cut("c"); hosts.heal("c"); hosts.kill("b")

The machinery lives in ``bench/netns.py`` because the chaos run
(``python -m bench.chaos``) uses it too, and a program must not import the
tests. What this adapter adds: without root or iproute2 the test fails with
the reason (CI runs as root, and these tests must not pass by skipping).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from bench import netns
from tests.interop import Children


class Hosts(netns.Hosts):
    """``bench.netns.Hosts`` started with the test's children; namespaces that cannot be made fail the test."""

    def __init__(self, names: Sequence[str], directory: Path, children: Children) -> None:
        try:
            super().__init__(names, directory, children)
        except netns.NamespacesUnavailable as exc:
            pytest.fail(f"{exc} (CI runs as root)", pytrace=False)
