"""One chaos run, start to end: hosts, deployment, witnesses, the order flow, the faults, the settling, the ledger.

1. Five namespace hosts (``bench.chaos.plan``); the four gateway hosts
   deployed as an operator would (keys, ``fixmesh deploy render --all``, a
   supervisord each); a venue per Driven and a user per Handler on the
   witnesses' host.
2. The users send at ``rate`` each; once every pair has completed an order,
   faults are drawn and injected one after the other (``bench.chaos.faults``)
   with a pause between them, for ``duration_s`` or ``faults`` faults; a
   thread measures each fault's recovery (``bench.chaos.watch``).
3. ``tail_s`` after the last fault the flow stops (SIGUSR1 to each user:
   what it has sent is all there will be); the run then waits, at most
   ``settle_s``, for every order at its venue, every ExecutionReport at its
   user and every program RUNNING, waits ``QUIET_S`` more (a late
   duplicate would arrive then), and reads the ledger and the stores
   (``bench.chaos.ledger``).
4. Every process it started is killed by its pid, the namespaces removed.
"""

from __future__ import annotations

import math
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from actors.sim.endpoint import counter_path, session_id_of
from bench.chaos import faults, plan
from bench.chaos.faults import Fault, Injector
from bench.chaos.ledger import (
    LinkNumbers,
    PairLedger,
    PairLog,
    check_links,
    check_pair,
    read_received,
    read_sent,
    store_numbers,
)
from bench.chaos.watch import Follower, Recovery, Watch
from bench.children import Child, Children, wait_until
from bench.deployment import Deployment, checkout_env
from bench.netns import Hosts

BEGIN_STRING = "FIX.4.4"
#: Far more orders than a user will send before SIGUSR1 stops it.
UNLIMITED_ORDERS = 1_000_000_000
READY_TIMEOUT_S = 120.0
#: After everything has arrived, this much longer before the ledger is read: a late duplicate would show.
QUIET_S = 3.0
SETTLE_POLL_S = 1.0
#: Reading the stores' numbers: heartbeats may be in flight, so a few reads a moment apart.
LINK_READS = 20
LINK_READ_PAUSE_S = 0.5


@dataclass
class Witness:
    """Pair ``pair``'s user and venue: their processes and their folders."""

    pair: int
    user: Child
    venue: Child
    user_dir: Path
    venue_dir: Path

    @property
    def user_session(self) -> str:
        return session_id_of(BEGIN_STRING, f"TRADER{self.pair}", "GATEWAY")

    @property
    def venue_session(self) -> str:
        return session_id_of(BEGIN_STRING, f"VENUE{self.pair}", "GATEWAY")

    @property
    def counter(self) -> Path:
        return counter_path(self.user_dir / "store", self.user_session)

    def log(self) -> PairLog:
        """What the witnesses say now: the user's counter (what it sent) and both received logs."""
        return PairLog(f"pair {self.pair}", read_sent(self.counter), read_received(self.venue_dir / "received.log"),
                       read_received(self.user_dir / "received.log"))


@dataclass
class FaultRecord:
    number: int
    fault: Fault
    at_s: float
    recovery: Recovery


@dataclass
class Outcome:
    """What a run found: the figures ``bench.chaos.report`` prints and writes."""

    plan: plan.Plan
    addresses: dict[str, str]
    work: Path
    faults: list[FaultRecord] = field(default_factory=list)
    skipped: int = 0
    ledgers: list[PairLedger] = field(default_factory=list)
    links: list[LinkNumbers] = field(default_factory=list)
    link_problems: list[str] = field(default_factory=list)
    not_running: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    settled: bool = False

    @property
    def problems(self) -> list[str]:
        out = [line for ledger in self.ledgers for line in ledger.problems()] + self.link_problems
        out += [f"not running at the end: {what}" for what in self.not_running]
        if not self.settled:
            out.append(f"not settled within {self.plan.settle_s:g} s")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems


class Run:
    """The run of ``plan`` in ``work``; ``log`` gets one line per step and per fault."""

    def __init__(self, run_plan: plan.Plan, work: Path, log: Callable[[str], None]) -> None:
        self.plan = run_plan
        self.work = work
        self.log = log
        self.children = Children(work / "logs")
        self.witnesses: list[Witness] = []
        self.watch: Watch | None = None

    def execute(self) -> Outcome:
        """The whole run; raises ``NamespacesUnavailable`` or ``ChildFailed`` when it cannot be carried out."""
        started = time.monotonic()
        try:
            with Hosts(plan.HOSTS, self.work / "hosts", self.children) as hosts:
                outcome = Outcome(self.plan, {h: hosts.address(h) for h in plan.HOSTS}, self.work)
                deployment = Deployment(self.work / "deploy", self.children, hosts,
                                        topology=plan.topology_text(self.plan.pairs),
                                        programs=plan.programs(self.plan.pairs), keys=plan.keys(self.plan.pairs),
                                        password=plan.PASSWORD)
                self._start(hosts, deployment)
                outcome.seconds["setup"] = time.monotonic() - started
                self._faults(hosts, deployment, outcome)
                self._settle(deployment, outcome)
                outcome.seconds["total"] = time.monotonic() - started
                return outcome
        finally:
            if self.watch is not None:
                self.watch.stop()
            self.children.stop_all()

    # ------------------------------------------------------------ start

    def _start(self, hosts: Hosts, deployment: Deployment) -> None:
        street, edge = hosts.address(plan.STREET), hosts.address(plan.EDGE)
        env = checkout_env()
        venues = {}
        for i in range(1, self.plan.pairs + 1):
            directory = self.work / "venues" / str(i)
            directory.mkdir(parents=True)
            venues[i] = hosts.start(plan.STREET, f"venue{i}", [
                sys.executable, "-m", "bench.chaos.venue", "--host", street, "--port", str(plan.VENUE_PORT + i),
                "--sender", f"VENUE{i}", "--target", "GATEWAY", "--store-dir", str(directory / "store"),
                "--received-log", str(directory / "received.log"), "--heartbeat", str(plan.HEARTBEAT_S),
                "--log-level", "WARNING"], env=env, cwd=self.work)
        for host in plan.GATEWAY_HOSTS:
            deployment.start(host)
        deployment.wait_running(*plan.GATEWAY_HOSTS, timeout_s=READY_TIMEOUT_S)
        self.log(f"[chaos] {len(plan.GATEWAY_HOSTS)} gateway hosts RUNNING; starting {self.plan.pairs} users")
        for i in range(1, self.plan.pairs + 1):
            directory = self.work / "users" / str(i)
            directory.mkdir(parents=True)
            user = hosts.start(plan.STREET, f"user{i}", [
                sys.executable, "-m", "bench.chaos.user", "--role", "initiator", "--host", edge,
                "--port", str(plan.HANDLER_PORT + i), "--sender", f"TRADER{i}", "--target", "GATEWAY",
                "--store-dir", str(directory / "store"), "--received-log", str(directory / "received.log"),
                "--send", str(UNLIMITED_ORDERS), "--rate", f"{self.plan.rate:g}", "--heartbeat", str(plan.HEARTBEAT_S),
                "--reconnect-interval", "0.5", "--connect-timeout", "1", "--reconnect-after-logout",
                "--log-level", "WARNING"], env=env, cwd=self.work)
            self.witnesses.append(Witness(i, user, venues[i], directory, self.work / "venues" / str(i)))
        wait_until(lambda: all(read_received(w.user_dir / "received.log") for w in self.witnesses),
                   READY_TIMEOUT_S, "an ExecutionReport back at every user", self.children)
        self.log("[chaos] every pair has completed an order; faults begin")

    # ------------------------------------------------------------ faults

    def _wait(self, seconds: float) -> None:
        """Sleep, checking that no witness or supervisord died meanwhile."""
        deadline = time.monotonic() + seconds
        while True:
            self.children.check_alive()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.2, left))

    def _faults(self, hosts: Hosts, deployment: Deployment, outcome: Outcome) -> None:
        p = self.plan
        rng = random.Random(p.seed)
        # It watches until the run ends: the last faults recover while the run settles.
        self.watch = watch = Watch({w.pair: Follower(w.counter, w.user_dir / "received.log") for w in self.witnesses})
        injector = Injector(pid=deployment.pid, lose=hosts.kill, restart=lambda host: self._restart(deployment, host),
                            cut=hosts.cut, heal=hosts.heal, wait=self._wait)
        programs = plan.programs(p.pairs)
        #: When each broker's last disturbance ended (inf while it lasts).
        disturbed: dict[str, float] = {b: -math.inf for b in plan.BROKER_HOSTS}
        watch.start()
        began = time.monotonic()
        while not self._enough(outcome, time.monotonic() - began):
            now = time.monotonic()
            quiet = frozenset(b for b, host in plan.BROKER_HOSTS.items()
                              if now - disturbed[b] >= faults.BROKER_QUIET_S and deployment.pid(host, b) > 0)
            fault = faults.choose(rng, p.weights, programs, quiet)
            if fault is None:
                self._wait(0.5)
                continue
            at = time.monotonic()
            for broker in fault.brokers:
                disturbed[broker] = math.inf
            if not injector.begin(fault):
                outcome.skipped += 1
                for broker in fault.brokers:
                    disturbed[broker] = at
                continue
            record = FaultRecord(len(outcome.faults) + 1, fault, at - began, watch.begin(at, fault.pairs(p.pairs)))
            outcome.faults.append(record)
            self.log(f"[chaos] {at - began:7.1f} s  fault {record.number}: {fault.label}")
            injector.end(fault)
            for broker in fault.brokers:
                disturbed[broker] = time.monotonic()
            self._wait(rng.uniform(0.5, 1.5) * p.fault_interval_s)
        outcome.seconds["faults"] = time.monotonic() - began
        self._wait(p.tail_s)

    def _enough(self, outcome: Outcome, elapsed_s: float) -> bool:
        p = self.plan
        return (p.duration_s is not None and elapsed_s >= p.duration_s) or \
            (p.faults is not None and len(outcome.faults) >= p.faults)

    def _restart(self, deployment: Deployment, host: str) -> None:
        """A lost host reboots: its supervisord starts again (and starts its programs)."""
        deployment.start(host)

    # ------------------------------------------------------------ settle

    def _settle(self, deployment: Deployment, outcome: Outcome) -> None:
        for witness in self.witnesses:
            witness.user.popen.send_signal(signal.SIGUSR1)  # our own child, by its pid
        self._wait(1.0)
        self.log(f"[chaos] the flow stopped: {sum(read_sent(w.counter) for w in self.witnesses):,} orders sent; "
                 "settling")
        began = time.monotonic()
        while time.monotonic() - began < self.plan.settle_s:
            ledgers = [check_pair(w.log()) for w in self.witnesses]
            if all(ledger.complete for ledger in ledgers) and not self._not_running(deployment):
                outcome.settled = True
                break
            self._wait(SETTLE_POLL_S)  # a whole read of every log each time: not a busy loop
        self._wait(QUIET_S)
        outcome.seconds["settle"] = time.monotonic() - began
        outcome.ledgers = [check_pair(w.log()) for w in self.witnesses]
        outcome.not_running = self._not_running(deployment)
        for _ in range(LINK_READS):
            outcome.links = self._links(deployment)
            outcome.link_problems = check_links(outcome.links)
            if not outcome.link_problems:
                break
            time.sleep(LINK_READ_PAUSE_S)

    def _not_running(self, deployment: Deployment) -> list[str]:
        out = [f"{host}: {what}" for host in plan.GATEWAY_HOSTS for what in deployment.not_running(host)]
        for w in self.witnesses:
            for child in (w.user, w.venue):
                if child.exit_code is not None:
                    out.append(f"{plan.STREET}: {child.name} exited with code {child.exit_code}")
        return out

    def _links(self, deployment: Deployment) -> list[LinkNumbers]:
        """Both directions of both FIX connections of every pair, from the four stores."""
        out = []
        for w in self.witnesses:
            i = w.pair
            user = store_numbers(w.user_dir / "store", w.user_session)
            venue = store_numbers(w.venue_dir / "store", w.venue_session)
            handler = store_numbers(deployment.roots[plan.EDGE] / "var" / "store", f"handler{i}")
            driven = store_numbers(deployment.roots[plan.EXCH] / "var" / "store", f"driven{i}")
            for name, sender, receiver in ((f"user{i} -> handler{i}", user, handler),
                                           (f"handler{i} -> user{i}", handler, user),
                                           (f"driven{i} -> venue{i}", driven, venue),
                                           (f"venue{i} -> driven{i}", venue, driven)):
                out.append(LinkNumbers(name, sender[0] if sender else None, receiver[1] if receiver else None))
        return out

