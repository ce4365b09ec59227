"""Random faults between two sessions never lose, repeat or reorder a message.

The link drops, duplicates and holds back (delays, hence reorders) whole FIX
messages and cuts connections at random while both sides send orders. Once
the faults stop and the pair is connected again, each application must have
received exactly what the other side sent, once each, in order.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pair import Fault, SessionPair, app_payloads, send_orders

HEARTBEAT_S = 5

operation = st.one_of(
    st.tuples(st.just("initiator_sends"), st.integers(1, 4)),
    st.tuples(st.just("acceptor_sends"), st.integers(1, 4)),
    st.tuples(st.just("tick"), st.integers(1, 3 * HEARTBEAT_S)),
    st.tuples(st.just("release"), st.just(0)),
    st.tuples(st.just("cut"), st.just(0)),
    st.tuples(st.just("reconnect"), st.just(0)),
)


def settled(pair: SessionPair) -> bool:
    i, a = pair.initiator.driver.session, pair.acceptor.driver.session
    return (
        pair.both_logged_on
        and i.next_sender == a.next_target
        and a.next_sender == i.next_target
        and not i.status()["queued"]
        and not a.status()["queued"]
    )


def heal(pair: SessionPair) -> None:
    """Stop the faults; reconnect whenever both sides are down; let heartbeats reveal tail gaps."""
    pair.fault = Fault()
    for _ in range(10):
        if not pair.initiator.driver.connected and not pair.acceptor.driver.connected:
            pair.connect()
        pair.advance(6 * HEARTBEAT_S)
        if settled(pair):
            return


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(operation, min_size=1, max_size=40),
    drop=st.sampled_from([0.0, 0.05, 0.2]),
    duplicate=st.sampled_from([0.0, 0.05, 0.2]),
    hold=st.sampled_from([0.0, 0.05, 0.2]),
    seed=st.integers(0, 2**32 - 1),
)
def test_faults_never_lose_or_reorder(
    ops: list[tuple[str, int]], drop: float, duplicate: float, hold: float, seed: int
) -> None:
    pair = SessionPair(seed=seed, heartbeat_interval_s=HEARTBEAT_S)
    pair.connect()
    assert pair.both_logged_on
    pair.fault = Fault(drop=drop, duplicate=duplicate, hold=hold)
    counter = 0
    sent = {"initiator": [], "acceptor": []}
    for kind, n in ops:
        if kind in ("initiator_sends", "acceptor_sends"):
            who = kind.split("_")[0]
            side = pair.initiator if who == "initiator" else pair.acceptor
            ids = list(range(counter, counter + n))
            counter += n
            send_orders(side, ids)
            sent[who] += [b"%d" % i for i in ids]
            pair.pump()
        elif kind == "tick":
            pair.advance(n)
        elif kind == "release":
            pair.release_held()
        elif kind == "cut":
            pair.cut()
        elif kind == "reconnect" and not pair.initiator.driver.connected and not pair.acceptor.driver.connected:
            pair.connect()
    heal(pair)
    assert pair.both_logged_on, "the pair did not log on again after the faults stopped"
    assert app_payloads(pair.acceptor.app.messages) == sent["initiator"]
    assert app_payloads(pair.initiator.app.messages) == sent["acceptor"]
