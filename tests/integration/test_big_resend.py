"""A ResendRequest for 100,000 messages, answered completely, in order, with flat memory.

An acceptor endpoint (``python -m actors.sim.endpoint``) starts on a file
store that already holds 100,000 messages it sent before: NewOrderSingle,
with a Logon first, a Heartbeat every 1,000, and 50 numbers that were never
stored. A fresh initiator endpoint logs on, sees the acceptor's Logon at
100,001 and asks for everything from 1. The acceptor answers in parts of
``resend_answer_chunk_size`` (1,000), writing a part only when its socket
has room (``actors/shell/driver.py``); the initiator logs every order it
receives. While the answer runs, the test samples the acceptor's resident
memory (VmRSS in ``/proc/PID/status``, and its peak VmHWM at the end): the
answer must not grow it by more than ``MAX_GROWTH_MB`` over its idle figure
(answering from one list of the whole range grew it by far more: the range's
bytes several times over, in the list, the outputs and the socket buffer).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from actors.fix.codec import encode
from actors.sim.endpoint import new_order_single, session_id_of
from actors.store import Durability, FileStore
from tests.interop import (
    Children,
    count_received,
    endpoint_command,
    exactly_once_problems,
    free_port,
    read_received,
    wait_listening,
)

pytestmark = pytest.mark.slow

STORED = 100_000
#: Never stored (a real store has no holes, but a store whose numbers were set by hand has): one GapFill.
HOLE = range(50_001, 50_051)
#: The Logon at 1 and a Heartbeat at every ...500: each is gap-filled.
HEARTBEATS = range(500, STORED, 1000)
ORDERS = STORED - 1 - len(HEARTBEATS) - len(HOLE)
#: GapFills the initiator applies: the Logon, each Heartbeat, the hole. (The answer ends with one more, for
#: the acceptor's Logon reply at 100,001, which the initiator had queued and consumed already: a duplicate.)
GAP_FILLS = 1 + len(HEARTBEATS) + 1
MAX_GROWTH_MB = 30.0
ANSWER_TIMEOUT_S = 120.0
SAMPLE_S = 0.01
BUY, SELL = "BUY", "SELL"


def prefill(directory: Path) -> None:
    """The acceptor's store as if it had sent 1..100,000 to BUY; orders carry ClOrdID 1..ORDERS in order."""
    stamp = b"20260101-00:00:00.000"
    store = FileStore(directory, session_id_of("FIX.4.4", SELL, BUY), now_ns=time.time_ns(),
                      durability=Durability.OS_BUFFER)
    try:
        cl_ord_id = 0
        for seq in range(1, STORED + 1):
            if seq in HOLE:
                continue
            header = [(34, b"%d" % seq), (49, SELL.encode()), (52, stamp), (56, BUY.encode())]
            if seq == 1:
                data = encode(b"FIX.4.4", b"A", header, [(98, b"0"), (108, b"30")])
            elif seq % 1000 == 500:
                data = encode(b"FIX.4.4", b"0", header, [])
            else:
                cl_ord_id += 1
                data = encode(b"FIX.4.4", b"D", header, new_order_single(cl_ord_id, 44, stamp))
            store.save_outgoing(seq, data)
        assert cl_ord_id == ORDERS
    finally:
        store.close()


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_a_resend_of_100000_messages_streams_with_flat_memory(tmp_path: Path, children: Children) -> None:
    port = free_port()
    prefill(tmp_path / "acceptor" / "store")
    acceptor = children.start("acceptor", endpoint_command("acceptor", port, SELL, BUY, tmp_path / "acceptor",
                                                           send=0, rate=0))
    wait_listening(port, acceptor, children)
    idle = max(rss_mb(acceptor.pid) for _ in range(3) if time.sleep(0.05) is None)
    idle_high_water = rss_mb(acceptor.pid, "VmHWM")

    started = time.monotonic()
    initiator = children.start("initiator", endpoint_command("initiator", port, BUY, SELL, tmp_path / "initiator",
                                                             send=0, rate=0))
    received_log = tmp_path / "initiator" / "received.log"
    peak = idle
    samples = 0
    count = 0
    for n in range(int(ANSWER_TIMEOUT_S / SAMPLE_S)):
        peak = max(peak, rss_mb(acceptor.pid))
        samples += 1
        if n % 20 == 0:
            children.check_alive()
            count = count_received(received_log)
            if count >= ORDERS or time.monotonic() - started > ANSWER_TIMEOUT_S:
                break
        time.sleep(SAMPLE_S)
    elapsed = time.monotonic() - started
    high_water = rss_mb(acceptor.pid, "VmHWM")
    assert count >= ORDERS, acceptor.report(f"{count} of {ORDERS} orders resent within {ANSWER_TIMEOUT_S:g} s")

    entries = read_received(received_log)
    problems = exactly_once_problems(entries, ORDERS)
    assert not problems, "\n".join(problems)
    assert all(e.possdup for e in entries), "every order came as a resend (PossDupFlag=Y)"
    assert initiator.terminate() == 0 and acceptor.terminate() == 0
    answered = f"resent {ORDERS} application message(s) of 1..{STORED + 1}"
    assert answered in acceptor.log_text(), acceptor.report("the answer's event is missing")
    gap_fills = initiator.log_text().count("SequenceReset-GapFill from")
    assert gap_fills == GAP_FILLS, initiator.report(f"{gap_fills} GapFills received, {GAP_FILLS} due")

    if high_water > idle_high_water:  # the answer set a new peak, perhaps between two samples
        peak = max(peak, high_water)
    growth = peak - idle
    print(f"\nresend of {STORED:,} messages ({ORDERS:,} orders, {gap_fills} GapFills) in {elapsed:.1f} s; acceptor "
          f"RSS idle {idle:.1f} MB (VmHWM {idle_high_water:.1f} MB), peak sampled {peak:.1f} MB ({samples} samples), "
          f"VmHWM at the end {high_water:.1f} MB, growth {growth:.1f} MB")
    assert growth < MAX_GROWTH_MB, f"the acceptor grew by {growth:.1f} MB while answering (idle {idle:.1f} MB)"
