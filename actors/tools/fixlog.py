"""``fixmesh log SESSION``: a session's stored messages as an operator reads them.

    fixmesh log --config deploy/topology.yaml client
    fixmesh log client --type NewOrderSingle --clordid 42 --since 09:30
    fixmesh log venue --direction out --seq 100-200 --raw
    fixmesh log client --follow
    fixmesh log client --archives
    fixmesh log client --archive 20261201T220000Z-00000003 --type ExecutionReport

Reads the session's file store without locking it (the session keeps
running): the messages it sent (every one, numbered) and, when the session
keeps them (``store: {keep_incoming: true}``), the messages it received and
processed. Both directions are merged by SendingTime (52), so the output
reads as the conversation it was. A sequence reset (daily, or a Logon with
ResetSeqNumFlag) archives the ended sequence's messages: ``--archives``
lists them, ``--archive NAME`` reads one with the same filters.

Each message is one line: SendingTime, direction, MsgSeqNum, the message
name, then its fields as ``Name=value`` with enumerations spelled out
(``Side=1(BUY)``), from the session's data dictionary when it has one and
from a short built-in table of common tags otherwise. ``--raw`` prints the
wire form with ``|`` for SOH. Either way secrets (Password 554 and the
topology's ``secret_tags``) are shown as ``***``.

Memory does not grow with the store: messages are read in chunks of
``CHUNK`` and filtered as they stream.
"""

from __future__ import annotations

import argparse
import heapq
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from actors.fix import orders as O
from actors.fix import tags as T
from actors.fix.codec import GarbledMessage, parse
from actors.fix.dictionary import DataDictionary
from actors.fix.message import Message
from actors.fix.secrets import mask_fields, mask_wire
from actors.fix.timefmt import NS_PER_S, parse_utc_timestamp
from actors.gateway.topology import ConfigError, Topology, load_topology
from actors.shell.dictionaries import DictionaryFileError, load_dictionary
from actors.store import FileStore, StoreError, archived_sequences

DEFAULT_TOPOLOGY = "deploy/topology.yaml"
#: Messages read from the store at a time.
CHUNK = 1000
#: How often ``--follow`` looks at the store again.
FOLLOW_INTERVAL_S = 0.25

OUT = "OUT"
IN = "IN"

#: Names of common tags, for sessions without a data dictionary (facts of the FIX specification).
BUILTIN_FIELD_NAMES: dict[int, str] = {
    T.BEGIN_STRING: "BeginString", T.BODY_LENGTH: "BodyLength", T.MSG_TYPE: "MsgType",
    T.MSG_SEQ_NUM: "MsgSeqNum", T.SENDER_COMP_ID: "SenderCompID", T.TARGET_COMP_ID: "TargetCompID",
    T.SENDING_TIME: "SendingTime", T.POSS_DUP_FLAG: "PossDupFlag", T.ORIG_SENDING_TIME: "OrigSendingTime",
    T.CHECKSUM: "CheckSum", T.TEXT: "Text", T.HEART_BT_INT: "HeartBtInt", T.ENCRYPT_METHOD: "EncryptMethod",
    T.TEST_REQ_ID: "TestReqID", T.BEGIN_SEQ_NO: "BeginSeqNo", T.END_SEQ_NO: "EndSeqNo",
    T.NEW_SEQ_NO: "NewSeqNo", T.GAP_FILL_FLAG: "GapFillFlag", T.REF_SEQ_NUM: "RefSeqNum",
    T.RESET_SEQ_NUM_FLAG: "ResetSeqNumFlag", T.USERNAME: "Username", T.PASSWORD: "Password",
    T.SESSION_REJECT_REASON: "SessionRejectReason", T.REF_TAG_ID: "RefTagID", T.REF_MSG_TYPE: "RefMsgType",
    T.DEFAULT_APPL_VER_ID: "DefaultApplVerID", T.NEXT_EXPECTED_MSG_SEQ_NUM: "NextExpectedMsgSeqNum",
    T.POSS_RESEND: "PossResend", T.ON_BEHALF_OF_COMP_ID: "OnBehalfOfCompID",
    T.DELIVER_TO_COMP_ID: "DeliverToCompID", T.BUSINESS_REJECT_REASON: "BusinessRejectReason",
    O.AVG_PX: "AvgPx", O.CL_ORD_ID: "ClOrdID", O.CUM_QTY: "CumQty", O.EXEC_ID: "ExecID",
    O.EXEC_TRANS_TYPE: "ExecTransType", O.HANDL_INST: "HandlInst", O.LAST_PX: "LastPx", O.LAST_QTY: "LastQty",
    O.ORDER_ID: "OrderID", O.ORDER_QTY: "OrderQty", O.ORD_STATUS: "OrdStatus", O.ORD_TYPE: "OrdType",
    O.ORIG_CL_ORD_ID: "OrigClOrdID", O.PRICE: "Price", O.SIDE: "Side", O.SYMBOL: "Symbol",
    O.TRANSACT_TIME: "TransactTime", O.CXL_REJ_REASON: "CxlRejReason", O.ORD_REJ_REASON: "OrdRejReason",
    O.EXEC_TYPE: "ExecType", O.LEAVES_QTY: "LeavesQty", O.CXL_REJ_RESPONSE_TO: "CxlRejResponseTo",
}
#: MsgType names for sessions without a data dictionary.
BUILTIN_MSG_TYPE_NAMES: dict[str, str] = {
    "0": "Heartbeat", "1": "TestRequest", "2": "ResendRequest", "3": "Reject", "4": "SequenceReset",
    "5": "Logout", "A": "Logon", "j": "BusinessMessageReject", "D": "NewOrderSingle", "8": "ExecutionReport",
    "F": "OrderCancelRequest", "G": "OrderCancelReplaceRequest", "9": "OrderCancelReject",
    "BE": "UserRequest", "BF": "UserResponse",
}


class LogError(ValueError):
    """An argument or a store that the tool cannot use; the message says which and how to fix it."""


@dataclass(frozen=True, slots=True)
class Record:
    """One stored message: which way it went, its number, its bytes and its SendingTime (ns, 0 if none)."""

    direction: str
    seq: int
    data: bytes
    sending_ns: int


@dataclass(frozen=True, slots=True)
class Query:
    """What to show; every filter given must match."""

    directions: frozenset[str] = frozenset({OUT, IN})
    msg_types: frozenset[str] = frozenset()
    first_seq: int = 1
    last_seq: int | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    cl_ord_id: bytes | None = None

    def matches(self, record: Record, message: Message | None) -> bool:
        if record.seq < self.first_seq or (self.last_seq is not None and record.seq > self.last_seq):
            return False
        if self.since_ns is not None and record.sending_ns < self.since_ns:
            return False
        if self.until_ns is not None and record.sending_ns > self.until_ns:
            return False
        if self.msg_types and (message is None or message.msg_type not in self.msg_types):
            return False
        return self.cl_ord_id is None or (message is not None and message.get(O.CL_ORD_ID) == self.cl_ord_id)


class Names:
    """Tag, enumeration and MsgType names: the session's dictionaries first, the built-in table after."""

    def __init__(self, dictionaries: Sequence[DataDictionary] = ()) -> None:
        self._dictionaries = tuple(dictionaries)

    def msg_type(self, msg_type: str) -> str:
        for dictionary in self._dictionaries:
            definition = dictionary.message(msg_type)
            if definition is not None:
                return definition.name
        return BUILTIN_MSG_TYPE_NAMES.get(msg_type, f"MsgType {msg_type}")

    def msg_type_of(self, text: str) -> str:
        """A MsgType given by name (``NewOrderSingle``) or value (``D``) -> its value."""
        for dictionary in self._dictionaries:
            for value, definition in dictionary.messages.items():
                if definition.name == text:
                    return value
        return next((value for value, name in BUILTIN_MSG_TYPE_NAMES.items() if name == text), text)

    def field(self, tag: int, value: bytes) -> str:
        name, description = str(tag), None
        for dictionary in self._dictionaries:
            definition = dictionary.field(tag)
            if definition is not None:
                name = definition.name
                text = value.decode("latin-1")
                description = next((d for v, d in definition.values if v == text), None)
                break
        else:
            name = BUILTIN_FIELD_NAMES.get(tag, name)
        shown = value.decode("latin-1")
        if tag == T.MSG_TYPE:
            return f"{name}={self.msg_type(shown)}"
        return f"{name}={shown}({description})" if description else f"{name}={shown}"


def format_record(record: Record, names: Names | None, raw: bool, secret_tags: frozenset[int]) -> str:
    """One line: SendingTime, direction, MsgSeqNum, then the message (named fields, or the wire form)."""
    when = _utc_text(record.sending_ns) if record.sending_ns else "-" * 23
    head = f"{when}  {record.direction:<3} {record.seq:>8}"
    if raw or names is None:
        return f"{head}  {mask_wire(record.data, secret_tags).decode('latin-1').replace(chr(1), '|')}"
    try:
        message = parse(record.data)
    except GarbledMessage as exc:
        return f"{head}  (unreadable: {exc}) {mask_wire(record.data, secret_tags)[:120]!r}"
    skip = {T.BEGIN_STRING, T.BODY_LENGTH, T.MSG_TYPE, T.MSG_SEQ_NUM, T.SENDING_TIME, T.CHECKSUM}
    fields = mask_fields(((t, v) for t, v in message.fields if t not in skip), secret_tags)
    return f"{head}  {names.msg_type(message.msg_type):<24} " + " ".join(names.field(t, v) for t, v in fields)


# ---------------------------------------------------------------- reading the store


def records(store: FileStore, direction: str, first_seq: int, last_seq: int | None) -> Iterator[Record]:
    """The stored messages of one direction from ``first_seq``, read ``CHUNK`` at a time."""
    get = store.get_outgoing if direction == OUT else store.get_incoming
    last = (store.next_sender_seq if direction == OUT else store.next_target_seq) - 1
    if last_seq is not None:
        last = min(last, last_seq)
    begin = max(first_seq, 1)
    while begin <= last:
        end = min(begin + CHUNK - 1, last)
        for seq, data in get(begin, end):
            yield Record(direction, seq, data, _sending_ns(data))
        begin = end + 1


def _sending_ns(data: bytes) -> int:
    start = data.find(b"\x0152=")
    if start < 0:
        return 0
    end = data.find(b"\x01", start + 4)
    return parse_utc_timestamp(data[start + 4:end if end >= 0 else len(data)]) or 0


def merged(store: FileStore, query: Query, first: dict[str, int]) -> Iterator[Record]:
    """Both directions merged by SendingTime (stable within a direction), from ``first[direction]``."""
    streams = [records(store, d, max(first[d], query.first_seq), query.last_seq)
               for d in (OUT, IN) if d in query.directions]
    return heapq.merge(*streams, key=lambda r: r.sending_ns)


def selected(stream: Iterator[Record], query: Query) -> Iterator[Record]:
    for record in stream:
        try:
            message: Message | None = parse(record.data)
        except GarbledMessage:
            message = None
        if query.matches(record, message):
            yield record


# ---------------------------------------------------------------- the command


@dataclass(frozen=True, slots=True)
class Source:
    """Where a session's store is and how to name its fields."""

    directory: Path
    session: str
    names: Names
    secret_tags: frozenset[int]


def source_of(topology: Topology, session: str) -> Source:
    settings = topology.session(session)
    if settings.store.kind != "file" or settings.store.directory is None:
        raise LogError(f"{topology.path}: sessions.{session}.store: a memory store keeps nothing to show; "
                       "set store: {type: file} to keep the session's messages")
    dictionaries = []
    for path in (settings.transport_dictionary, settings.data_dictionary):
        if path is not None:
            try:
                dictionaries.append(load_dictionary(str(path)))
            except DictionaryFileError as exc:
                raise LogError(str(exc)) from None
    return Source(settings.store.directory, session, Names(dictionaries), topology.secret_tags)


def run(source: Source, query: Query, *, raw: bool, follow: bool, out: TextIO,
        stop: Callable[[], bool] = lambda: False, archived: str | None = None) -> int:
    """Print what ``query`` selects; with ``follow``, keep printing what the session stores next.

    ``archived``: read that archived sequence instead of the live store.
    """
    first = {OUT: 1, IN: 1}
    generation: int | None = None
    shown = 0
    while True:
        try:
            store = FileStore.inspect(source.directory, source.session, archived)
        except StoreError as exc:
            raise LogError(f"{exc}") from None
        try:
            if generation is not None and store.generation != generation:
                out.write(f"-- the session's sequence numbers were reset (store generation {store.generation})"
                          f"{_archived_as(source, generation)}\n")
                first = {OUT: 1, IN: 1}
            generation = store.generation
            for record in selected(merged(store, query, first), query):
                out.write(format_record(record, None if raw else source.names, raw, source.secret_tags) + "\n")
                shown += 1
            first = {OUT: store.next_sender_seq, IN: store.next_target_seq}
        finally:
            store.close()
        out.flush()
        if not follow or stop():
            return 0 if shown or follow else 1
        time.sleep(FOLLOW_INTERVAL_S)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fixmesh log", description="Show a session's stored messages, decoded.")
    parser.add_argument("session", help="the session's name in the topology")
    parser.add_argument("--config", default=DEFAULT_TOPOLOGY, help=f"the topology file (default: {DEFAULT_TOPOLOGY})")
    parser.add_argument("--direction", choices=["in", "out", "both"], default="both",
                        help="received (in: needs keep_incoming), sent (out), or both (default)")
    parser.add_argument("--type", action="append", default=[], metavar="MSGTYPE",
                        help="only this MsgType, by name or value (NewOrderSingle or D); repeat for several")
    parser.add_argument("--seq", metavar="FROM-TO", help="only MsgSeqNum in this range: 100-200, 100- or -200")
    parser.add_argument("--since", metavar="TIME", help="only messages sent at or after TIME (UTC): "
                        "2026-11-30T09:30:00, or 09:30 for today")
    parser.add_argument("--until", metavar="TIME", help="only messages sent at or before TIME (UTC)")
    parser.add_argument("--clordid", help="only messages with this ClOrdID (11)")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new messages until Ctrl-C")
    parser.add_argument("--raw", action="store_true", help="the wire form with | for SOH")
    parser.add_argument("--archives", action="store_true",
                        help="list the sequences that resets ended and the store archived, then exit")
    parser.add_argument("--archive", metavar="NAME", help="read this archived sequence (a name --archives prints)")
    args = parser.parse_args(argv)
    if args.archive is not None and args.follow:
        parser.error("--follow reads the live store; an archived sequence does not change")
    return args


def _archived_as(source: Source, generation: int) -> str:
    names = [s.name for s in archived_sequences(source.directory, source.session) if s.generation == generation]
    return f"; the ended sequence is archived as {names[0]} (--archive {names[0]})" if names else ""


def list_archives(source: Source, out: TextIO) -> int:
    sequences = archived_sequences(source.directory, source.session)
    for sequence in sequences:
        out.write(f"{sequence.name}  ended {_utc_text(sequence.ended_ns)}  store generation {sequence.generation}\n")
    if not sequences:
        out.write(f"no archived sequence of {source.session!r} in {source.directory}\n")
    return 0


def query_of(args: argparse.Namespace, names: Names, today: datetime) -> Query:
    first, last = _seq_range(args.seq)
    directions = {"in": {IN}, "out": {OUT}, "both": {IN, OUT}}[args.direction]
    return Query(
        directions=frozenset(directions),
        msg_types=frozenset(names.msg_type_of(t) for t in args.type),
        first_seq=first,
        last_seq=last,
        since_ns=None if args.since is None else _time_ns(args.since, today, "--since"),
        until_ns=None if args.until is None else _time_ns(args.until, today, "--until"),
        cl_ord_id=None if args.clordid is None else args.clordid.encode("latin-1"),
    )


def _seq_range(text: str | None) -> tuple[int, int | None]:
    if text is None:
        return 1, None
    low, dash, high = text.partition("-")
    try:
        first = int(low) if low else 1
        last = int(high) if high else None
        if not dash:
            last = first
    except ValueError:
        raise LogError(f"--seq {text!r}: expected FROM-TO, e.g. 100-200, 100- or -200") from None
    if first < 1 or (last is not None and last < first):
        raise LogError(f"--seq {text!r}: expected 1 <= FROM <= TO")
    return first, last


def _time_ns(text: str, today: datetime, option: str) -> int:
    value = text.strip().removesuffix("Z")
    for form in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return _ns(datetime.strptime(value, form).replace(tzinfo=UTC))
        except ValueError:
            pass
    for form in ("%H:%M:%S", "%H:%M"):
        try:
            clock = datetime.strptime(value, form)
        except ValueError:
            continue
        day = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return _ns(day + timedelta(hours=clock.hour, minutes=clock.minute, seconds=clock.second))
    raise LogError(f"{option} {text!r}: expected a UTC time such as 2026-11-30T09:30:00 or 09:30 (today)")


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * NS_PER_S + moment.microsecond * 1000


def _utc_text(ns: int) -> str:
    seconds, rest = divmod(ns, NS_PER_S)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1_000_000:03d}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        source = source_of(load_topology(args.config), args.session)
        if args.archives:
            return list_archives(source, sys.stdout)
        query = query_of(args, source.names, datetime.now(UTC))
        return run(source, query, raw=args.raw, follow=args.follow, out=sys.stdout, archived=args.archive)
    except (ConfigError, LogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
