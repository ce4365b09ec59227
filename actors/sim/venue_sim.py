"""A FIX acceptor that behaves like a simple exchange, for demos and tests.

    fixmesh venue-sim --port 9877 --sender VENUE --target GATEWAY [--fill-delay-ms 200]

The gateway's Driven session (or any initiator) logs on and sends
NewOrderSingle (35=D) and OrderCancelRequest (35=F); the simulator answers
with ExecutionReports (35=8) and OrderCancelRejects (35=9) by fixed rules, so
that a test can predict every report (``docs/venue-sim.md``):

* an order that fails validation gets one ExecutionReport Rejected with a
  Text naming the reason; one without ClOrdID (11), which no report could
  refer to, gets a BusinessMessageReject;
* a good order gets New, then fills: up to 100 at once, up to 1,000 in two
  parts, more in three; a limit order fills at its price, a market order at
  a reference price fixed by the symbol and ``--seed``;
* a cancel of an open order gets Canceled, of anything else a reject;
* any other application MsgType gets a BusinessMessageReject from the
  session layer (``SessionConfig.app_msg_types``).

With ``--fill-delay-ms N`` the New goes out at once and each fill N ms after
the previous one, timed by the loop's deadline (nothing sleeps), which leaves
a window for a cancel. Orders live in memory only: a restarted simulator has
forgotten its open orders and their pending fills, even when ``--store-dir``
keeps the session's sequence numbers. SIGTERM (or SIGINT) logs out and exits 0.
"""

from __future__ import annotations

import argparse
import heapq
import logging
import re
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Final

from actors.fix import tags as T
from actors.fix.config import Role, SessionConfig
from actors.fix.message import Message
from actors.fix.orders import (
    AVG_PX,
    BUSINESS_MESSAGE_REJECT,
    CL_ORD_ID,
    CUM_QTY,
    CXL_REJ_REASON,
    CXL_REJ_RESPONSE_TO,
    DUPLICATE_ORDER,
    EXCEEDS_LIMIT,
    EXEC_ID,
    EXEC_TRANS_TYPE,
    EXEC_TYPE,
    EXECUTION_REPORT,
    LAST_PX,
    LAST_QTY,
    LEAVES_QTY,
    NEW_ORDER_SINGLE,
    ORD_REJ_REASON,
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
    REQUIRED_FIELD_MISSING,
    SIDE,
    SIDE_BUY,
    SIDE_SELL,
    SYMBOL,
    TOO_LATE_TO_CANCEL,
    TRANSACT_TIME,
    UNKNOWN_ORDER,
    UNKNOWN_SYMBOL,
    ExecType,
    OrdStatus,
)
from actors.fix.outputs import Output, StateChanged
from actors.fix.states import SessionState
from actors.fix.timefmt import Instant, TimestampFormatter
from actors.shell import clock
from actors.shell.driver import SessionDriver
from actors.shell.host import AcceptorSpec, HostSpec, SessionHost, SessionSpec, StoreSpec
from actors.shell.process import configure_logging
from actors.sim.endpoint import session_id_of
from actors.sim.tls_options import add_tls_arguments, tls_settings
from actors.store import Durability

log = logging.getLogger("fixmesh.venue_sim")

STATUS_NAMES: Final = {
    b"0": "new", b"1": "partially filled", b"2": "filled", b"3": "done for day", b"4": "canceled",
    b"6": "pending cancel", b"8": "rejected", b"A": "pending new", b"C": "expired",
}

_DECIMAL = re.compile(rb"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def parse_positive(value: bytes | None) -> Decimal | None:
    """A FIX Qty or Price above zero, or None: no sign, no exponent, no NaN."""
    if value is None or _DECIMAL.fullmatch(value) is None:
        return None
    number = Decimal(value.decode("ascii"))
    return number if number > 0 else None


def format_decimal(value: Decimal) -> str:
    """Plain notation without trailing zeros: 101.5, 100, 0."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


# ------------------------------------------------------------ fill rules

#: Orders of at most this quantity fill at once.
SINGLE_FILL_MAX_QTY: Final = Decimal(100)
#: Orders of at most this quantity fill in two parts; larger ones in three.
TWO_FILLS_MAX_QTY: Final = Decimal(1000)
#: An AvgPx is rounded to this many decimal places.
AVG_PX_PLACES: Final = Decimal("1E-8")
#: Final orders kept for duplicate detection and cancel replies, beyond which the oldest are forgotten.
MAX_REMEMBERED_ORDERS: Final = 100_000


def fill_quantities(qty: Decimal) -> list[Decimal]:
    """The sizes an order of ``qty`` fills in: equal whole parts, the remainder in the last.

    Deterministic from the quantity alone so that a test can predict every
    report: 100 -> [100]; 250 -> [125, 125]; 1001 -> [333, 333, 335].
    """
    if qty <= SINGLE_FILL_MAX_QTY:
        return [qty]
    parts = 2 if qty <= TWO_FILLS_MAX_QTY else 3
    part = (qty / parts).to_integral_value(rounding=ROUND_DOWN)
    return [part] * (parts - 1) + [qty - part * (parts - 1)]


def reference_price(symbol: str, seed: int) -> Decimal:
    """The price market orders in ``symbol`` fill at: 10.00 to 999.99, fixed by symbol and seed.

    CRC-32 rather than ``hash()``, whose value changes per process.
    """
    digest = zlib.crc32(f"{seed}:{symbol}".encode())
    return Decimal(1000 + digest % 99_000).scaleb(-2)


@dataclass(frozen=True, slots=True)
class VenueRules:
    """What the simulator rejects and how it prices market orders."""

    reject_symbols: frozenset[str] = frozenset({"REJECT"})
    max_order_qty: Decimal = Decimal(1_000_000)
    seed: int = 0
    #: Between the New and the first fill, and between fills; 0 = all in the same batch.
    fill_delay_s: float = 0.0


# ------------------------------------------------------------ the venue


@dataclass(frozen=True, slots=True)
class Reply:
    """An application message for the counterparty."""

    msg_type: str
    body: list[tuple[int, bytes]]


@dataclass(slots=True)
class Order:
    """One order as the venue knows it; fields given by the counterparty stay as they came."""

    order_id: str
    cl_ord_id: bytes
    given: dict[int, bytes]
    qty: Decimal
    fill_px: Decimal
    plan: list[Decimal] = field(default_factory=list)
    #: Every ClOrdID the order is known by: its own, then those of the cancels that ended it.
    names: list[bytes] = field(default_factory=list)
    status: bytes = OrdStatus.NEW
    cum_qty: Decimal = Decimal(0)
    cum_value: Decimal = Decimal(0)
    executions: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED)

    @property
    def leaves_qty(self) -> Decimal:
        return self.qty - self.cum_qty if self.is_open else Decimal(0)

    @property
    def avg_px(self) -> Decimal:
        if not self.cum_qty:
            return Decimal(0)
        return (self.cum_value / self.cum_qty).quantize(AVG_PX_PLACES)

    def fingerprint(self) -> tuple[bytes | None, ...]:
        return tuple(self.given.get(tag) for tag in _ECHOED)


#: Order fields echoed in every report about the order, when the order had them.
_ECHOED: Final = (ORDER_QTY, ORD_TYPE, PRICE, SIDE, SYMBOL)


class Venue:
    """The exchange's order book logic: messages and time in, replies out; no socket, store or clock.

    Time is an argument: ``mono_s`` schedules delayed fills, ``utc_ns`` is
    the TransactTime (60) of every report.
    """

    def __init__(self, rules: VenueRules, *, version_rank: int, id_prefix: str) -> None:
        self.rules = rules
        self.version_rank = version_rank
        self.id_prefix = id_prefix
        self._orders: dict[str, Order] = {}
        self._by_cl_ord_id: dict[bytes, Order] = {}
        self._due: list[tuple[float, int, str]] = []
        self._next_order = 1
        self._scheduled = 0
        self._ts = TimestampFormatter(3 if version_rank >= 42 else 0)
        self._other_reason = b"99" if version_rank >= 44 else b"0"

    @property
    def open_orders(self) -> int:
        return sum(1 for order in self._orders.values() if order.is_open)

    # ------------------------------------------------------------ inbound

    def on_message(self, message: Message, now: Instant) -> list[Reply]:
        mt = message.msg_type
        if mt == NEW_ORDER_SINGLE:
            return self._new_order(message, now)
        if mt == ORDER_CANCEL_REQUEST:
            return self._cancel(message, now)
        log.warning("MsgType %r reached the venue although the session should have rejected it", mt)
        return []

    def next_deadline(self) -> float | None:
        return self._due[0][0] if self._due else None

    def on_timer(self, now: Instant) -> list[Reply]:
        """Fills that are due; a fill whose order was canceled meanwhile is dropped."""
        replies: list[Reply] = []
        while self._due and self._due[0][0] <= now.mono_s:
            due_s, _, order_id = heapq.heappop(self._due)
            order = self._orders.get(order_id)
            if order is not None and order.is_open and order.plan:
                replies.append(self._fill(order, now))
                if order.plan:
                    self._schedule(due_s + self.rules.fill_delay_s, order)
        return replies

    # ------------------------------------------------------------- orders

    def _new_order(self, message: Message, now: Instant) -> list[Reply]:
        cl_ord_id = message.get(CL_ORD_ID)
        if not cl_ord_id:
            text = "ClOrdID (11) missing: no ExecutionReport could refer to this order"
            log.info("NewOrderSingle %s rejected: %s", message.seq_num, text)
            return [self._business_reject(message, text)]
        given = {tag: value for tag in _ECHOED if (value := message.get(tag)) is not None}
        known = self._by_cl_ord_id.get(cl_ord_id)
        resent = message.flag(T.POSS_DUP_FLAG) or message.flag(T.POSS_RESEND)
        if known is not None and resent and known.fingerprint() == tuple(given.get(tag) for tag in _ECHOED):
            log.info("order %s is a resend of %s; already answered", cl_ord_id.decode("latin-1"), known.order_id)
            return []
        order = Order(self._new_order_id(), cl_ord_id, given, Decimal(0), Decimal(0))
        problem = self._problem(order, known)
        # A duplicate of an open order must not take that order's ClOrdID away from it.
        self._remember(order, index=known is None or not known.is_open)
        if problem is not None:
            text, reason = problem
            order.status = OrdStatus.REJECTED
            log.info("order %s (%s) rejected: %s", order.order_id, cl_ord_id.decode("latin-1"), text)
            return [self._report(order, ExecType.REJECTED, now, text=text, rej_reason=reason)]
        order.plan = fill_quantities(order.qty)
        log.debug("order %s (%s) accepted: fills %s", order.order_id, cl_ord_id.decode("latin-1"),
                  " + ".join(format_decimal(q) for q in order.plan))
        replies = [self._report(order, ExecType.NEW, now)]
        if self.rules.fill_delay_s > 0:
            self._schedule(now.mono_s + self.rules.fill_delay_s, order)
        else:
            while order.plan:
                replies.append(self._fill(order, now))
        return replies

    def _problem(self, order: Order, known: Order | None) -> tuple[str, bytes] | None:
        """Why the order is rejected (Text, OrdRejReason), or None; sets its quantity and fill price."""
        given = order.given
        other = self._other_reason
        if known is not None and known.is_open:
            return f"duplicate ClOrdID (11) of open order {known.order_id}", DUPLICATE_ORDER
        symbol = given.get(SYMBOL)
        if not symbol:
            return "Symbol (55) missing", other
        side = given.get(SIDE)
        if side not in (SIDE_BUY, SIDE_SELL):
            return _bad_value("Side", SIDE, side, "1 (buy) or 2 (sell)"), other
        qty = parse_positive(given.get(ORDER_QTY))
        if qty is None:
            return _bad_value("OrderQty", ORDER_QTY, given.get(ORDER_QTY), "a number above 0"), other
        ord_type = given.get(ORD_TYPE)
        if ord_type not in (ORD_TYPE_MARKET, ORD_TYPE_LIMIT):
            return _bad_value("OrdType", ORD_TYPE, ord_type, "1 (market) or 2 (limit)"), other
        if ord_type == ORD_TYPE_LIMIT:
            price = parse_positive(given.get(PRICE))
            if price is None:
                return _bad_value("Price", PRICE, given.get(PRICE), "a number above 0 for a limit order"), other
        else:
            price = reference_price(symbol.decode("latin-1"), self.rules.seed)
        if symbol.decode("latin-1") in self.rules.reject_symbols:
            return f"unknown symbol {symbol.decode('latin-1')!r}", UNKNOWN_SYMBOL
        if qty > self.rules.max_order_qty:
            limit = format_decimal(self.rules.max_order_qty)
            return f"OrderQty (38) {format_decimal(qty)} is above the limit of {limit}", EXCEEDS_LIMIT
        order.qty = qty
        order.fill_px = price
        return None

    def _fill(self, order: Order, now: Instant) -> Reply:
        qty = order.plan.pop(0)
        order.cum_qty += qty
        order.cum_value += qty * order.fill_px
        last = not order.plan
        order.status = OrdStatus.FILLED if last else OrdStatus.PARTIALLY_FILLED
        if self.version_rank >= 43:
            exec_type = ExecType.TRADE
        else:
            exec_type = ExecType.FILL_42 if last else ExecType.PARTIAL_FILL_42
        return self._report(order, exec_type, now, last_fill=(qty, order.fill_px))

    def _schedule(self, due_s: float, order: Order) -> None:
        self._scheduled += 1
        heapq.heappush(self._due, (due_s, self._scheduled, order.order_id))

    def _new_order_id(self) -> str:
        order_id = f"{self.id_prefix}{self._next_order}"
        self._next_order += 1
        return order_id

    def _remember(self, order: Order, *, index: bool) -> None:
        """Keep the order; past the bound, forget the oldest final ones (open orders are always kept)."""
        self._orders[order.order_id] = order
        if index:
            self._name(order, order.cl_ord_id)
        if len(self._orders) <= MAX_REMEMBERED_ORDERS:
            return
        keep = MAX_REMEMBERED_ORDERS * 9 // 10
        for order_id in [oid for oid, o in self._orders.items() if not o.is_open][: len(self._orders) - keep]:
            old = self._orders.pop(order_id)
            for name in old.names:
                if self._by_cl_ord_id.get(name) is old:
                    del self._by_cl_ord_id[name]

    def _name(self, order: Order, cl_ord_id: bytes) -> None:
        order.names.append(cl_ord_id)
        self._by_cl_ord_id[cl_ord_id] = order

    # ------------------------------------------------------------ cancels

    def _cancel(self, message: Message, now: Instant) -> list[Reply]:
        cl_ord_id = message.get(CL_ORD_ID)
        if not cl_ord_id:
            return [self._business_reject(message, "ClOrdID (11) missing: no reply could refer to this cancel")]
        orig = message.get(ORIG_CL_ORD_ID)
        order = self._by_cl_ord_id.get(orig) if orig else None
        if order is None and (order_id := message.get_str(ORDER_ID)) is not None:
            order = self._orders.get(order_id)
        if order is None:
            text = "unknown order" if orig else "OrigClOrdID (41) missing"
            log.info("cancel %s of %s rejected: %s", cl_ord_id.decode("latin-1"), _text(orig), text)
            return [self._cancel_reject(cl_ord_id, orig, None, UNKNOWN_ORDER, text, now)]
        if not order.is_open:
            text = f"too late to cancel: order {order.order_id} is {STATUS_NAMES.get(order.status, 'final')}"
            log.info("cancel %s rejected: %s", cl_ord_id.decode("latin-1"), text)
            return [self._cancel_reject(cl_ord_id, orig, order, TOO_LATE_TO_CANCEL, text, now)]
        order.status = OrdStatus.CANCELED
        order.plan.clear()
        # FIX: after a cancel the order is known by the cancel's ClOrdID too.
        holder = self._by_cl_ord_id.get(cl_ord_id)
        if holder is None or not holder.is_open:
            self._name(order, cl_ord_id)
        log.info("order %s canceled by %s after %s filled", order.order_id, cl_ord_id.decode("latin-1"),
                 format_decimal(order.cum_qty))
        return [self._report(order, ExecType.CANCELED, now, cl_ord_id=cl_ord_id, orig_cl_ord_id=order.cl_ord_id)]

    # ------------------------------------------------------------ replies

    def _report(
        self,
        order: Order,
        exec_type: bytes,
        now: Instant,
        *,
        last_fill: tuple[Decimal, Decimal] | None = None,
        text: str | None = None,
        rej_reason: bytes | None = None,
        cl_ord_id: bytes | None = None,
        orig_cl_ord_id: bytes | None = None,
    ) -> Reply:
        order.executions += 1
        body = [
            (ORDER_ID, order.order_id.encode()),
            (EXEC_ID, f"{order.order_id}-{order.executions}".encode()),
            (EXEC_TYPE, exec_type),
            (ORD_STATUS, order.status),
            (CL_ORD_ID, cl_ord_id or order.cl_ord_id),
            (LEAVES_QTY, format_decimal(order.leaves_qty).encode()),
            (CUM_QTY, format_decimal(order.cum_qty).encode()),
            (AVG_PX, format_decimal(order.avg_px).encode()),
            (TRANSACT_TIME, self._ts.format(now.utc_ns)),
            *order.given.items(),
        ]
        if self.version_rank <= 42:
            body.append((EXEC_TRANS_TYPE, b"0"))
        if last_fill is not None:
            last_qty, last_px = last_fill
            body += [(LAST_QTY, format_decimal(last_qty).encode()), (LAST_PX, format_decimal(last_px).encode())]
        if orig_cl_ord_id is not None:
            body.append((ORIG_CL_ORD_ID, orig_cl_ord_id))
        if text is not None:
            body.append((T.TEXT, text.encode("latin-1", "replace")))
        if rej_reason is not None:
            body.append((ORD_REJ_REASON, rej_reason))
        body.sort(key=_tag)
        return Reply(EXECUTION_REPORT, body)

    def _cancel_reject(
        self, cl_ord_id: bytes, orig: bytes | None, order: Order | None, reason: bytes, text: str, now: Instant
    ) -> Reply:
        body = [
            (ORDER_ID, order.order_id.encode() if order is not None else b"NONE"),
            (CL_ORD_ID, cl_ord_id),
            (ORIG_CL_ORD_ID, orig or b"NONE"),
            (ORD_STATUS, order.status if order is not None else OrdStatus.REJECTED),
            (CXL_REJ_RESPONSE_TO, b"1"),
            (CXL_REJ_REASON, reason),
            (T.TEXT, text.encode("latin-1", "replace")),
            (TRANSACT_TIME, self._ts.format(now.utc_ns)),
        ]
        body.sort(key=_tag)
        return Reply(ORDER_CANCEL_REJECT, body)

    def _business_reject(self, message: Message, text: str) -> Reply:
        body = [
            (T.REF_SEQ_NUM, message.get(T.MSG_SEQ_NUM) or b"0"),
            (T.TEXT, text.encode("latin-1", "replace")),
            (T.REF_MSG_TYPE, message.msg_type.encode("latin-1")),
            (T.BUSINESS_REJECT_REASON, REQUIRED_FIELD_MISSING),
        ]
        return Reply(BUSINESS_MESSAGE_REJECT, body)


def _bad_value(name: str, tag: int, value: bytes | None, wanted: str) -> str:
    if value is None:
        return f"{name} ({tag}) missing"
    return f"{name} ({tag}) {value.decode('latin-1')!r} not supported: {wanted}"


def _text(value: bytes | None) -> str:
    return "-" if value is None else value.decode("latin-1")


def _tag(item: tuple[int, bytes]) -> int:
    return item[0]


# ------------------------------------------------------------ the shell


class VenueApp:
    """The driver's application and a loop timer source: orders go to the ``Venue``, its replies out.

    Replies to an incoming message are sent from the loop's timer, after the
    batch of session outputs that delivered it has run, not from
    ``on_message``: the session numbers its own replies to later messages of
    the same batch (a BusinessMessageReject, a Heartbeat) when it reads the
    batch, so a reply sent from inside it would get a higher MsgSeqNum yet
    reach the socket first, and the counterparty would see a gap. The
    message counts as processed (``driver.processed``) once its replies are
    stored.
    """

    def __init__(self, venue: Venue, now: Callable[[], Instant] = clock.now) -> None:
        self.venue = venue
        self.driver: SessionDriver | None = None
        self._now = now
        self._answers: list[tuple[int | None, list[Reply]]] = []

    def on_message(self, driver: SessionDriver, message: Message) -> bool:
        self._answers.append((message.seq_num, self.venue.on_message(message, self._now())))
        return False

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        if isinstance(output, StateChanged) and output.new is SessionState.CONNECTED:
            log.info("counterparty logged on; %d open orders", self.venue.open_orders)

    def next_deadline(self) -> float | None:
        return 0.0 if self._answers else self.venue.next_deadline()

    def on_timer(self) -> None:
        driver = self.driver
        if driver is None:
            return
        answers, self._answers = self._answers, []
        for seq, replies in answers:
            self._send(driver, replies)
            if seq is not None:
                driver.processed(seq)
        self._send(driver, self.venue.on_timer(self._now()))

    def _send(self, driver: SessionDriver, replies: list[Reply]) -> None:
        # Offline, the session stores each reply; the counterparty gets it by resend after its next Logon.
        for reply in replies:
            driver.send(reply.msg_type, reply.body)


class VenueProcess:
    """The simulator's session on a ``SessionHost``, with the ``Venue`` as its application; runs until SIGTERM."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        now = clock.now()
        self.session_id = session_id_of(args.begin_string, args.sender, args.target)
        config = SessionConfig(
            begin_string=args.begin_string,
            sender_comp_id=args.sender,
            target_comp_id=args.target,
            role=Role.ACCEPTOR,
            use_data_dictionary=args.data_dictionary is not None,
            app_msg_types=frozenset({NEW_ORDER_SINGLE, ORDER_CANCEL_REQUEST}),
        )
        store = StoreSpec("file" if args.store_dir else "memory", Path(args.store_dir) if args.store_dir else None,
                          Durability.BATCH)
        spec = SessionSpec(self.session_id, config, store, app_dictionary=args.data_dictionary)
        rules = VenueRules(
            reject_symbols=frozenset(args.reject_symbol or ["REJECT"]),
            max_order_qty=Decimal(args.max_qty),
            seed=args.seed,
            fill_delay_s=args.fill_delay_ms / 1000.0,
        )
        id_prefix = args.id_prefix if args.id_prefix is not None else f"{_base36(now.utc_ns // 1_000_000_000)}-"
        self.venue = Venue(rules, version_rank=config.version_rank, id_prefix=id_prefix)
        self.app = VenueApp(self.venue)
        listen = AcceptorSpec(args.host, args.port, tls=args.tls_settings)
        self.host = SessionHost(HostSpec(listen=listen, stop_text="venue simulator stopping"),
                                on_stopping=self._on_stopping)
        self.loop = self.host.loop
        self.driver = self.host.add_session(spec, self.app)
        self.app.driver = self.driver
        self.loop.add_timer_source(self.app)
        log.info("%s: OrderIDs %s1, %s2, ...", self.session_id, id_prefix, id_prefix)

    def run(self) -> int:
        self.host.start()
        print(f"listening on {self.args.host}:{self.host.port}", flush=True)
        self.host.run(max_wait_s=1.0)
        return 0

    def _on_stopping(self, reason: str) -> None:
        log.info("stop requested: logging out with %d open orders", self.venue.open_orders)


def _base36(number: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return text


def _non_negative_ms(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive_qty(text: str) -> str:
    if parse_positive(text.encode()) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fixmesh venue-sim", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="where to listen (default 127.0.0.1)")
    p.add_argument("--port", type=int, required=True, help="0 = any free port, printed at start")
    p.add_argument("--sender", default="VENUE", help="our SenderCompID (49) (default VENUE)")
    p.add_argument("--target", default="GATEWAY", help="the counterparty's CompID (default GATEWAY)")
    p.add_argument("--begin-string", default="FIX.4.4", choices=("FIX.4.2", "FIX.4.3", "FIX.4.4"))
    p.add_argument("--store-dir", help="FileStore directory for the session (default: a memory store); "
                                       "orders are never stored")
    p.add_argument("--fill-delay-ms", type=_non_negative_ms, default=0,
                   help="before the first fill and between fills (default 0: New and fills in one batch)")
    p.add_argument("--seed", type=int, default=0, help="picks the reference prices market orders fill at")
    p.add_argument("--reject-symbol", action="append", metavar="SYMBOL",
                   help="orders in this symbol are rejected as unknown; repeatable (default REJECT)")
    p.add_argument("--max-qty", type=_positive_qty, default="1000000",
                   help="orders above this OrderQty are rejected (default 1000000)")
    p.add_argument("--id-prefix", help="OrderIDs are PREFIX1, PREFIX2, ... (default: the start time in base 36 "
                                       "and '-', so that runs do not repeat IDs)")
    p.add_argument("--data-dictionary", help="QuickFIX XML dictionary to validate with (default: no validation)")
    p.add_argument("--log-level", default="INFO")
    add_tls_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    args.tls_settings = tls_settings(args, p, acceptor=True)
    configure_logging(args.log_level)
    try:
        return VenueProcess(args).run()
    except Exception:
        log.exception("venue simulator %s stopped by an unexpected error",
                      session_id_of(args.begin_string, args.sender, args.target))
        return 1


if __name__ == "__main__":
    sys.exit(main())
