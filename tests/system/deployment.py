"""A deployment over namespace hosts for the system tests: ``bench.deployment`` (keys, rendered configurations,
one supervisord per host), with the test's children.

The class lives in ``bench/deployment.py`` because the chaos run
(``python -m bench.chaos``) deploys the same way and a program must not
import the tests; the tests keep importing it from here. The test's
``Children`` (``tests.interop``) start and watch the supervisords, so a
supervisord that dies fails the test's waits as any child does.
"""

from __future__ import annotations

from bench.deployment import FIXMESH, Deployment, DeploymentError

__all__ = ["FIXMESH", "Deployment", "DeploymentError"]
