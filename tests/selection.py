"""Which parametrized cases pytest selected, for modules that play all their cases at once on first use.

The conformance scripts and the differential scenarios are played together
(against processes started once) by their module's first test; ``-k`` and
``-m 'not slow'`` must then narrow what is played, not only what is reported.
"""

from __future__ import annotations

from typing import TypeVar

import pytest

_Case = TypeVar("_Case")


def selected_cases(request: pytest.FixtureRequest, kind: type[_Case], param: str = "case") -> list[_Case]:
    """The ``param`` values of type ``kind`` of the module's selected tests, in collection order."""
    selected: list[_Case] = []
    for item in request.session.items:
        if isinstance(item, pytest.Function) and item.module is request.module and hasattr(item, "callspec"):
            case = item.callspec.params.get(param)
            if isinstance(case, kind):
                selected.append(case)
    return selected
