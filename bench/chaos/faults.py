"""The faults of a chaos run: the kinds, the random choice (pure: a seeded ``random.Random`` and the state it is
shown), and the injection.

Kinds (the only faults this machine offers: no netem, no iptables):

* ``kill``: kill -9 of one program of a gateway host, chosen uniformly
  among all of them (a broker, a coordinator, the monitor, a Handler, a
  Driven); supervisord restarts it. One that is not running at that moment
  (still restarting) is not killed: the draw is counted as skipped and
  another is drawn, so that the draws do not depend on timing.
* ``host``: a gateway host lost: every process in its namespace killed at
  once (supervisord and its programs), then, after ``HOST_DOWN_S``, its
  supervisord started again, as a host that reboots.
* ``link``: a host's link down for ``LINK_CUT_S``, then up again; its
  processes run on, cut off. The witnesses' host (``street``) may be cut
  too: every user and venue connection at once.

The witnesses (users and venues) are never killed or lost: their logs are
the ledger. A kind is drawn by its weight, then a target uniformly among
that kind's targets. **One broker at a time:** a fault that disturbs a
broker (kills it, loses or cuts its host) is drawn only while the other
broker is *quiet*: RUNNING, and undisturbed for ``BROKER_QUIET_S`` (time to
restart and to hear its peer again). A pair of brokers survives the loss of
one of them, not of both, and this run checks what the pair promises.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bench.chaos.plan import BROKER_HOSTS, GATEWAY_HOSTS, HOSTS, pair_of

KINDS = ("kill", "host", "link")
#: A host lost stays down this long (uniform) before its supervisord starts again.
HOST_DOWN_S = (1.0, 4.0)
#: A cut link stays down this long (uniform): some cuts under the bus's 3 s detection, some over it.
LINK_CUT_S = (0.5, 4.0)
#: A broker may be disturbed only when the other has been RUNNING and undisturbed this long.
BROKER_QUIET_S = 5.0


@dataclass(frozen=True)
class Fault:
    kind: str
    #: The program (``kill``) or the host (``host``, ``link``).
    target: str
    host: str
    #: How long the host stays down or the link cut; 0 for a kill.
    pause_s: float = 0.0

    @property
    def brokers(self) -> frozenset[str]:
        """The broker programs this fault kills or cuts off."""
        if self.kind == "kill":
            return frozenset({self.target} & set(BROKER_HOSTS))
        return frozenset(b for b, host in BROKER_HOSTS.items() if host == self.host)

    def pairs(self, count: int) -> tuple[int, ...]:
        """The pairs whose flow this fault interrupts: one for a session actor's kill, else all of them."""
        pair = pair_of(self.target) if self.kind == "kill" else None
        return (pair,) if pair is not None else tuple(range(1, count + 1))

    @property
    def label(self) -> str:
        if self.kind == "kill":
            return f"kill -9 {self.target} ({self.host})"
        if self.kind == "host":
            return f"host {self.host} lost for {self.pause_s:.1f} s"
        return f"link of {self.host} cut for {self.pause_s:.1f} s"


def options(weights: Mapping[str, float], programs: Mapping[str, Sequence[str]],
            quiet_brokers: frozenset[str]) -> list[tuple[Fault, float]]:
    """Every fault allowed now, with its weight (its kind's weight shared among the kind's targets).

    ``programs``: the programs of each gateway host; ``quiet_brokers``: the brokers that are RUNNING and have
    been undisturbed for ``BROKER_QUIET_S``.
    """
    targets: dict[str, list[Fault]] = {
        "kill": [Fault("kill", program, host) for host in GATEWAY_HOSTS for program in programs.get(host, ())],
        "host": [Fault("host", host, host) for host in GATEWAY_HOSTS],
        "link": [Fault("link", host, host) for host in HOSTS],
    }
    out = []
    for kind, faults in targets.items():
        weight = weights.get(kind, 0.0)
        if weight <= 0 or not faults:
            continue
        for fault in faults:
            others = set(BROKER_HOSTS) - fault.brokers
            if fault.brokers and not others <= quiet_brokers:
                continue  # the other broker is not quiet: both could be gone at once
            out.append((fault, weight / len(faults)))
    return out


def choose(rng: random.Random, weights: Mapping[str, float], programs: Mapping[str, Sequence[str]],
           quiet_brokers: frozenset[str]) -> Fault | None:
    """One fault, drawn from ``options``, with its pause drawn too; None when nothing is allowed."""
    allowed = options(weights, programs, quiet_brokers)
    if not allowed:
        return None
    fault = rng.choices([f for f, _ in allowed], weights=[w for _, w in allowed])[0]
    if fault.kind == "host":
        return Fault(fault.kind, fault.target, fault.host, round(rng.uniform(*HOST_DOWN_S), 2))
    if fault.kind == "link":
        return Fault(fault.kind, fault.target, fault.host, round(rng.uniform(*LINK_CUT_S), 2))
    return fault


def parse_weights(text: str) -> dict[str, float]:
    """``kill=6,host=2,link=2`` -> {kind: weight}; an unknown kind or a negative weight is refused."""
    weights = {kind: 0.0 for kind in KINDS}
    for part in text.split(","):
        kind, _, value = part.partition("=")
        kind = kind.strip()
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; the kinds are {', '.join(KINDS)}")
        weights[kind] = float(value)
        if weights[kind] < 0:
            raise ValueError(f"the weight of {kind} is negative")
    if not any(weights.values()):
        raise ValueError("every weight is 0: no fault could be drawn")
    return weights


class Injector:
    """Carries a fault out on the hosts; ``wait(seconds)`` is how it pauses (the run keeps watching meanwhile).

    ``pid(host, program)`` is the program's pid from its supervisord (0: not running); ``lose(host)``,
    ``restart(host)``, ``cut(host)`` and ``heal(host)`` act on the namespace hosts.
    """

    def __init__(self, *, pid: Callable[[str, str], int], lose: Callable[[str], None],
                 restart: Callable[[str], None], cut: Callable[[str], None], heal: Callable[[str], None],
                 wait: Callable[[float], None]) -> None:
        self._pid, self._lose, self._restart = pid, lose, restart
        self._cut, self._heal, self._wait = cut, heal, wait

    def begin(self, fault: Fault) -> bool:
        """The fault's first act (the kill, the host's loss, the cut); False when its program was not running."""
        if fault.kind == "kill":
            pid = self._pid(fault.host, fault.target)
            if pid <= 0:
                return False
            try:
                os.kill(pid, signal.SIGKILL)  # a child of our supervisord, by its own pid
            except ProcessLookupError:
                return False
        elif fault.kind == "host":
            self._lose(fault.host)
        else:
            self._cut(fault.host)
        return True

    def end(self, fault: Fault) -> None:
        """After the fault's pause, the host starts again or the link comes back (a kill has nothing to end)."""
        if fault.kind == "kill":
            return
        self._wait(fault.pause_s)
        if fault.kind == "host":
            self._restart(fault.host)
        else:
            self._heal(fault.host)
