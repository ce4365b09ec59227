"""The venue simulator as a real process, against fixmesh's trader client and against QuickFIX.

Each test starts ``python -m actors.sim.venue_sim`` on a free loopback port with
``--id-prefix V``, so OrderIDs are V1, V2, ... in the order the orders
arrive and ExecIDs V1-1, V1-2, ... Then either the trader client runs to
completion (``python -m actors.sim.trader_client``: its exit code and stdout are
the contract) or a QuickFIX initiator (``tests/integration/qf_trader.py``,
a process of its own because QuickFIX runs threads) sends a script and
records what comes back, validating each message with the FIX 4.4 data
dictionary when the shared conformance data is there. Every report is
compared field by field, with only the timestamps left out. Every process
is stopped by its pid and every wait is bounded.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.sim.trader_client import parse_requests
from actors.sim.venue_sim import fill_quantities, format_decimal, reference_price
from tests.interop import HOST, REPO_ROOT, Children, free_port, spec_file, wait_listening, wait_until

CLIENT_TIMEOUT_S = 20.0
QUICKFIX_WAIT_S = 20.0
SEED = 7
#: Tags compared in every report: everything but header, trailer and timestamps.
COMPARED = ("35", "37", "17", "150", "39", "11", "41", "55", "54", "38", "40", "44", "32", "31", "151", "14", "6",
            "58", "103", "102", "434", "45", "372", "380")
TIMESTAMP = re.compile(r"^\d{8}-\d\d:\d\d:\d\d\.\d{3}$")


StartVenue = Callable[..., int]


@pytest.fixture
def venue(children: Children) -> StartVenue:
    """Starts a simulator (VENUE, counterparty ``target``) and returns its port once it listens."""

    def start(target: str = "TRADER", fill_delay_ms: int = 0) -> int:
        port = free_port()
        child = children.start("venue-sim", [
            sys.executable, "-m", "actors.sim.venue_sim", "--port", str(port), "--sender", "VENUE",
            "--target", target, "--id-prefix", "V", "--seed", str(SEED), "--fill-delay-ms", str(fill_delay_ms),
        ])
        wait_listening(port, child, children)
        return port

    return start


def run_client(port: int, *orders: str, extra: tuple[str, ...] = ("--json",)) -> subprocess.CompletedProcess[str]:
    """The client to completion; subprocess.run kills it by its pid should it overrun."""
    command = [sys.executable, "-m", "actors.sim.trader_client", "--host", HOST, "--port", str(port),
               "--sender", "TRADER", "--target", "VENUE", *extra, *orders]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S,
                          check=False)


def client_reports(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def report(order_id: str, execution: int, exec_type: str, ord_status: str, cl_ord_id: str, symbol: str, side: str,
           qty: str, *, price: str | None = None, last: tuple[str, str] | None = None, cum: str = "0",
           leaves: str = "0", avg: str = "0", extra: dict[str, str] | None = None) -> dict[str, str]:
    """An expected ExecutionReport, as tag -> value; no price means a market order."""
    fields = {"35": "8", "37": order_id, "17": f"{order_id}-{execution}", "150": exec_type, "39": ord_status,
              "11": cl_ord_id, "55": symbol, "54": side, "38": qty, "40": "1" if price is None else "2",
              "151": leaves, "14": cum, "6": avg}
    if price is not None:
        fields["44"] = price
    if last is not None:
        fields["32"], fields["31"] = last
    fields.update(extra or {})
    return fields


def client_view(entry: dict[str, Any]) -> dict[str, str]:
    """A client JSON object as tag -> value, so both counterparties compare against the same expectations."""
    names = {"37": "order_id", "17": "exec_id", "150": "exec_type", "39": "ord_status", "11": "cl_ord_id",
             "41": "orig_cl_ord_id", "55": "symbol", "38": "order_qty", "44": "price", "32": "last_qty",
             "31": "last_px", "151": "leaves_qty", "14": "cum_qty", "6": "avg_px", "58": "text",
             "102": "cxl_rej_reason"}
    view = {tag: entry[name] for tag, name in names.items() if entry.get(name) is not None}
    view["35"] = entry["msg_type"]
    if entry.get("side") is not None:
        view["54"] = {"buy": "1", "sell": "2"}.get(entry["side"], entry["side"])
    return view


def compared(fields: dict[str, str], keep: tuple[str, ...]) -> dict[str, str]:
    return {tag: value for tag, value in fields.items() if tag in keep}


def expected_for_client(expected: list[dict[str, str]]) -> list[dict[str, str]]:
    """Expectations cut down to what the client's JSON carries (no OrdType, OrdRejReason, ...)."""
    keep = ("35", "37", "17", "150", "39", "11", "41", "55", "54", "38", "44", "32", "31", "151", "14", "6", "58",
            "102")
    return [compared(fields, keep) for fields in expected]


# ---------------------------------------------------------- fill rules


def test_fill_rule_and_prices_are_fixed() -> None:
    assert fill_quantities(Decimal(100)) == [100]
    assert fill_quantities(Decimal(250)) == [125, 125]
    assert fill_quantities(Decimal(1000)) == [500, 500]
    assert fill_quantities(Decimal(1001)) == [333, 333, 335]
    assert reference_price("IBM", SEED) == reference_price("IBM", SEED)
    assert Decimal("10.00") <= reference_price("IBM", SEED) <= Decimal("999.99")
    assert reference_price("IBM", SEED) != reference_price("IBM", SEED + 1)


@pytest.mark.parametrize("words, problem", [
    (["hold", "100", "X"], "starts with 'buy', 'sell' or 'cancel'"),
    (["buy", "100"], "an order is"),
    (["buy", "-5", "X"], "quantity must be a number above 0"),
    (["buy", "5", "X@abc"], "price must be a number above 0"),
    (["cancel", "1"], "only 0 orders come before it"),
])
def test_client_rejects_bad_order_words(words: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_requests(words)


# ------------------------------------------------------ the trader client


def test_small_order_fills_at_once(venue: StartVenue) -> None:
    port = venue()
    result = run_client(port, "buy 100 MSFT@101.5")
    assert result.returncode == 0, result.stderr
    entries = client_reports(result)
    assert [client_view(e) for e in entries] == expected_for_client([
        report("V1", 1, "0", "0", "ORD-1", "MSFT", "1", "100", price="101.5", leaves="100"),
        report("V1", 2, "F", "2", "ORD-1", "MSFT", "1", "100", price="101.5", last=("100", "101.5"),
               cum="100", avg="101.5"),
    ])
    assert all(TIMESTAMP.match(e["time"]) for e in entries), entries


def test_readable_lines(venue: StartVenue) -> None:
    port = venue()
    result = run_client(port, "buy", "100", "MSFT@101.5", "sell 10 REJECT", extra=())
    assert result.returncode == 0, result.stderr
    lines = [re.sub(r"^\d\d:\d\d:\d\d\.\d{3} ", "", line) for line in result.stdout.splitlines()]
    assert lines == [
        "ORD-1 MSFT buy 100@101.5: NEW (cum 0, leaves 100)",
        "ORD-1 MSFT buy 100@101.5: FILLED 100 @ 101.5 (cum 100, leaves 0)",
        "ORD-2 REJECT sell 10@MKT: REJECTED: unknown symbol 'REJECT'",
    ], result.stdout


def test_large_orders_fill_in_parts(venue: StartVenue) -> None:
    port = venue()
    result = run_client(port, "sell 2500 IBM", "buy 250 AAPL@9.99")
    assert result.returncode == 0, result.stderr
    px = format_decimal(reference_price("IBM", SEED))
    assert [client_view(e) for e in client_reports(result)] == expected_for_client([
        report("V1", 1, "0", "0", "ORD-1", "IBM", "2", "2500", leaves="2500"),
        report("V1", 2, "F", "1", "ORD-1", "IBM", "2", "2500", last=("833", px), cum="833", leaves="1667", avg=px),
        report("V1", 3, "F", "1", "ORD-1", "IBM", "2", "2500", last=("833", px), cum="1666", leaves="834", avg=px),
        report("V1", 4, "F", "2", "ORD-1", "IBM", "2", "2500", last=("834", px), cum="2500", avg=px),
        report("V2", 1, "0", "0", "ORD-2", "AAPL", "1", "250", price="9.99", leaves="250"),
        report("V2", 2, "F", "1", "ORD-2", "AAPL", "1", "250", price="9.99", last=("125", "9.99"), cum="125",
               leaves="125", avg="9.99"),
        report("V2", 3, "F", "2", "ORD-2", "AAPL", "1", "250", price="9.99", last=("125", "9.99"), cum="250",
               avg="9.99"),
    ])


def test_rejected_orders_are_final(venue: StartVenue) -> None:
    port = venue()
    result = run_client(port, "buy 10 REJECT@1", "sell 2000000 MSFT")
    assert result.returncode == 0, result.stderr
    assert [client_view(e) for e in client_reports(result)] == expected_for_client([
        report("V1", 1, "8", "8", "ORD-1", "REJECT", "1", "10", price="1", extra={"58": "unknown symbol 'REJECT'"}),
        report("V2", 1, "8", "8", "ORD-2", "MSFT", "2", "2000000",
               extra={"58": "OrderQty (38) 2000000 is above the limit of 1000000"}),
    ])


def test_cancel_of_an_open_order(venue: StartVenue) -> None:
    """The cancel arrives between the New and the first fill; the later order's fill proves none followed."""
    port = venue(fill_delay_ms=300)
    result = run_client(port, "buy 500 MSFT@10", "cancel 1", "buy 50 IBM@1")
    assert result.returncode == 0, result.stderr
    assert [client_view(e) for e in client_reports(result)] == expected_for_client([
        report("V1", 1, "0", "0", "ORD-1", "MSFT", "1", "500", price="10", leaves="500"),
        report("V1", 2, "4", "4", "ORD-2", "MSFT", "1", "500", price="10", extra={"41": "ORD-1"}),
        report("V2", 1, "0", "0", "ORD-3", "IBM", "1", "50", price="1", leaves="50"),
        report("V2", 2, "F", "2", "ORD-3", "IBM", "1", "50", price="1", last=("50", "1"), cum="50", avg="1"),
    ])


def test_cancel_of_a_filled_order_is_rejected(venue: StartVenue) -> None:
    port = venue()
    result = run_client(port, "buy 100 MSFT@1", "cancel 1")
    assert result.returncode == 0, result.stderr
    entries = client_reports(result)
    assert [e["status"] for e in entries] == ["NEW", "FILLED", "CANCEL_REJECTED"]
    assert client_view(entries[2]) == {"35": "9", "37": "V1", "11": "ORD-2", "41": "ORD-1", "39": "2", "102": "0",
                                       "58": "too late to cancel: order V1 is filled"}


def test_client_with_a_store_continues_its_numbers(venue: StartVenue, tmp_path: Path) -> None:
    """No ResetSeqNumFlag between runs, and no ClOrdID handed out twice."""
    port = venue()
    store = ("--json", "--store-dir", str(tmp_path / "trader"))
    first = run_client(port, "buy 10 MSFT@1", "cancel 1", extra=store)
    second = run_client(port, "sell 20 IBM@2", extra=store)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert [(e["cl_ord_id"], e["status"]) for e in client_reports(first)] == [
        ("ORD-1", "NEW"), ("ORD-1", "FILLED"), ("ORD-2", "CANCEL_REJECTED")]
    assert [(e["cl_ord_id"], e["order_id"], e["status"]) for e in client_reports(second)] == [
        ("ORD-3", "V2", "NEW"), ("ORD-3", "V2", "FILLED")]


def test_client_gives_up_at_its_timeout(venue: StartVenue) -> None:
    port = venue(fill_delay_ms=60_000)
    result = run_client(port, "buy 10 MSFT@1", extra=("--json", "--timeout-s", "0.5"))
    assert result.returncode == 1, result.stderr
    assert [e["status"] for e in client_reports(result)] == ["NEW"]
    assert "timed out after 0.5 s; not final: ORD-1 (NEW)" in result.stderr


def test_client_without_a_counterparty_exits_1() -> None:
    result = run_client(free_port(), "buy 10 MSFT@1")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "could not connect" in result.stderr


# ------------------------------------------------------------- QuickFIX


def run_quickfix(children: Children, tmp_path: Path, port: int, script: list[dict[str, str]],
                 until: Callable[[list[dict[str, str]]], bool]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The QuickFIX initiator sends ``script``; returns (received, Rejects QuickFIX sent) once ``until`` holds."""
    work = tmp_path / "quickfix"
    work.mkdir()
    script_path, record = work / "script.json", work / "received.jsonl"
    script_path.write_text(json.dumps(script), encoding="utf-8")
    command = [sys.executable, "-m", "tests.integration.qf_trader", "--port", str(port), "--sender", "QFT",
               "--target", "VENUE", "--work-dir", str(work), "--script", str(script_path), "--record", str(record)]
    dictionary = spec_file("FIX44.xml")
    if dictionary is not None:
        command += ["--data-dictionary", str(dictionary)]
    child = children.start("qf-trader", command)

    def entries() -> list[dict[str, Any]]:
        text = record.read_text(encoding="utf-8") if record.exists() else ""
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]

    wait_until(lambda: until([e["msg"] for e in entries() if e["dir"] == "in"]), QUICKFIX_WAIT_S,
               "the simulator's reports at QuickFIX", children)
    assert child.terminate() == 0, child.report("QuickFIX did not exit 0 on SIGTERM")
    received = [e["msg"] for e in entries() if e["dir"] == "in"]
    return received, [e["msg"] for e in entries() if e["dir"] == "out"]


def order(cl_ord_id: str, side: str, qty: str, symbol: str, price: str | None = None) -> dict[str, str]:
    fields = {"35": "D", "11": cl_ord_id, "21": "1", "54": side, "38": qty, "55": symbol,
              "40": "2" if price is not None else "1", "60": "20260101-09:30:00.000"}
    if price is not None:
        fields["44"] = price
    return fields


def cancel(cl_ord_id: str, orig: str, side: str, qty: str, symbol: str) -> dict[str, str]:
    return {"35": "F", "11": cl_ord_id, "41": orig, "54": side, "38": qty, "55": symbol,
            "60": "20260101-09:30:00.000"}


@pytest.mark.interop
def test_quickfix_orders_rejects_and_cancels(venue: StartVenue, children: Children, tmp_path: Path) -> None:
    port = venue(target="QFT")
    px = format_decimal(reference_price("IBM", SEED))
    no_cl_ord_id = order("x", "1", "5", "MSFT", "1")
    del no_cl_ord_id["11"]
    script = [
        order("Q1", "1", "100", "MSFT", "101.5"),
        order("Q2", "2", "1001", "IBM"),
        order("Q3", "7", "10", "MSFT", "1"),
        order("Q4", "1", "10", "REJECT", "1"),
        order("Q5", "1", "10", "MSFT"),
        cancel("Q6", "Q1", "1", "100", "MSFT"),
        cancel("Q7", "NOPE", "1", "100", "MSFT"),
        {"35": "G", "11": "Q8", "41": "Q1", "21": "1", "54": "1", "38": "5", "55": "MSFT", "40": "1",
         "60": "20260101-09:30:00.000"},
        no_cl_ord_id,
    ]
    q5_px = format_decimal(reference_price("MSFT", SEED))
    expected = [
        report("V1", 1, "0", "0", "Q1", "MSFT", "1", "100", price="101.5", leaves="100"),
        report("V1", 2, "F", "2", "Q1", "MSFT", "1", "100", price="101.5", last=("100", "101.5"), cum="100",
               avg="101.5"),
        report("V2", 1, "0", "0", "Q2", "IBM", "2", "1001", leaves="1001"),
        report("V2", 2, "F", "1", "Q2", "IBM", "2", "1001", last=("333", px), cum="333", leaves="668", avg=px),
        report("V2", 3, "F", "1", "Q2", "IBM", "2", "1001", last=("333", px), cum="666", leaves="335", avg=px),
        report("V2", 4, "F", "2", "Q2", "IBM", "2", "1001", last=("335", px), cum="1001", avg=px),
        report("V3", 1, "8", "8", "Q3", "MSFT", "7", "10", price="1",
               extra={"58": "Side (54) '7' not supported: 1 (buy) or 2 (sell)", "103": "99"}),
        report("V4", 1, "8", "8", "Q4", "REJECT", "1", "10", price="1",
               extra={"58": "unknown symbol 'REJECT'", "103": "1"}),
        report("V5", 1, "0", "0", "Q5", "MSFT", "1", "10", leaves="10"),
        report("V5", 2, "F", "2", "Q5", "MSFT", "1", "10", last=("10", q5_px), cum="10", avg=q5_px),
        {"35": "9", "37": "V1", "11": "Q6", "41": "Q1", "39": "2", "434": "1", "102": "0",
         "58": "too late to cancel: order V1 is filled"},
        {"35": "9", "37": "NONE", "11": "Q7", "41": "NOPE", "39": "8", "434": "1", "102": "1",
         "58": "unknown order"},
        {"35": "j", "45": "10", "372": "D", "380": "5",
         "58": "ClOrdID (11) missing: no ExecutionReport could refer to this order"},
    ]
    # The session layer answers the unsupported MsgType as it reads it, so that reply may overtake
    # the simulator's replies to earlier messages of the same read; it is checked on its own.
    unsupported = {"35": "j", "45": "9", "372": "G", "380": "3", "58": "Unsupported Message Type"}
    received, rejects = run_quickfix(children, tmp_path, port, script, lambda got: len(got) >= len(expected) + 1)
    assert rejects == [], "QuickFIX rejected messages of the simulator"
    replies = [compared(m, COMPARED) for m in received]
    assert replies.count(unsupported) == 1, replies
    assert [m for m in replies if m != unsupported] == expected
    assert all(TIMESTAMP.match(m["60"]) for m in received if m["35"] in ("8", "9")), received


@pytest.mark.interop
def test_quickfix_cancel_before_the_fills(venue: StartVenue, children: Children, tmp_path: Path) -> None:
    port = venue(target="QFT", fill_delay_ms=300)
    script = [order("Q1", "2", "500", "MSFT", "10"), cancel("Q2", "Q1", "2", "500", "MSFT"),
              order("Q3", "1", "50", "IBM", "1")]
    expected = [
        report("V1", 1, "0", "0", "Q1", "MSFT", "2", "500", price="10", leaves="500"),
        report("V1", 2, "4", "4", "Q2", "MSFT", "2", "500", price="10", extra={"41": "Q1"}),
        report("V2", 1, "0", "0", "Q3", "IBM", "1", "50", price="1", leaves="50"),
        report("V2", 2, "F", "2", "Q3", "IBM", "1", "50", price="1", last=("50", "1"), cum="50", avg="1"),
    ]
    received, rejects = run_quickfix(children, tmp_path, port, script,
                                     lambda got: any(m.get("11") == "Q3" and m.get("39") == "2" for m in got))
    assert rejects == []
    assert [compared(m, COMPARED) for m in received] == expected
