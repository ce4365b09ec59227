"""A deployment over namespace hosts for the system tests: ``bench.deployment`` (keys, rendered configurations,
one supervisord per host), with the test's children.

The class lives in ``bench/deployment.py`` because the chaos run
(``python -m bench.chaos``) deploys the same way and a program must not
import the tests; the tests keep importing it from here. The test's
``Children`` (``tests.interop``) start and watch the supervisords, so a
supervisord that dies fails the test's waits as any child does.

    @pytest.fixture
    def deployment(tmp_path, children):
        with deployed(tmp_path, children, topology=TOPOLOGY, programs=PROGRAMS, keys=KEYS, password=PASSWORD) as d:
            yield d
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from bench.deployment import FIXMESH, Deployment, DeploymentError
from tests.hosts import Hosts
from tests.interop import Children

__all__ = ["FIXMESH", "Deployment", "DeploymentError", "deployed"]

D = TypeVar("D", bound=Deployment)


@contextmanager
def deployed(tmp_path: Path, children: Children, *, topology: str, programs: Mapping[str, Sequence[str]],
             keys: Mapping[str, Sequence[str]], password: str, kind: type[D] = Deployment) -> Iterator[D]:
    """The hosts of ``programs`` made, the deployment (``kind``: a test's subclass) set up on them; every
    supervisord stopped at the end."""
    with Hosts(list(programs), tmp_path / "hosts", children) as hosts:
        deployment = kind(tmp_path, children, hosts, topology=topology, programs=programs, keys=keys,
                                password=password)
        try:
            yield deployment
        finally:
            deployment.stop()
