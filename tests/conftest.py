"""Suite-wide settings.

Property tests run on a 2-core machine that the process-level tests keep
busy: Hypothesis's "generation is slow" health check and per-example
deadlines measure that machine's load, not the code, so they are off. The
number of examples, and every assertion, stay as each test sets them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.interop import Children

settings.register_profile(
    "fixmesh", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("fixmesh")


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    """Processes a test starts; every one still running at the end is stopped by its pid."""
    group = Children(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()
