"""Real processes talking FIX over loopback TCP: fixmesh endpoints and a QuickFIX peer.

The interop tests (fixmesh against QuickFIX) and the crash-recovery tests
(fixmesh against fixmesh) start the same kinds of processes and read the same
received logs, so the helpers live here. Every process writes its output to a
file in the test's tmp_path, is stopped by its pid, and every wait is bounded
in time; a process that dies while a test waits for it fails the test at once
with the tail of its log.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.children import Child, ChildFailed, Children, wait_until
from bench.ports import HOST
from bench.ports import free_port as free_port  # re-exported: the tests take their ports from here
from bench.ports import free_ports as free_ports
from tests.acceptance import conformance_dir

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
POLL_S = 0.05


def spec_file(name: str) -> Path | None:
    """A QuickFIX data dictionary from the shared conformance data, or None when it is not there."""
    path = conformance_dir() / "spec" / name
    return path if path.is_file() else None


#: The children of a test, and the waits on them, are the benchmark's (``bench.children``): started, watched
#: and stopped by their own pid, logs in the test's folder; a failure is an AssertionError with the logs' tails.
ProcessFailed = ChildFailed


def wait_listening(port: int, child: Child, children: Children, timeout_s: float = 20.0) -> None:
    def accepts() -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=POLL_S):
                return True
        except OSError:
            return False

    wait_until(accepts, timeout_s, f"{child.name} to listen on {HOST}:{port}", children)


@contextmanager
def listening_on(ports: Iterable[int]) -> Iterator[None]:
    """Plain TCP listeners on ``ports`` (a broker's endpoints that a connect check finds answering)."""
    listeners = []
    try:
        for port in ports:
            listener = socket.socket()
            listener.bind((HOST, port))
            listener.listen()
            listeners.append(listener)
        yield
    finally:
        for listener in listeners:
            listener.close()


# ------------------------------------------------------------ received logs


@dataclass(frozen=True, slots=True)
class Received:
    cl_ord_id: str
    seq: int
    possdup: bool


def read_received(path: Path) -> list[Received]:
    """Complete lines only: the writer may be in the middle of one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    entries = []
    for line in data.split(b"\n")[:-1]:
        cl_ord_id, seq, possdup = line.decode("ascii").split()
        entries.append(Received(cl_ord_id, int(seq), possdup == "Y"))
    return entries


def count_received(path: Path) -> int:
    try:
        with path.open("rb") as file:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 16), b""))
    except FileNotFoundError:
        return 0


def wait_for_orders(children: Children, count: int, logs: Sequence[Path], timeout_s: float = 90.0) -> None:
    """Until each received log holds at least ``count`` lines."""
    what = f"{count} orders in each of {', '.join(str(log) for log in logs)}"
    wait_until(lambda: all(count_received(log) >= count for log in logs), timeout_s, what, children)


def exactly_once_problems(entries: list[Received], total: int) -> list[str]:
    """What is wrong with a received log that must hold ClOrdIDs 1..total once each, in order."""
    problems = []
    seen: dict[str, int] = {}
    for entry in entries:
        if entry.cl_ord_id in seen:
            first = seen[entry.cl_ord_id]
            problems.append(f"ClOrdID {entry.cl_ord_id} received twice (MsgSeqNum {first} and {entry.seq})")
        seen[entry.cl_ord_id] = entry.seq
    expected = [str(n) for n in range(1, total + 1)]
    missing = [c for c in expected if c not in seen]
    if missing:
        problems.append(f"{len(missing)} ClOrdIDs never received, first {missing[:5]}")
    order = [e.cl_ord_id for e in entries]
    if not problems and order != expected:
        first = next(i for i, (got, want) in enumerate(zip(order, expected, strict=False)) if got != want)
        problems.append(f"out of order at line {first + 1}: {order[first]} where {expected[first]} was due")
    seqs = [e.seq for e in entries]
    repeats = [s for s, following in zip(seqs, seqs[1:], strict=False) if following <= s]
    if repeats:
        problems.append(f"MsgSeqNum not increasing after {repeats[:5]} (a sequence number delivered twice?)")
    return problems


# ---------------------------------------------------------------- commands


def endpoint_command(
    role: str, port: int, sender: str, target: str, work: Path, *, send: int, rate: float, extra: Sequence[str] = ()
) -> list[str]:
    """``python -m actors.sim.endpoint`` with a FileStore and a received log under ``work``."""
    command = [
        sys.executable, "-m", "actors.sim.endpoint", "--role", role, "--port", str(port),
        "--sender", sender, "--target", target,
        "--store-dir", str(work / "store"), "--received-log", str(work / "received.log"),
        "--send", str(send), "--rate", str(rate), "--reconnect-interval", "0.5",
    ]
    dictionary = spec_file("FIX44.xml")
    if dictionary is not None:
        command += ["--data-dictionary", str(dictionary)]
    return command + list(extra)
