"""Suite-wide settings.

Property tests run on a 2-core machine that the process-level tests keep
busy: Hypothesis's "generation is slow" health check and per-example
deadlines measure that machine's load, not the code, so they are off. The
number of examples, and every assertion, stay as each test sets them.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fixmesh", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile("fixmesh")
