"""A command-line trader: log on, send orders, print the execution reports, log out.

    fixmesh client [--host 127.0.0.1] [--port 9876] [--sender TRADER] [--target GATEWAY] \\
        [--store-dir D] [--timeout-s 10] [--json] ORDER ...

    fixmesh client 'buy 100 MSFT@101.5' 'sell 50 IBM' 'cancel 1'

ORDER is ``buy|sell QTY SYMBOL[@PRICE]`` (a limit order with a price, a
market order without) or ``cancel K`` (an OrderCancelRequest for the K-th
order of this command line). The words may also come as separate arguments.
Once logged on the client sends every request in the order given, each with
a ClOrdID of its own (ORD-1, ORD-2, ... in command-line order), and prints
one line per ExecutionReport, OrderCancelReject or BusinessMessageReject it
receives (``--json``: one JSON object per line).

It exits 0 when every order has reached a final state (filled, canceled,
rejected, expired) and every cancel has been answered, after a Logout; 1
when ``--timeout-s`` passed first or the connection ended; 2 for a bad
command line. Output on stdout is the contract for scripts and tests; logs
go to stderr.

Without ``--store-dir`` the client keeps no history: it logs on with
ResetSeqNumFlag=Y (141) so that the counterparty starts both sequences at 1
too. With a store it keeps its sequence numbers between runs, like any
other FIX session, receives by resend what was sent to it while away, and
continues the ClOrdID numbering where the previous run stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from actors.fix import tags as T
from actors.fix.config import Role, SessionConfig
from actors.fix.message import Message
from actors.fix.orders import (
    AVG_PX,
    BUSINESS_MESSAGE_REJECT,
    CL_ORD_ID,
    CUM_QTY,
    CXL_REJ_REASON,
    EXEC_ID,
    EXEC_TYPE,
    EXECUTION_REPORT,
    HANDL_INST,
    LAST_PX,
    LAST_QTY,
    LEAVES_QTY,
    NEW_ORDER_SINGLE,
    ORD_STATUS,
    ORD_TYPE,
    ORD_TYPE_LIMIT,
    ORD_TYPE_MARKET,
    ORDER_CANCEL_REJECT,
    ORDER_CANCEL_REQUEST,
    ORDER_ID,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    PRICE,
    SIDE,
    SIDE_BUY,
    SIDE_SELL,
    SYMBOL,
    TRANSACT_TIME,
)
from actors.fix.outputs import Output, StateChanged
from actors.fix.states import SessionState
from actors.fix.timefmt import Instant, TimestampFormatter
from actors.shell import clock
from actors.shell.driver import SessionDriver
from actors.shell.host import HostSpec, InitiatorSpec, SessionHost, SessionSpec, StoreSpec
from actors.shell.process import configure_logging
from actors.sim.endpoint import session_id_of
from actors.sim.tls_options import add_tls_arguments, tls_settings
from actors.sim.venue_sim import (
    format_decimal,
    parse_positive,
)
from actors.store import Durability
from actors.store.layout import session_dir_name

log = logging.getLogger("fixmesh.client")

#: OrdStatus (39) values after which nothing more happens to an order.
FINAL_STATUSES = frozenset({"2", "3", "4", "8", "C"})
#: OrdStatus (39) as printed.
STATUS_WORDS = {
    "0": "NEW", "1": "PARTIAL", "2": "FILLED", "3": "DONE_FOR_DAY", "4": "CANCELED", "5": "REPLACED",
    "6": "PENDING_CANCEL", "8": "REJECTED", "A": "PENDING_NEW", "C": "EXPIRED", "E": "PENDING_REPLACE",
}
SIDE_WORDS = {"1": "buy", "2": "sell"}


# ---------------------------------------------------------- command line


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """``buy 100 MSFT@101.5``; ``price`` None is a market order. Numbers stay as typed."""

    side: str
    qty: str
    symbol: str
    price: str | None

    def describe(self) -> str:
        return f"{self.symbol} {self.side} {self.qty}@{self.price if self.price is not None else 'MKT'}"


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """``cancel K``: cancel the K-th order (1-based) of the same command line."""

    order_index: int


Request = OrderRequest | CancelRequest

_TARGET = re.compile(r"([^@\s]+)(?:@(.+))?")


def parse_requests(words: list[str]) -> list[Request]:
    """Requests from the ORDER arguments; ValueError names the first word that does not fit."""
    tokens = [token for word in words for token in word.split()]
    requests: list[Request] = []
    orders = 0
    i = 0
    while i < len(tokens):
        verb = tokens[i].lower()
        if verb == "cancel":
            if i + 1 >= len(tokens) or not tokens[i + 1].isdigit():
                raise ValueError("'cancel' needs the number of an order of this command line, e.g. 'cancel 1'")
            index = int(tokens[i + 1])
            if not 1 <= index <= orders:
                raise ValueError(f"'cancel {index}': only {orders} orders come before it")
            requests.append(CancelRequest(index))
            i += 2
            continue
        if verb not in ("buy", "sell"):
            raise ValueError(f"{tokens[i]!r}: an order starts with 'buy', 'sell' or 'cancel'")
        if i + 2 >= len(tokens):
            raise ValueError(f"{' '.join(tokens[i:])!r}: an order is 'buy|sell QTY SYMBOL[@PRICE]'")
        qty, target = tokens[i + 1], tokens[i + 2]
        if parse_positive(qty.encode()) is None:
            raise ValueError(f"{qty!r}: the quantity must be a number above 0")
        match = _TARGET.fullmatch(target)
        if match is None:
            raise ValueError(f"{target!r}: expected SYMBOL or SYMBOL@PRICE")
        symbol, price = match.group(1), match.group(2)
        if price is not None and parse_positive(price.encode()) is None:
            raise ValueError(f"{target!r}: the price must be a number above 0")
        requests.append(OrderRequest(verb, qty, symbol, price))
        orders += 1
        i += 3
    if not orders:
        raise ValueError("no order given")
    return requests


# ---------------------------------------------------------------- reports


@dataclass(frozen=True, slots=True)
class Report:
    """One received ExecutionReport, OrderCancelReject or BusinessMessageReject, as text."""

    msg_type: str
    fields: dict[int, str]

    @classmethod
    def of(cls, message: Message) -> Report:
        return cls(message.msg_type, {tag: value.decode("latin-1") for tag, value in message.body_fields()})

    def get(self, tag: int) -> str | None:
        return self.fields.get(tag)

    @property
    def status(self) -> str:
        if self.msg_type == ORDER_CANCEL_REJECT:
            return "CANCEL_REJECTED"
        if self.msg_type == BUSINESS_MESSAGE_REJECT:
            return "BUSINESS_REJECT"
        ord_status = self.get(ORD_STATUS) or "?"
        return STATUS_WORDS.get(ord_status, f"STATUS_{ord_status}")

    @property
    def time_of_day(self) -> str:
        """HH:MM:SS.mmm (UTC) of TransactTime (60), or of SendingTime (52) without it."""
        stamp = self.get(TRANSACT_TIME) or self.get(T.SENDING_TIME) or ""
        if len(stamp) < 17:
            return "--:--:--.---"
        return stamp[9:21] if len(stamp) >= 21 else stamp[9:17] + ".000"


@dataclass(slots=True)
class TrackedOrder:
    cl_ord_id: str
    request: OrderRequest
    seq: int | None = None
    ord_status: str | None = None

    @property
    def final(self) -> bool:
        return self.ord_status in FINAL_STATUSES


@dataclass(slots=True)
class TrackedCancel:
    cl_ord_id: str
    order: TrackedOrder
    seq: int | None = None
    answered: bool = False


Item = TrackedOrder | TrackedCancel


class Blotter:
    """The run's orders and cancels and what the counterparty said about them; no I/O.

    A report is matched to an order by its ClOrdID (11), by a cancel's
    ClOrdID, or by OrigClOrdID (41); a BusinessMessageReject by its
    RefSeqNum (45). A report seen before (same ExecID, as after a resend)
    is ignored.
    """

    def __init__(self, requests: list[Request], prefix: str, first_number: int = 1) -> None:
        self.items: list[Item] = []
        self.orders: dict[str, TrackedOrder] = {}
        self.cancels: dict[str, TrackedCancel] = {}
        ordered: list[TrackedOrder] = []
        for number, request in enumerate(requests, start=first_number):
            cl_ord_id = f"{prefix}{number}"
            if isinstance(request, OrderRequest):
                order = TrackedOrder(cl_ord_id, request)
                ordered.append(order)
                self.orders[cl_ord_id] = order
                self.items.append(order)
            else:
                cancel = TrackedCancel(cl_ord_id, ordered[request.order_index - 1])
                self.cancels[cl_ord_id] = cancel
                self.items.append(cancel)
        self._by_seq: dict[int, Item] = {}
        self._exec_ids: set[str] = set()

    @property
    def done(self) -> bool:
        return all(o.final for o in self.orders.values()) and all(c.answered for c in self.cancels.values())

    def unfinished(self) -> list[str]:
        waiting = [f"{o.cl_ord_id} ({STATUS_WORDS.get(o.ord_status or '', 'no report')})"
                   for o in self.orders.values() if not o.final]
        waiting += [f"{c.cl_ord_id} (cancel of {c.order.cl_ord_id}, no answer)"
                    for c in self.cancels.values() if not c.answered]
        return waiting

    def messages(self, transact_time: bytes) -> list[tuple[Item, str, list[tuple[int, bytes]]]]:
        """What to send, in command-line order."""
        out: list[tuple[Item, str, list[tuple[int, bytes]]]] = []
        for item in self.items:
            if isinstance(item, TrackedOrder):
                out.append((item, NEW_ORDER_SINGLE, _order_body(item, transact_time)))
            else:
                out.append((item, ORDER_CANCEL_REQUEST, _cancel_body(item, transact_time)))
        return out

    def sent(self, item: Item, seq: int) -> None:
        item.seq = seq
        self._by_seq[seq] = item

    def seen_before(self, report: Report) -> bool:
        """Whether this ExecutionReport's ExecID (17) came already; remembers it otherwise."""
        exec_id = report.get(EXEC_ID) if report.msg_type == EXECUTION_REPORT else None
        if exec_id is None:
            return False
        if exec_id in self._exec_ids:
            return True
        self._exec_ids.add(exec_id)
        return False

    def on_report(self, report: Report) -> TrackedOrder | None:
        """Record a report; returns the order it is about, or None when it is not about one of ours."""
        if report.msg_type == EXECUTION_REPORT:
            order, cancel = self._match(report)
            if cancel is not None and report.get(EXEC_TYPE) in ("4", "8"):
                cancel.answered = True
            if order is not None and (status := report.get(ORD_STATUS)) is not None:
                order.ord_status = status
            return order
        if report.msg_type == ORDER_CANCEL_REJECT:
            order, cancel = self._match(report)
            if cancel is not None:
                cancel.answered = True
            return order
        if report.msg_type == BUSINESS_MESSAGE_REJECT:
            ref = report.get(T.REF_SEQ_NUM)
            item = self._by_seq.get(int(ref)) if ref is not None and ref.isdigit() else None
            if isinstance(item, TrackedOrder):
                item.ord_status = "8"
                return item
            if isinstance(item, TrackedCancel):
                item.answered = True
                return item.order
        return None

    def _match(self, report: Report) -> tuple[TrackedOrder | None, TrackedCancel | None]:
        cl_ord_id = report.get(CL_ORD_ID) or ""
        cancel = self.cancels.get(cl_ord_id)
        if cancel is not None:
            return cancel.order, cancel
        order = self.orders.get(cl_ord_id) or self.orders.get(report.get(ORIG_CL_ORD_ID) or "")
        return order, None


def _order_body(order: TrackedOrder, transact_time: bytes) -> list[tuple[int, bytes]]:
    request = order.request
    body = [
        (CL_ORD_ID, order.cl_ord_id.encode()),
        (HANDL_INST, b"1"),
        (ORDER_QTY, request.qty.encode()),
        (ORD_TYPE, ORD_TYPE_LIMIT if request.price is not None else ORD_TYPE_MARKET),
        (SIDE, SIDE_BUY if request.side == "buy" else SIDE_SELL),
        (SYMBOL, request.symbol.encode()),
        (TRANSACT_TIME, transact_time),
    ]
    if request.price is not None:
        body.insert(4, (PRICE, request.price.encode()))
    return body


def _cancel_body(cancel: TrackedCancel, transact_time: bytes) -> list[tuple[int, bytes]]:
    request = cancel.order.request
    return [
        (CL_ORD_ID, cancel.cl_ord_id.encode()),
        (ORDER_QTY, request.qty.encode()),
        (ORIG_CL_ORD_ID, cancel.order.cl_ord_id.encode()),
        (SIDE, SIDE_BUY if request.side == "buy" else SIDE_SELL),
        (SYMBOL, request.symbol.encode()),
        (TRANSACT_TIME, transact_time),
    ]


def format_line(report: Report, order: TrackedOrder | None) -> str:
    """One readable line, e.g. ``10:15:02.123 ORD-1 MSFT buy 100@101.5: FILLED 100 @ 101.5 (cum 100, leaves 0)``."""
    when = report.time_of_day
    if report.msg_type == BUSINESS_MESSAGE_REJECT:
        about = order.cl_ord_id if order is not None else "-"
        return (f"{when} {about}: BUSINESS REJECT of {report.get(T.REF_MSG_TYPE) or '?'} "
                f"(MsgSeqNum {report.get(T.REF_SEQ_NUM) or '?'}): {report.get(T.TEXT) or 'no reason given'}")
    if report.msg_type == ORDER_CANCEL_REJECT:
        target = report.get(ORIG_CL_ORD_ID) or "?"
        return (f"{when} {report.get(CL_ORD_ID) or '?'} cancel {target}: CANCEL REJECTED: "
                f"{report.get(T.TEXT) or 'no reason given'}")
    name = order.cl_ord_id if order is not None else report.get(CL_ORD_ID) or "?"
    head = f"{when} {name} {_describe(report, order)}: {report.status}"
    progress = f"(cum {_number(report.get(CUM_QTY))}, leaves {_number(report.get(LEAVES_QTY))})"
    if report.get(EXEC_TYPE) == "8" or report.status == "REJECTED":
        return f"{head}: {report.get(T.TEXT) or 'no reason given'}"
    last_qty = report.get(LAST_QTY)
    if last_qty is not None and parse_positive(last_qty.encode()) is not None:
        return f"{head} {_number(last_qty)} @ {_number(report.get(LAST_PX))} {progress}"
    return f"{head} {progress}"


def _describe(report: Report, order: TrackedOrder | None) -> str:
    if order is not None:
        return order.request.describe()
    side = SIDE_WORDS.get(report.get(SIDE) or "", report.get(SIDE) or "?")
    price = report.get(PRICE) if report.get(ORD_TYPE) != "1" else None
    return f"{report.get(SYMBOL) or '?'} {side} {report.get(ORDER_QTY) or '?'}@{price or 'MKT'}"


def _number(text: str | None) -> str:
    value = parse_positive(text.encode()) if text is not None else None
    if value is not None:
        return format_decimal(value)
    return text if text is not None else "?"


def report_json(report: Report, order: TrackedOrder | None) -> dict[str, Any]:
    """The ``--json`` object; numbers stay decimal strings so that no digit is lost."""
    get = report.get
    return {
        "time": get(TRANSACT_TIME) or get(T.SENDING_TIME),
        "msg_type": report.msg_type,
        "status": report.status,
        "order": order.cl_ord_id if order is not None else None,
        "cl_ord_id": get(CL_ORD_ID),
        "orig_cl_ord_id": get(ORIG_CL_ORD_ID),
        "order_id": get(ORDER_ID),
        "exec_id": get(EXEC_ID),
        "exec_type": get(EXEC_TYPE),
        "ord_status": get(ORD_STATUS),
        "symbol": get(SYMBOL),
        "side": SIDE_WORDS.get(get(SIDE) or "", get(SIDE)),
        "order_qty": get(ORDER_QTY),
        "price": get(PRICE),
        "last_qty": get(LAST_QTY),
        "last_px": get(LAST_PX),
        "cum_qty": get(CUM_QTY),
        "leaves_qty": get(LEAVES_QTY),
        "avg_px": get(AVG_PX),
        "text": get(T.TEXT),
        "cxl_rej_reason": get(CXL_REJ_REASON),
        "ref_seq_num": get(T.REF_SEQ_NUM),
        "ref_msg_type": get(T.REF_MSG_TYPE),
    }


# ---------------------------------------------------------------- process


def reserve_cl_ord_ids(store_dir: str | None, session_id: str, count: int) -> int:
    """The first ClOrdID number of this run; with a store, numbers continue from the previous run.

    A client with a store gets by resend the reports it missed while away;
    had the new run started again at ORD-1, a late report about an old ORD-1
    would read as news about the new one. The range is written down before
    anything is sent, so even a run that dies half-way never hands its
    numbers out again.
    """
    if store_dir is None:
        return 1
    path = Path(store_dir) / f"{session_dir_name(session_id)}.client-clordid"
    try:
        first = int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        first = 1
    Path(store_dir).mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(f"{first + count}\n", encoding="ascii")
    os.replace(scratch, path)
    return first


class TraderClient:
    """The session on a ``SessionHost`` with the blotter; stops when everything is final or time is up."""

    def __init__(self, args: argparse.Namespace, requests: list[Request], out: TextIO,
                 now: Callable[[], Instant] = clock.now) -> None:
        self.args = args
        self.out = out
        self._now = now
        self.session_id = session_id_of(args.begin_string, args.sender, args.target)
        first_number = reserve_cl_ord_ids(args.store_dir, self.session_id, len(requests))
        self.blotter = Blotter(requests, args.clordid_prefix, first_number)
        config = SessionConfig(
            begin_string=args.begin_string,
            sender_comp_id=args.sender,
            target_comp_id=args.target,
            role=Role.INITIATOR,
            heartbeat_interval_s=args.heartbeat,
            use_data_dictionary=False,
            reset_on_logon=not args.store_dir,
        )
        store = StoreSpec("file" if args.store_dir else "memory", Path(args.store_dir) if args.store_dir else None,
                          Durability.BATCH)
        connect = InitiatorSpec(args.host, args.port, connect_timeout_s=args.connect_timeout, reconnect_interval_s=1.0,
                          max_tries=args.max_tries, tls=args.tls_settings)
        self.host = SessionHost(HostSpec(connect=connect, stop_text="client interrupted"), now=now,
                                on_stopping=self._on_stopping, on_initiator_done=self._on_connection_over)
        self.loop = self.host.loop
        self.driver = self.host.add_session(SessionSpec(self.session_id, config, store), self)
        self.loop.add_timer_source(self)
        self._timestamps = TimestampFormatter(config.effective_timestamp_precision)
        self._deadline_s: float = now().mono_s + float(args.timeout_s)
        self._send_due = False
        self._sent = False
        #: Set when the client itself ends the run; a stop without it came from a signal.
        self._ending = False
        self._exit_code = 1

    def run(self) -> int:
        self.host.run(max_wait_s=1.0)
        return self._exit_code

    # ------------------------------------------------------- application

    def on_message(self, driver: SessionDriver, message: Message) -> None:
        if message.msg_type not in (EXECUTION_REPORT, ORDER_CANCEL_REJECT, BUSINESS_MESSAGE_REJECT):
            log.info("ignoring MsgType %s (MsgSeqNum %s)", message.msg_type, message.seq_num)
            return
        report = Report.of(message)
        if self.blotter.seen_before(report):
            log.info("ExecID %s seen before; not printed again", report.get(EXEC_ID))
            return
        order = self.blotter.on_report(report)
        if self.args.json:
            print(json.dumps(report_json(report, order)), file=self.out, flush=True)
        else:
            print(format_line(report, order), file=self.out, flush=True)

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        if isinstance(output, StateChanged) and output.new is SessionState.CONNECTED and not self._sent:
            # Sent from the loop's timer, once this batch of session outputs has run.
            self._send_due = True

    def _send_all(self) -> None:
        self._sent = True
        transact_time = self._timestamps.format(self._now().utc_ns)
        for item, msg_type, body in self.blotter.messages(transact_time):
            self.blotter.sent(item, self.driver.send(msg_type, body))
        log.info("sent %d orders and %d cancels", len(self.blotter.orders), len(self.blotter.cancels))

    # -------------------------------------------------------------- timer

    def next_deadline(self) -> float | None:
        if self._send_due:
            return 0.0
        if self.host.stopping:
            return None
        return 0.0 if self.blotter.done else self._deadline_s

    def on_timer(self) -> None:
        if self._send_due:
            self._send_due = False
            self._send_all()
        if self.host.stopping:
            return
        if self.blotter.done:
            self._all_final()
        elif self._now().mono_s >= self._deadline_s:
            log.error("timed out after %g s; not final: %s", self.args.timeout_s,
                      ", ".join(self.blotter.unfinished()))
            self._end("client timed out")

    def _on_connection_over(self, gave_up: bool) -> None:
        """The initiator stopped by itself: it could not connect, or the counterparty logged out."""
        if self.blotter.done:
            self._all_final()
            return
        how = "could not connect" if gave_up else "the connection ended"
        log.error("%s; not final: %s", how, ", ".join(self.blotter.unfinished()))
        self._end(how)

    def _all_final(self) -> None:
        log.info("every order is final")
        self._exit_code = 0
        self._end("all orders final")

    def _end(self, reason: str) -> None:
        self._ending = True
        self.host.stop(reason)

    def _on_stopping(self, reason: str) -> None:
        if not self._ending:
            log.warning("interrupted; not final: %s", ", ".join(self.blotter.unfinished()))


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fixmesh client", description=__doc__.split("\n\n")[0],
                                epilog="ORDER: 'buy|sell QTY SYMBOL[@PRICE]' (no price: market) or 'cancel K'")
    p.add_argument("orders", nargs="+", metavar="ORDER")
    p.add_argument("--host", default="127.0.0.1", help="the gateway's Handler (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9876, help="(default 9876)")
    p.add_argument("--sender", default="TRADER", help="our SenderCompID (49) (default TRADER)")
    p.add_argument("--target", default="GATEWAY", help="their CompID (default GATEWAY)")
    p.add_argument("--begin-string", default="FIX.4.4", choices=("FIX.4.2", "FIX.4.3", "FIX.4.4"))
    p.add_argument("--store-dir", help="FileStore directory: keep sequence numbers between runs "
                                       "(default: none, and ResetSeqNumFlag=Y at Logon)")
    p.add_argument("--timeout-s", type=_positive_seconds, default=10.0,
                   help="give up when not every order is final by then (default 10)")
    p.add_argument("--json", action="store_true", help="one JSON object per report instead of a line of text")
    p.add_argument("--clordid-prefix", default="ORD-",
                   help="ClOrdIDs are PREFIX1, PREFIX2, ... (default ORD-); with --store-dir the numbers continue "
                        "from the previous run")
    p.add_argument("--heartbeat", type=int, default=30, help="HeartBtInt (108) in seconds (default 30)")
    p.add_argument("--connect-timeout", type=_positive_seconds, default=5.0, help="seconds per TCP connect")
    p.add_argument("--max-tries", type=int, default=1, help="TCP connects before giving up (default 1)")
    p.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    add_tls_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    args.tls_settings = tls_settings(args, p, acceptor=False)
    try:
        requests = parse_requests(args.orders)
    except ValueError as error:
        p.error(str(error))
    configure_logging(args.log_level)
    try:
        return TraderClient(args, requests, sys.stdout).run()
    except Exception:
        log.exception("client %s stopped by an unexpected error",
                      session_id_of(args.begin_string, args.sender, args.target))
        return 1


if __name__ == "__main__":
    sys.exit(main())
