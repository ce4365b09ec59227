"""The broker's routing table and liveness, without sockets: steps of (operation, arguments, expected result).

Time is a plain number, so a three-second silence is a subtraction, not a sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.protocol import HEARTBEAT_INTERVAL_S, LIVENESS
from broker.routing import Leases, RoutingTable

LIMIT_S = HEARTBEAT_INTERVAL_S * LIVENESS

Step = tuple[str, tuple[Any, ...], Any]

SCENARIOS: dict[str, list[Step]] = {
    "an unknown actor is not routable": [
        ("route", ("a",), None),
        ("seen", ("a", 0.0), False),
        ("expire", (100.0,), []),
        ("deadline", (), None),
    ],
    "hello makes an actor up and routable": [
        ("hello", ("a", b"a", 0.0), True),
        ("route", ("a",), b"a"),
        ("up", (), ["a"]),
        ("deadline", (), LIMIT_S),
    ],
    "silent just under the limit stays up": [
        ("hello", ("a", b"a", 0.0), True),
        ("expire", (LIMIT_S - 0.001,), []),
        ("route", ("a",), b"a"),
    ],
    "silent for the limit goes down, reported once": [
        ("hello", ("a", b"a", 0.0), True),
        ("expire", (LIMIT_S,), ["a"]),
        ("expire", (LIMIT_S + 10,), []),
        ("route", ("a",), None),
        ("deadline", (), None),
    ],
    "being seen postpones the deadline, found when the old one is looked at": [
        ("hello", ("a", b"a", 0.0), True),
        ("seen", ("a", 2.0), True),
        ("deadline", (), LIMIT_S),
        ("expire", (LIMIT_S,), []),
        ("deadline", (), 2.0 + LIMIT_S),
        ("expire", (2.0 + LIMIT_S - 0.001,), []),
        ("expire", (2.0 + LIMIT_S,), ["a"]),
        ("deadline", (), None),
    ],
    "being seen does not revive a down actor": [
        ("hello", ("a", b"a", 0.0), True),
        ("expire", (LIMIT_S,), ["a"]),
        ("seen", ("a", LIMIT_S + 0.5), False),
        ("route", ("a",), None),
    ],
    "a hello after down is a return": [
        ("hello", ("a", b"a", 0.0), True),
        ("expire", (LIMIT_S,), ["a"]),
        ("hello", ("a", b"a", 5.0), True),
        ("route", ("a",), b"a"),
        ("deadline", (), 5.0 + LIMIT_S),
    ],
    "a hello while up is a restart and takes the new identity": [
        ("hello", ("a", b"old", 0.0), True),
        ("hello", ("a", b"new", 1.0), False),
        ("route", ("a",), b"new"),
    ],
    "actors expire independently, names sorted": [
        ("hello", ("b", b"b", 0.0), True),
        ("hello", ("a", b"a", 0.0), True),
        ("hello", ("c", b"c", 1.0), True),
        ("deadline", (), LIMIT_S),
        ("expire", (LIMIT_S,), ["a", "b"]),
        ("up", (), ["c"]),
        ("deadline", (), 1.0 + LIMIT_S),
        ("expire", (1.0 + LIMIT_S,), ["c"]),
        ("up", (), []),
    ],
    "a late reading never moves last seen back": [
        ("hello", ("a", b"a", 5.0), True),
        ("seen", ("a", 1.0), True),
        ("deadline", (), 5.0 + LIMIT_S),
    ],
}


def run_step(table: RoutingTable, op: str, args: tuple[Any, ...]) -> Any:
    if op == "hello":
        return table.on_hello(*args)
    if op == "seen":
        return table.on_seen(*args)
    if op == "expire":
        return table.expire(*args)
    if op == "route":
        return table.route(*args)
    if op == "up":
        return table.up_names()
    if op == "deadline":
        return table.next_deadline()
    raise AssertionError(f"unknown step {op}")


@pytest.mark.parametrize("steps", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_scenario(steps: list[Step]) -> None:
    table = RoutingTable()
    for number, (op, args, expected) in enumerate(steps):
        assert run_step(table, op, args) == expected, f"step {number}: {op}{args}"


def test_the_limit_follows_interval_and_liveness() -> None:
    table = RoutingTable(heartbeat_interval_s=0.5, liveness=2)
    table.on_hello("a", b"a", 0.0)
    assert table.expire(0.99) == []
    assert table.expire(1.0) == ["a"]


@pytest.mark.parametrize(("interval_s", "liveness"), [(0.0, 3), (-1.0, 3), (1.0, 0)])
def test_nonsense_timing_is_refused(interval_s: float, liveness: int) -> None:
    with pytest.raises(ValueError):
        RoutingTable(heartbeat_interval_s=interval_s, liveness=liveness)


_names = st.sampled_from(["a", "b", "c"])
_ops = st.one_of(
    st.tuples(st.just("hello"), _names, st.floats(0, 2)),
    st.tuples(st.just("seen"), _names, st.floats(0, 2)),
    st.tuples(st.just("expire"), st.just(""), st.floats(0, 5)),
)


@given(st.lists(_ops, max_size=40))
def test_down_is_reported_once_per_up_and_route_matches_up(ops: list[tuple[str, str, float]]) -> None:
    """Whatever happens, ``expire`` reports exactly the up actors silent for the limit, each once between two
    hellos; no actor expires before ``next_deadline``; an actor is routable iff up."""
    table = RoutingTable()
    now_s = 0.0
    up: set[str] = set()
    last_seen: dict[str, float] = {}
    for op, name, step_s in ops:
        now_s += step_s
        if op == "hello":
            table.on_hello(name, name.encode(), now_s)
            up.add(name)
            last_seen[name] = now_s
        elif op == "seen":
            assert table.on_seen(name, now_s) == (name in up)
            if name in up:
                last_seen[name] = now_s
        else:
            silent = sorted(n for n in up if last_seen[n] + table.silence_limit_s <= now_s)
            assert table.expire(now_s) == silent
            up -= set(silent)
        deadline = table.next_deadline()
        assert (deadline is None) == (not up)
        assert deadline is None or deadline <= min(last_seen[n] + table.silence_limit_s for n in up)
        for each in "abc":
            assert (table.route(each) is not None) == (each in up) == table.is_up(each)


# ----------------------------------------------------------------- leases


def up_of(*names: str) -> Callable[[str], bool]:
    return set(names).__contains__


def test_a_lease_goes_to_the_first_asker_and_only_its_holder_may_command() -> None:
    leases = Leases()
    assert leases.ask("coordinator", "coordinator", up_of("coordinator"))
    assert not leases.ask("coordinator-b", "coordinator", up_of("coordinator", "coordinator-b"))
    assert leases.holder("coordinator") == "coordinator" and leases.holds("coordinator")
    assert leases.may_command("coordinator") and not leases.may_command("coordinator-b")
    assert leases.may_command("ctl-ops-42"), "an actor that asked for no lease commands as before"


def test_a_lease_passes_to_the_earliest_live_candidate_when_its_holder_goes_down() -> None:
    leases = Leases()
    everyone = up_of("a", "b", "c")
    assert leases.ask("a", "x", everyone)
    assert not leases.ask("b", "x", everyone) and not leases.ask("c", "x", everyone)
    assert leases.on_down(["a"], up_of("c")) == [("c", "x")], "b is down too: c, the next one up"
    assert leases.holds("c") and not leases.may_command("a")
    # The old holder comes back: the lease stays where it is.
    assert not leases.ask("a", "x", up_of("a", "c"))
    assert leases.on_down(["b"], up_of("a", "c")) == [], "a candidate without the lease went down"
    assert leases.on_down(["c"], up_of()) == [] and leases.holder("x") is None
    assert leases.ask("b", "x", up_of("b")), "a free lease goes to the next asker"


def test_a_restarted_holder_keeps_its_lease_and_a_dead_one_loses_it_to_an_asker() -> None:
    leases = Leases()
    assert leases.ask("a", "x", up_of("a"))
    assert leases.ask("a", "x", up_of("a")), "a hello from the holder's name again: a restart"
    assert leases.ask("b", "x", up_of("b")), "the holder is not up: the asker gets it"
    assert not leases.holds("a")
    leases.clear()
    assert leases.holder("x") is None and leases.may_command("a") and leases.asked("b") is None
