"""The fuzzer's inputs: mutated FIX, reproducible from a seed and an input index.

``generate(seed, index, profile, context)`` draws everything from
``random.Random(f"{seed}:{index}")``; the context only fills in what must
be current on the wire (the next MsgSeqNum, SendingTime, a TestReqID). The
same seed and index give the same input, so a failure is reported as its
seed and index plus the bytes, and ``python -m tests.fuzz --seed S --start I
--inputs 1`` plays it again.

An input belongs to one phase:

* ``session``: written on the main connection after a valid Logon, where it
  reaches validation and the session state machine;
* ``logon``: the first bytes of a fresh connection while the session is
  logged off (mutated Logons, garbage, other first messages);
* ``side``: a second connection opened beside the session (idle, dribbling,
  flooding, half-closed, reset), which must be closed with nothing sent.

Each input says which answers the FIX spec allows (``expect``: patterns of
the runner's outcome labels such as ``silence``, ``reject:13``, ``logout``,
``resend_request``, ``disconnect``), or None when a random mutation may
rightly get any of them; the runner's invariants (well-formed output,
gapless numbering, a live process) hold for every input.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from actors.fix.dictionary import DataDictionary, parse_dictionary
from tests.fuzz.wire import SOH, Field, build, refresh

#: Outcome patterns (fnmatch) the FIX spec allows for an input; None: any outcome.
Expect = tuple[str, ...] | None

SILENCE: Expect = ("silence",)
ANY_REJECT: Expect = ("reject:*",)
LOGOUT: Expect = ("logout", "reject:*+logout")
DISCONNECT: Expect = ("disconnect",)

#: How often a block of inputs is a logon block, and how long a block is.
LOGON_BLOCK_P = 0.06
BLOCK = 16
SIDE_P = 0.012


@dataclass(frozen=True)
class Profile:
    """The acceptor the inputs are made for: its FIX version, dictionaries and CompIDs."""

    name: str
    begin: bytes
    app_dictionary: Path
    transport_dictionary: Path | None = None
    default_appl_ver_id: bytes | None = None
    #: Our SenderCompID: the acceptor's TargetCompID.
    sender: bytes = b"FUZZER"
    #: Our TargetCompID: the acceptor's SenderCompID.
    target: bytes = b"FIXMESH"

    @property
    def fixt(self) -> bool:
        return self.begin == b"FIXT.1.1"

    def dictionaries(self) -> tuple[DataDictionary, DataDictionary]:
        """(header and admin dictionary, application dictionary)."""
        app = _load(self.app_dictionary)
        return (_load(self.transport_dictionary) if self.transport_dictionary else app), app


@cache
def _load(path: Path) -> DataDictionary:
    return parse_dictionary(path.read_text(encoding="utf-8"), path.name)


@dataclass(frozen=True)
class Context:
    """What is current when an input is written."""

    #: The MsgSeqNum the acceptor expects next (the fuzzer keeps it so between inputs).
    seq: int
    #: SendingTime source: UTC nanoseconds now.
    now_ns: int
    #: The acceptor's next outgoing MsgSeqNum, as far as the fuzzer knows.
    their_seq: int = 1


@dataclass
class FuzzInput:
    index: int
    phase: str
    family: str
    op: str
    #: The writes, in order (a slow or bytewise input has many).
    chunks: list[bytes] = field(default_factory=list)
    #: Seconds to wait between writes.
    pause_s: float = 0.0
    expect: Expect = None
    #: ``session``: answer a ResendRequest the input provokes with a GapFill up to the input's own
    #: highest MsgSeqNum, so that the acceptor processes the message it queued.
    fill_gaps: bool = False
    #: TestReqIDs of TestRequests in the input, whose Heartbeats the runner expects in this order.
    test_ids: list[bytes] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    def describe(self) -> str:
        return f"#{self.index} {self.phase}/{self.family}/{self.op}"


def phase_of(seed: int, index: int) -> str:
    """The phase of an input, known before its bytes (the runner logs on or off for it)."""
    block = random.Random(f"{seed}:block:{index // BLOCK}")
    if block.random() < LOGON_BLOCK_P:
        return "logon"
    return "side" if random.Random(f"{seed}:side:{index}").random() < SIDE_P else "session"


def generate(seed: int, index: int, profile: Profile, context: Context) -> FuzzInput:
    rng = random.Random(f"{seed}:{index}")
    phase = phase_of(seed, index)
    g = _Gen(rng, profile, context, index)
    table = _SESSION_FAMILIES if phase == "session" else _LOGON_FAMILIES if phase == "logon" else _SIDE_FAMILIES
    names = list(table)
    weights = [table[name][0] for name in names]
    family = rng.choices(names, weights)[0]
    made = FuzzInput(index, phase, family, "")
    table[family][1](g, made)
    return made


# ---------------------------------------------------------------- building messages


class _Gen:
    """Building blocks shared by the families: valid messages of each kind, as field lists."""

    def __init__(self, rng: random.Random, profile: Profile, context: Context, index: int) -> None:
        self.rng = rng
        self.p = profile
        self.ctx = context
        self.index = index
        self.transport_dd, self.app_dd = profile.dictionaries()
        self._seq = context.seq

    # -- numbers and time

    def next_seq(self) -> int:
        """The next MsgSeqNum an input's valid messages use (several messages use several)."""
        seq = self._seq
        self._seq += 1
        return seq

    def stamp(self, offset_s: float = 0.0) -> bytes:
        ns = self.ctx.now_ns + int(offset_s * 1e9)
        sec, frac = divmod(ns, 1_000_000_000)
        return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(sec)).encode() + b".%03d" % (frac // 1_000_000)

    # -- headers and whole messages

    def header(self, msg_type: bytes, seq: int | None = None) -> list[Field]:
        fields: list[Field] = [(b"35", msg_type), (b"34", b"%d" % (self.next_seq() if seq is None else seq)),
                               (b"49", self.p.sender), (b"52", self.stamp()), (b"56", self.p.target)]
        return fields

    def message(self, msg_type: bytes, body: list[Field], seq: int | None = None) -> list[Field]:
        return self.header(msg_type, seq) + body

    def encode(self, fields: list[Field], **kwargs: bytes) -> bytes:
        return build(self.p.begin, fields, **kwargs)

    def logon_fields(self, seq: int | None = None, reset: bool = False, heartbeat: bytes = b"30") -> list[Field]:
        body: list[Field] = [(b"98", b"0"), (b"108", heartbeat)]
        if reset:
            body.append((b"141", b"Y"))
        if self.p.default_appl_ver_id is not None:
            body.append((b"1137", self.p.default_appl_ver_id))
        return self.message(b"A", body, seq)

    def test_request(self, test_id: bytes | None = None) -> tuple[list[Field], bytes]:
        test_id = test_id or b"T%d.%d" % (self.index, self.rng.randrange(1 << 30))
        return self.message(b"1", [(b"112", test_id)]), test_id

    def app(self, kind: str | None = None) -> list[Field]:
        """A valid application message: NewOrderSingle (maybe with parties), cancel, market data, list."""
        rng = self.rng
        kind = kind or rng.choice(["D", "D", "Dp", "F", "V", "E"])
        n = b"%d" % self.index
        if kind in ("D", "Dp"):
            body: list[Field] = [(b"11", b"O" + n), (b"21", b"1"), (b"38", b"100"), (b"40", b"2"), (b"44", b"10.5"),
                                 (b"54", b"1"), (b"55", b"FMX"), (b"60", self.stamp())]
            if kind == "Dp":
                body += self.parties(rng.randint(1, 3))
            return self.message(b"D", body)
        if kind == "F":
            return self.message(b"F", [(b"11", b"C" + n), (b"38", b"100"), (b"41", b"O1"), (b"54", b"1"),
                                       (b"55", b"FMX"), (b"60", self.stamp())])
        if kind == "V":
            return self.message(b"V", [(b"262", b"M" + n), (b"263", b"0"), (b"264", b"1"),
                                       (b"267", b"2"), (b"269", b"0"), (b"269", b"1"),
                                       (b"146", b"1"), (b"55", b"FMX")])
        entries = rng.randint(1, 3)
        body = [(b"66", b"L" + n), (b"68", b"%d" % entries), (b"394", b"1"), (b"73", b"%d" % entries)]
        for i in range(entries):
            body += [(b"11", b"E%s.%d" % (n, i)), (b"67", b"%d" % (i + 1))]
            if rng.random() < 0.5:
                body += self.parties(rng.randint(1, 2))
            body += [(b"55", b"FMX"), (b"54", b"1"), (b"38", b"10"), (b"40", b"1")]
        return self.message(b"E", body)

    def parties(self, count: int) -> list[Field]:
        out: list[Field] = [(b"453", b"%d" % count)]
        for i in range(count):
            out += [(b"448", b"P%d" % i), (b"447", b"D"), (b"452", b"%d" % (i + 1))]
        return out

    def heartbeat(self) -> list[Field]:
        return self.message(b"0", [])

    def any_valid(self) -> tuple[list[Field], Expect, list[bytes]]:
        """A valid message of any kind with the answer it gets (and TestReqIDs it asks for)."""
        choice = self.rng.random()
        if choice < 0.4:
            return self.app(), SILENCE, []
        if choice < 0.6:
            return self.heartbeat(), SILENCE, []
        fields, test_id = self.test_request()
        return fields, ("heartbeat",), [test_id]

    # -- dictionary knowledge

    def body_dd(self, msg_type: bytes) -> DataDictionary:
        return self.transport_dd if msg_type.decode("latin-1") in self.transport_dd.msg_types else self.app_dd

    def undefined_msg_type(self) -> bytes:
        """A one- or two-letter MsgType neither dictionary defines."""
        known = self.transport_dd.msg_types | self.app_dd.msg_types
        letters = "abcdefghijklmnopqrstuvwxyz"
        candidates = [c for c in letters if c not in known] + [f"z{c}" for c in letters if f"z{c}" not in known]
        return self.rng.choice(candidates).encode()

    def undefined_tag(self) -> int:
        """A tag below 5000 that neither dictionary defines."""
        # Header tags of any FIX version are left out: the validator places them in the header.
        known = set(self.transport_dd.fields) | set(self.app_dd.fields) | set(self.transport_dd.header_tags)
        candidates = [t for t in range(20, 5000) if t not in known]
        return self.rng.choice(candidates[:200])

    def foreign_tag(self, msg_type: bytes) -> int:
        """A tag the dictionary defines but not for this MsgType (and not a header or trailer tag)."""
        dd = self.body_dd(msg_type)
        inside = dd.messages[msg_type.decode()].layout.all_tags  # made on each call: once here, not per tag
        header = self.transport_dd.header_tags | self.transport_dd.trailer_tags
        candidates = sorted(t for t in dd.fields if t not in inside and t not in header and 0 < t < 5000
                            and t not in _LENGTH_TAGS and t not in _DATA_TAGS)
        return self.rng.choice(candidates[:400])


_LENGTH_TAGS = frozenset({90, 93, 95, 212, 348, 350, 352, 354, 356, 358, 360, 362, 364, 445, 618, 621, 1401, 1403})
_DATA_TAGS = frozenset({91, 89, 96, 213, 349, 351, 353, 355, 357, 359, 361, 363, 365, 446, 619, 622, 1402, 1404})


def _index_of(fields: list[Field], tag: bytes) -> int:
    for i, (t, _) in enumerate(fields):
        if t == tag:
            return i
    return -1


def _replace(fields: list[Field], tag: bytes, value: bytes) -> list[Field]:
    return [(t, value if t == tag else v) for t, v in fields]


def _without(fields: list[Field], tag: bytes) -> list[Field]:
    return [(t, v) for t, v in fields if t != tag]


def _random_bytes(rng: random.Random, n: int, alphabet: bytes | None = None) -> bytes:
    if alphabet is None:
        return bytes(rng.randrange(256) for _ in range(n))
    return bytes(rng.choice(alphabet) for _ in range(n))


def _no_frame_start(data: bytes) -> bytes:
    """``data`` with every ``8=`` broken, so that it cannot start a frame."""
    return data.replace(b"8=", b"8-")


# ---------------------------------------------------------------- session families


def _valid(g: _Gen, made: FuzzInput) -> None:
    kind = g.rng.choice(["app", "app", "heartbeat", "test_request", "reject", "gap_fill", "resend_all", "possdup"])
    made.op = kind
    if kind == "app":
        made.chunks, made.expect = [g.encode(g.app())], SILENCE
    elif kind == "heartbeat":
        fields = g.heartbeat()
        if g.rng.random() < 0.5 and g.p.fixt:
            fields.append((b"112", b"HB"))
        made.chunks, made.expect = [g.encode(fields)], SILENCE
    elif kind == "test_request":
        fields, test_id = g.test_request()
        made.chunks, made.expect, made.test_ids = [g.encode(fields)], ("heartbeat",), [test_id]
    elif kind == "reject":
        made.chunks = [g.encode(g.message(b"3", [(b"45", b"1"), (b"58", b"fuzz")]))]
        made.expect = SILENCE
    elif kind == "gap_fill":
        seq = g.next_seq()
        fields = g.message(b"4", [(b"36", b"%d" % (seq + g.rng.randint(1, 5))), (b"123", b"Y")], seq=seq)
        made.chunks, made.expect = [g.encode(fields)], SILENCE
    elif kind == "resend_all":
        # Everything the acceptor sent: session messages only (endpoint), so one GapFill; a Handler
        # may also resend application messages (the runner leaves those out of the label).
        made.chunks = [g.encode(g.message(b"2", [(b"7", b"1"), (b"16", b"0")]))]
        made.expect = ("sequence_reset", "silence")
    else:
        fields = g.app()
        seq_at = _index_of(fields, b"56")
        fields[seq_at + 1:seq_at + 1] = [(b"43", b"Y"), (b"122", g.stamp(-5.0))]
        made.chunks, made.expect = [g.encode(_sorted_header(fields))], SILENCE


def _sorted_header(fields: list[Field]) -> list[Field]:
    """Header fields (after 35) moved before the body, as a real engine writes them."""
    header_tags = {b"34", b"43", b"49", b"50", b"52", b"56", b"57", b"97", b"115", b"122", b"128", b"1128"}
    head = [f for f in fields[1:] if f[0] in header_tags]
    body = [f for f in fields[1:] if f[0] not in header_tags]
    return [fields[0]] + head + body


def _framing(g: _Gen, made: FuzzInput) -> None:
    """Frames that are not FIX: every one is ignored after Logon (garbled), nothing is answered."""
    rng = g.rng
    good = g.encode(g.heartbeat())
    ops: dict[str, Callable[[], list[bytes]]] = {
        "garbage_before": lambda: [_no_frame_start(_random_bytes(rng, rng.randint(1, 300))) + good],
        "nul_before": lambda: [b"\x00" * rng.randint(1, 64) + good],
        "drop_soh": lambda: [_drop_at(good, good.find(SOH, rng.randint(3, len(good) - 10)))],
        "double_soh": lambda: [_insert_at(good, good.find(SOH, rng.randint(3, len(good) - 10)), SOH)],
        "no_body_length": lambda: [good.replace(SOH + b"9=", SOH + b"99=", 1)],
        "body_length_third": lambda: [_body_length_third(good)],
        "begin_string_cut": lambda: [good.replace(b"8=" + g.p.begin, b"8=" + g.p.begin[:-1], 1)],
        # The same message again after a cut, as a peer writes it once more: one of the two is read.
        "truncated_then_valid": lambda: [good[:rng.randint(5, len(good) - 2)] + good],
        "only_soh": lambda: [SOH * rng.randint(1, 2000)],
        "eight_equals_flood": lambda: [b"8=" * rng.randint(1, 3000)],
    }
    made.op = rng.choice(list(ops))
    made.chunks = ops[made.op]()
    # Bytes before ``8=`` are skipped and the message after them is read as usual; the rest is garbled.
    made.expect = SILENCE
    if made.op == "eight_equals_flood":
        # ``8=`` k times before the next message is one frame whose BeginString is ``8=8=...FIX.4.4``;
        # when k is a multiple of 256 the pairs add nothing to its CheckSum, the frame is sound, and
        # a wrong BeginString after Logon is a Logout.
        made.expect = ("silence", "logout")


def _drop_at(data: bytes, i: int) -> bytes:
    return data if i < 0 else data[:i] + data[i + 1:]


def _insert_at(data: bytes, i: int, extra: bytes) -> bytes:
    return data if i < 0 else data[:i] + extra + data[i:]


def _body_length_third(data: bytes) -> bytes:
    """``8=..|35=..|9=..|``: BodyLength is not the second field."""
    first = data.find(SOH)
    second = data.find(SOH, first + 1)
    third = data.find(SOH, second + 1)
    return data[:first + 1] + data[second + 1:third + 1] + data[first + 1:second + 1] + data[third + 1:]


def _body_length(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    fields, expect, test_ids = g.any_valid()
    real = len(b"".join(t + b"=" + v + SOH for t, v in fields))
    op = rng.choice(["short", "long_padded", "zero", "negative", "letters", "empty", "huge_digits", "leading_zero",
                     "plus", "space", "far_beyond"])
    made.op = op
    pad = b""
    value = {
        "short": b"%d" % max(0, real - rng.randint(1, real)),
        "long_padded": b"%d" % (real + rng.randint(1, 400)),
        "zero": b"0",
        "negative": b"-%d" % real,
        "letters": b"%dx" % real,
        "empty": b"",
        "huge_digits": b"9" * rng.choice([19, 40, 5000]),
        "leading_zero": b"0%d" % real,
        "plus": b"+%d" % real,
        "space": b" %d" % real,
        "far_beyond": b"%d" % (real + 2_000_000),
    }[op]
    data = g.encode(fields, body_length=value)
    if op == "long_padded":
        # The declared body runs past this message: fill it with bytes that hold no trailer, so
        # that what follows starts a message of its own, as a peer's next message would.
        pad = b"x" * (int(value) - real)
    elif op == "far_beyond":
        # More than the acceptor's largest message: it must give up on this frame, not wait forever.
        pad = b"x" * (1 << 20) + b"y" * 8192
    made.chunks = [data + pad]
    if op == "leading_zero":
        # Digits, so a number: the message is read as it is (or ignored); either is within FIX.
        made.expect = (expect or ("silence",)) + ("silence",)
        made.test_ids = test_ids
    else:
        made.expect = SILENCE


def _checksum(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    fields, _expect, _ids = g.any_valid()
    good = g.encode(fields)
    right = int(good[-4:-1])
    op = rng.choice(["wrong", "two_digits", "four_digits", "letters", "empty", "missing", "not_last", "negative"])
    made.op = op
    if op == "missing":
        made.chunks = [good[:good.rfind(b"10=")]]
    elif op == "not_last":
        # A field after CheckSum: the frame ends at 10=, the rest is garbage before the next 8=.
        made.chunks = [good + b"58=after" + SOH]
    else:
        text = {"wrong": b"%03d" % ((right + rng.randint(1, 255)) % 256), "two_digits": b"%02d" % (right % 100),
                "four_digits": b"0%03d" % right, "letters": b"abc", "empty": b"", "negative": b"-%02d" % (right % 99)}
        made.chunks = [g.encode(fields, checksum_text=text[op])]
    if op == "not_last":
        # The frame ends at 10=: the message counts, the field after it is garbage before the next 8=.
        made.expect, made.test_ids = _expect, _ids
    else:
        made.expect = SILENCE


def _header(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    fields = g.app() if rng.random() < 0.6 else g.heartbeat()
    seq = int(dict(fields)[b"34"])
    ops: dict[str, tuple[Callable[[], list[Field]], Expect]] = {
        "no_sender": (lambda: _without(fields, b"49"), ("reject:1",)),
        "no_target": (lambda: _without(fields, b"56"), ("reject:1",)),
        "no_seq": (lambda: _without(fields, b"34"), LOGOUT),
        "no_sending_time": (lambda: _without(fields, b"52"), ("reject:1",)),
        "wrong_sender": (lambda: _replace(fields, b"49", b"INTRUDER"), ("reject:9+logout",)),
        "wrong_target": (lambda: _replace(fields, b"56", b"SOMEONE"), ("reject:9+logout",)),
        "sending_time_format": (lambda: _replace(fields, b"52", rng.choice(
            [b"2026", b"20261301-00:00:00", b"yesterday", b"20260101-25:00:00", b"20260101-00:00:00.1234"])),
            ("reject:6",)),
        "sending_time_skew": (lambda: _replace(fields, b"52", g.stamp(rng.choice([-3600, 3600, -86400 * 400]))),
                              ("reject:10+logout",)),
        "seq_too_low": (lambda: _replace(fields, b"34", b"%d" % (seq - rng.randint(1, min(seq - 1, 50))))
                        if seq > 1 else fields, LOGOUT if seq > 1 else SILENCE),
        "seq_too_high": (lambda: _replace(fields, b"34", b"%d" % (seq + rng.randint(1, 50))), ("resend_request",)),
        "seq_zero": (lambda: _replace(fields, b"34", b"0"), LOGOUT),
        # A MsgSeqNum that is no number is a missing one: Logout (a Reject could not refer to it).
        "seq_negative": (lambda: _replace(fields, b"34", b"-%d" % seq), LOGOUT),
        "seq_letters": (lambda: _replace(fields, b"34", b"%dA" % seq), LOGOUT),
        "seq_high_bytes": (lambda: _replace(fields, b"34", rng.choice([b"\xff", b"\xe9", b"1\x80", b"\xc3("])),
                           LOGOUT),
        "seq_twenty_digits": (lambda: _replace(fields, b"34", b"1" * 20), LOGOUT),
        "seq_empty": (lambda: _replace(fields, b"34", b""), LOGOUT),
        "possdup_low_no_orig": (lambda: _possdup(_replace(fields, b"34", b"%d" % max(1, seq - 1)), None),
                                ("reject:1",) if seq > 1 else SILENCE),
        "possdup_low_orig_later": (lambda: _possdup(_replace(fields, b"34", b"%d" % max(1, seq - 1)), g.stamp(60)),
                                   ("reject:10+logout",) if seq > 1 else SILENCE),
        "possdup_low_sane": (lambda: _possdup(_replace(fields, b"34", b"%d" % max(1, seq - 1)), g.stamp(-1)),
                             SILENCE),
        "begin_string_other": (lambda: fields, LOGOUT),
        "header_after_body": (lambda: _move_to_end(fields, rng.choice([b"49", b"52", b"56"])), ("reject:14",)),
        "msg_type_not_third": (lambda: fields[1:2] + fields[:1] + fields[2:], SILENCE),
        "on_behalf_of": (lambda: fields[:5] + [(b"115", b"CLIENT7")] + fields[5:], SILENCE),
    }
    made.op = rng.choice(list(ops))
    make, made.expect = ops[made.op]
    mutated = make()
    begin = g.p.begin
    if made.op == "begin_string_other":
        begin = rng.choice([b"FIX.4.2", b"FIX.4.0", b"FIXT.1.1", b"FIX.4.4", b"FIX.5.0", b"\xff\xfe"])
        if begin == g.p.begin:
            begin = b"FIX.4.3"
    made.chunks = [build(begin, mutated)]
    made.fill_gaps = made.op == "seq_too_high" and rng.random() < 0.5
    if made.fill_gaps:
        # The queued message is processed once the gap before it is filled: a valid one gets no answer.
        made.expect = ("resend_request",)


def _possdup(fields: list[Field], orig: bytes | None) -> list[Field]:
    at = _index_of(fields, b"56") + 1
    extra: list[Field] = [(b"43", b"Y")] + ([(b"122", orig)] if orig is not None else [])
    return _sorted_header(fields[:at] + extra + fields[at:])


def _move_to_end(fields: list[Field], tag: bytes) -> list[Field]:
    at = _index_of(fields, tag)
    moved = fields[at]
    rest = fields[:at] + fields[at + 1:]
    if len(rest) <= 5:  # a heartbeat has no body: add one field for the header tag to follow
        rest = rest + [(b"112", b"X")] if rest[0][1] == b"0" else rest
    return rest + [moved]


def _duplicate_tag(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    fields = g.app(rng.choice(["D", "F"]))
    op = rng.choice(["body_twice", "header_twice", "adjacent", "msg_type_twice", "seq_twice", "many_times"])
    made.op = op
    body_at = 5
    if op == "body_twice":
        tag, value = rng.choice([f for f in fields[body_at:] if f[0] in (b"11", b"38", b"55", b"54", b"262", b"66")])
        fields.append((tag, value))
        made.expect = ("reject:13",)
    elif op == "header_twice":
        tag, value = fields[rng.choice([2, 3, 4])]
        fields.insert(body_at, (tag, value))
        made.expect = ("reject:13",)
    elif op == "adjacent":
        i = rng.randrange(body_at, len(fields))
        fields.insert(i, fields[i])
        made.expect = ("reject:13",)
    elif op == "msg_type_twice":
        fields.append((b"35", fields[0][1]))
        made.expect = ("reject:14",)
    elif op == "seq_twice":
        fields.insert(body_at, (b"34", fields[1][1]))
        made.expect = ("reject:13",)
    else:
        fields += [(b"58", b"again")] * rng.randint(2, 3000)
        made.expect = ("reject:13",)
    made.chunks = [g.encode(fields)]


def _unknown_tag(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    fields = g.app() if rng.random() < 0.7 else g.heartbeat()
    msg_type = fields[0][1]
    op = rng.choice(["undefined", "user_defined", "not_for_type", "zero", "negative", "letters", "leading_zeros",
                     "huge_tag", "tag_only", "equals_only", "many_unknown"])
    made.op = op
    # First in the body or last: inside a repeating group a stray tag would end the group instead.
    at = rng.choice([5, len(fields)])
    extra: list[Field]
    if op == "undefined":
        extra, made.expect = [(b"%d" % g.undefined_tag(), b"x")], ("reject:0",)
    elif op == "user_defined":
        extra, made.expect = [(b"%d" % rng.randint(5000, 9999), b"x")], ("reject:0",)
    elif op == "not_for_type":
        extra, made.expect = [(b"%d" % g.foreign_tag(msg_type), b"1")], ("reject:2", "reject:5", "reject:6")
    elif op == "zero":
        extra, made.expect = [(b"0", b"x")], ("reject:0",)
    elif op == "negative":
        extra, made.expect = [(b"-%d" % rng.randint(1, 100), b"x")], ("reject:0",)
    elif op == "letters":
        extra, made.expect = [(rng.choice([b"abc", b"5x", b"", b" 55", b"\xff"]), b"x")], SILENCE
    elif op == "leading_zeros":
        tag, value = rng.choice(fields[5:] or fields[2:5])
        extra, made.expect = [(b"000" + tag, value)], ANY_REJECT
    elif op == "huge_tag":
        extra, made.expect = [(b"1" * rng.choice([10, 19, 400, 5000]), b"x")], None
    elif op == "tag_only":
        made.chunks = [g.encode(fields[:at]).replace(b"10=", b"5555" + SOH + b"10=", 1)]
        made.expect = SILENCE
        return
    elif op == "equals_only":
        extra, made.expect = [(b"", b"")], SILENCE
    else:
        extra = [(b"%d" % t, b"v") for t in rng.sample(range(5000, 40000), rng.randint(50, 3000))]
        made.expect = ("reject:0",)
    if op == "huge_tag":
        # 10 digits is a number (no such tag: Reject 0); past 18 digits it is no number (garbled).
        made.expect = ("reject:0",) if len(extra[0][0]) <= 18 else SILENCE
    fields[at:at] = extra
    made.chunks = [g.encode(fields)]


def _groups(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    kind = rng.choice(["Dp", "V", "E"])
    fields = g.app(kind)
    count_tags = {b"453", b"267", b"146", b"73"}
    counts = [i for i, (t, _) in enumerate(fields) if t in count_tags]
    at = rng.choice(counts)
    tag, value = fields[at]
    n = int(value)
    op = rng.choice(["count_high", "count_low", "count_zero", "count_letters", "count_negative", "count_huge",
                     "count_twenty_digits", "no_delimiter", "member_twice", "member_order", "no_count",
                     "count_empty", "entries_10000", "count_after", "foreign_member"])
    made.op = op
    delimiter = {b"453": b"448", b"267": b"269", b"146": b"55", b"73": b"11"}[tag]
    if op == "count_high":
        fields[at] = (tag, b"%d" % (n + rng.randint(1, 5)))
        made.expect = ("reject:16",)
    elif op == "count_low":
        fields[at] = (tag, b"%d" % (n - 1))
        made.expect = ("reject:16",) if n > 1 or tag != b"267" else ANY_REJECT
    elif op == "count_zero":
        fields[at] = (tag, b"0")
        made.expect = ("reject:16",)
    elif op == "count_letters":
        fields[at] = (tag, rng.choice([b"two", b"2x", b"1.0"]))
        made.expect = ("reject:6",)
    elif op == "count_negative":
        fields[at] = (tag, b"-%d" % n)
        made.expect = ("reject:6",)
    elif op == "count_huge":
        fields[at] = (tag, b"%d" % rng.choice([10**9, 10**17, 2**63]))
        made.expect = ("reject:16",)
    elif op == "count_twenty_digits":
        fields[at] = (tag, b"9" * rng.choice([20, 5000]))
        made.expect = ("reject:16",)
    elif op == "count_empty":
        fields[at] = (tag, b"")
        made.expect = ("reject:4",)
    elif op == "no_delimiter":
        first = _index_of(fields[at + 1:], delimiter) + at + 1
        if fields[first + 1:first + 2] and fields[first + 1][0] != delimiter:
            del fields[first]
            made.expect = ANY_REJECT
        else:
            del fields[first]
            made.expect = ANY_REJECT
    elif op == "member_twice":
        first = at + 1
        repeat = fields[first + 1] if first + 1 < len(fields) and fields[first + 1][0] != delimiter else fields[first]
        fields.insert(first + 1, repeat)
        made.expect = ANY_REJECT
    elif op == "member_order":
        first = at + 1
        entry_end = first + 1
        while entry_end < len(fields) and fields[entry_end][0] not in (delimiter,) and entry_end < first + 3:
            entry_end += 1
        fields[first:entry_end] = list(reversed(fields[first:entry_end]))
        made.expect = None  # delimiter not first: 15; members reordered behind it: accepted or rejected
    elif op == "no_count":
        del fields[at]
        made.expect = ANY_REJECT
    elif op == "entries_10000":
        entries = rng.choice([1000, 10_000])
        if tag == b"453":
            members = [(b"448", b"P"), (b"447", b"D"), (b"452", b"1")]
        elif tag == b"267":
            members = [(b"269", b"0")]
        else:
            members = None
        if members is None:
            made.op = "entries_10000_skipped"
            made.expect = SILENCE
        else:
            end = at + 1
            while end < len(fields) and fields[end][0] in {m[0] for m in members}:
                end += 1
            fields[at:end] = [(tag, b"%d" % entries)] + members * entries
            made.expect = SILENCE
    elif op == "count_after":
        # The count after its entries: the members are outside any group.
        count = fields.pop(at)
        fields.append(count)
        made.expect = ANY_REJECT
    else:
        fields.insert(at + 2, (b"%d" % g.foreign_tag(fields[0][1]), b"1"))
        made.expect = None  # a non-member ends the group: the rest is read at the message's level
    made.chunks = [g.encode(fields)]


def _huge_value(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    fields = g.app("D")
    op = rng.choice(["text_100k", "text_900k", "over_max", "price_digits", "sending_time_long", "client_id_64k",
                     "many_fields"])
    made.op = op
    if op == "text_100k":
        fields.append((b"58", b"A" * 100_000))
        made.expect = SILENCE
    elif op == "text_900k":
        fields.append((b"58", b"B" * 900_000))
        made.expect = SILENCE
    elif op == "over_max":
        # Larger than the acceptor's largest message (1 MiB): dropped unread, like garbage.
        fields.append((b"58", b"C" * 1_200_000))
        made.expect = SILENCE
    elif op == "price_digits":
        fields = _replace(fields, rng.choice([b"44", b"38"]), b"9" * rng.choice([400, 5000, 20000]))
        made.expect = ("silence", "reject:6")
    elif op == "sending_time_long":
        fields = _replace(fields, b"52", g.stamp() + b"0" * rng.choice([10, 5000]))
        made.expect = ("reject:6",)
    elif op == "client_id_64k":
        fields = _replace(fields, b"11", b"Z" * 65536)
        made.expect = SILENCE
    else:
        fields += [(b"%d" % rng.choice([11, 55]), b"x")] * rng.randint(5000, 20000)
        made.expect = ("reject:13",)
    made.chunks = [g.encode(fields)]


def _values(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    fields = g.app("D")
    op = rng.choice(["empty_body", "empty_header", "high_bytes_string", "nul_in_string", "equals_in_value",
                     "bad_enum", "bad_float", "bad_timestamp", "bad_char", "float_exponent", "bad_possdup",
                     "high_bytes_everywhere", "space_value"])
    made.op = op
    if op == "empty_body":
        fields = _replace(fields, rng.choice([b"11", b"55", b"38"]), b"")
        made.expect = ("reject:4",)
    elif op == "empty_header":
        fields = _replace(fields, rng.choice([b"49", b"56", b"52"]), b"")
        made.expect = ("reject:4",)
    elif op == "high_bytes_string":
        fields = _replace(fields, rng.choice([b"11", b"55"]), _random_bytes(rng, rng.randint(1, 40),
                                                                           bytes(range(0x80, 0x100))))
        made.expect = SILENCE
    elif op == "nul_in_string":
        fields = _replace(fields, b"55", b"F\x00MX")
        made.expect = SILENCE
    elif op == "equals_in_value":
        fields = _replace(fields, b"11", b"a=b=c")
        made.expect = SILENCE
    elif op == "bad_enum":
        fields = _replace(fields, rng.choice([b"54", b"40", b"21"]), b"Z")
        made.expect = ("reject:5",)
    elif op == "bad_float":
        fields = _replace(fields, rng.choice([b"38", b"44"]), rng.choice([b"abc", b"1.2.3", b"--1", b"+5", b"."]))
        made.expect = ("reject:6",)
    elif op == "bad_timestamp":
        fields = _replace(fields, b"60", rng.choice([b"20260230-00:00:00", b"2026-01-01", b"x" * 17]))
        made.expect = ("reject:6",)
    elif op == "bad_char":
        fields = _replace(fields, b"54", b"12")
        made.expect = ("reject:5", "reject:6")
    elif op == "float_exponent":
        fields = _replace(fields, b"38", b"1e5")
        made.expect = ("reject:6",)
    elif op == "bad_possdup":
        fields = _sorted_header(fields[:5] + [(b"43", b"X")] + fields[5:])
        made.expect = ("reject:5", "reject:6")
    elif op == "high_bytes_everywhere":
        fields = [(t, v if t in (b"35", b"34", b"49", b"56", b"52") else _random_bytes(rng, len(v) or 1,
                                                                                     bytes(range(0x80, 0x100))))
                  for t, v in fields]
        made.expect = ANY_REJECT
    else:
        fields = _replace(fields, b"55", b" ")
        made.expect = SILENCE
    made.chunks = [g.encode(fields)]


def _msg_type(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    op = rng.choice(["unknown", "empty", "lowercase", "long", "high_bytes", "execution_report", "business_reject",
                     "resend_no_end", "resend_no_begin", "seqreset_no_newseqno", "test_request_no_id"])
    made.op = op
    if op in ("unknown", "lowercase", "long", "high_bytes"):
        value = {"unknown": b"ZZ", "lowercase": g.undefined_msg_type(), "long": b"D" * 300, "high_bytes": b"\xff"}[op]
        made.chunks, made.expect = [g.encode(g.message(value, [(b"11", b"1")]))], ("reject:11",)
    elif op == "empty":
        made.chunks, made.expect = [g.encode(g.message(b"", [(b"11", b"1")]))], ("reject:11", "reject:4")
    elif op == "execution_report":
        body: list[Field] = [(b"6", b"0"), (b"14", b"0"), (b"17", b"X1"), (b"37", b"O1"), (b"39", b"0"),
                             (b"54", b"1"), (b"55", b"FMX"), (b"150", b"0"), (b"151", b"100")]
        made.chunks, made.expect = [g.encode(g.message(b"8", body))], SILENCE
    elif op == "business_reject":
        made.chunks = [g.encode(g.message(b"j", [(b"45", b"1"), (b"372", b"D"), (b"380", b"3")]))]
        made.expect = SILENCE
    elif op == "resend_no_end":
        made.chunks, made.expect = [g.encode(g.message(b"2", [(b"7", b"1")]))], ("reject:1",)
    elif op == "resend_no_begin":
        made.chunks, made.expect = [g.encode(g.message(b"2", [(b"16", b"0")]))], ("reject:1",)
    elif op == "seqreset_no_newseqno":
        made.chunks, made.expect = [g.encode(g.message(b"4", [(b"123", b"Y")]))], ("reject:1",)
    else:
        made.chunks, made.expect = [g.encode(g.message(b"1", []))], ("reject:1",)


def _session_level(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    op = rng.choice(["resend_from_future", "resend_reversed", "resend_one", "resend_huge_begin", "gap_fill_lower",
                     "reset_lower", "reset_huge", "reset_2_63", "logout", "logon_again", "logon_reset",
                     "reject_no_ref", "heartbeat_with_id", "test_request_long_id", "resend_end_999999"])
    made.op = op
    their = g.ctx.their_seq
    if op == "resend_from_future":
        fields = g.message(b"2", [(b"7", b"%d" % (their + rng.randint(10, 1000))), (b"16", b"0")])
        made.expect = SILENCE
    elif op == "resend_reversed":
        fields = g.message(b"2", [(b"7", b"%d" % max(2, their - 1)), (b"16", b"1")])
        made.expect = SILENCE
    elif op == "resend_one":
        seq = rng.randint(1, max(1, their - 1))
        fields = g.message(b"2", [(b"7", b"%d" % seq), (b"16", b"%d" % seq)])
        made.expect = ("sequence_reset", "silence")
    elif op == "resend_huge_begin":
        fields = g.message(b"2", [(b"7", b"9" * rng.choice([18, 19, 5000])), (b"16", b"0")])
        made.expect = ("silence", "reject:5", "reject:6")
    elif op == "resend_end_999999":
        fields = g.message(b"2", [(b"7", b"%d" % max(1, their - 3)), (b"16", b"999999")])
        made.expect = ("sequence_reset", "silence")
    elif op == "gap_fill_lower":
        seq = g.next_seq()
        fields = g.message(b"4", [(b"36", b"%d" % max(1, seq - rng.randint(1, 5))), (b"123", b"Y")], seq=seq)
        made.expect = ("reject:5",)
    elif op == "reset_lower":
        fields = g.message(b"4", [(b"36", b"1")])
        made.expect = ("reject:5",)
    elif op == "reset_huge":
        fields = g.message(b"4", [(b"36", b"%d" % max(rng.choice([10**12, 10**17]), g.ctx.seq + 2))])
        made.expect = SILENCE
    elif op == "reset_2_63":
        fields = g.message(b"4", [(b"36", b"%d" % 2**63)])
        made.expect = ANY_REJECT
    elif op == "logout":
        fields = g.message(b"5", [(b"58", b"fuzz logout")])
        made.expect = LOGOUT
    elif op == "logon_again":
        fields = g.logon_fields()
        made.expect = ("disconnect", "logout")
    elif op == "logon_reset":
        fields = g.logon_fields(seq=1, reset=True)
        made.expect = ("logon",)
    elif op == "reject_no_ref":
        fields = g.message(b"3", [(b"58", b"no ref")])
        made.expect = ("reject:1",)
    elif op == "heartbeat_with_id":
        fields = g.message(b"0", [(b"112", b"unasked")])
        made.expect = SILENCE
    else:
        fields, test_id = g.test_request(b"L" * rng.choice([1000, 60000]))
        made.test_ids = [test_id]
        made.expect = ("heartbeat",)
    made.chunks = [g.encode(fields)]


def _bytewise(g: _Gen, made: FuzzInput) -> None:
    fields, expect, test_ids = g.any_valid()
    data = g.encode(fields)
    made.op = "one_byte_per_write"
    made.chunks = [data[i:i + 1] for i in range(len(data))]
    made.expect, made.test_ids = expect, test_ids


def _slow(g: _Gen, made: FuzzInput) -> None:
    fields, expect, test_ids = g.any_valid()
    data = g.encode(fields)
    cut = g.rng.randint(1, len(data) - 1)
    made.op = "pause_mid_message"
    made.chunks, made.pause_s = [data[:cut], data[cut:]], g.rng.choice([0.02, 0.1, 0.3])
    made.expect, made.test_ids = expect, test_ids


def _burst(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    op = rng.choice(["test_requests", "mixed_valid", "mixed_broken", "apps"])
    made.op = op
    count = rng.choice([2, 10, 100, 500])
    parts: list[bytes] = []
    if op == "test_requests":
        for _ in range(count):
            fields, test_id = g.test_request()
            parts.append(g.encode(fields))
            made.test_ids.append(test_id)
        made.expect = ("heartbeat",)
    elif op == "apps":
        parts = [g.encode(g.app()) for _ in range(count)]
        made.expect = SILENCE
    elif op == "mixed_valid":
        for _ in range(count):
            fields, _expect, ids = g.any_valid()
            parts.append(g.encode(fields))
            made.test_ids += ids
        made.expect = ("heartbeat",) if made.test_ids else SILENCE
    else:
        for _ in range(min(count, 100)):
            data = g.encode(g.app() if rng.random() < 0.5 else g.heartbeat())
            parts.append(_mutate_bytes(rng, data) if rng.random() < 0.3 else data)
        made.expect = None
    made.chunks = [b"".join(parts)]


def _queue_flood(g: _Gen, made: FuzzInput) -> None:
    """Many messages past a gap that is never filled: the acceptor asks once and keeps a bounded queue."""
    rng = g.rng
    made.op = "too_high_messages"
    gap = rng.randint(1, 5)
    first = g.ctx.seq + gap
    count = rng.choice([100, 1000, 12000])
    made.chunks = [b"".join(g.encode(g.message(b"0", [], seq=first + i)) for i in range(count))]
    made.expect = ("resend_request",)


def _not_reading(g: _Gen, made: FuzzInput) -> None:
    """TestRequests written while nothing is read for a while: the acceptor's answers wait in its buffers."""
    made.op = "pause_reading"
    for _ in range(g.rng.choice([500, 3000])):
        fields, test_id = g.test_request(b"R%d." % g.index + b"x" * 1000 + b"%d" % g.rng.randrange(1 << 30))
        made.chunks.append(g.encode(fields))
        made.test_ids.append(test_id)
    made.chunks = [b"".join(made.chunks)]
    made.pause_s = 0.5  # the runner reads nothing for this long after writing
    made.expect = ("heartbeat",)


def _chain(g: _Gen, made: FuzzInput) -> None:
    """Two to five inputs of other families in one write, numbered on from each other.

    What one message does to the session (a Logout sent, a gap, a queued message) meets the next
    message at once, before any answer could come back, as with a peer that writes ahead.
    """
    names = [name for name in _SESSION_FAMILIES if name not in _NOT_CHAINED]
    parts: list[str] = []
    for _ in range(g.rng.randint(2, 5)):
        name = g.rng.choice(names)
        part = FuzzInput(made.index, made.phase, name, "")
        _SESSION_FAMILIES[name][1](g, part)
        made.chunks.append(part.data)
        parts.append(f"{name}.{part.op}")
    made.op = "+".join(parts)
    made.chunks = [b"".join(made.chunks)]
    made.expect = None


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Random byte edits; BodyLength and CheckSum made right again half of the time."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not out:
            break
        i = rng.randrange(len(out))
        action = rng.random()
        if action < 0.3:
            out[i] = rng.randrange(256)
        elif action < 0.5:
            del out[i]
        elif action < 0.7:
            out.insert(i, rng.choice(b"\x01=0123456789ABZ\x00\xff"))
        elif action < 0.85:
            j = min(len(out), i + rng.randint(1, 30))
            out[i:i] = out[i:j]
        else:
            out[i] = rng.choice(b"\x01=")
    mutated = bytes(out)
    return refresh(mutated) if rng.random() < 0.5 else mutated


def _random_mutation(g: _Gen, made: FuzzInput) -> None:
    fields, _expect, _ids = g.any_valid()
    made.op = "byte_edits"
    made.chunks = [_mutate_bytes(g.rng, g.encode(fields))]
    made.expect = None


def _data_field(g: _Gen, made: FuzzInput) -> None:
    rng = g.rng
    fields = g.app("D")
    op = rng.choice(["soh_inside", "length_short", "length_long", "length_letters", "length_huge", "data_alone",
                     "length_alone", "length_zero"])
    made.op = op
    payload = b"a\x01b=c\x01" * rng.randint(1, 5)
    if op == "soh_inside":
        fields += [(b"354", b"%d" % len(payload)), (b"355", payload)]
        made.expect = SILENCE
    elif op == "length_short":
        fields += [(b"354", b"%d" % (len(payload) - 1)), (b"355", payload)]
        made.expect = SILENCE  # the data field does not end where its length says: garbled
    elif op == "length_long":
        fields += [(b"354", b"%d" % (len(payload) + 3)), (b"355", payload)]
        made.expect = SILENCE
    elif op == "length_letters":
        fields += [(b"354", b"ten"), (b"355", b"plain")]
        made.expect = ("reject:6",)
    elif op == "length_huge":
        fields += [(b"354", b"9" * rng.choice([12, 19, 5000])), (b"355", payload)]
        made.expect = SILENCE
    elif op == "data_alone":
        # A data field without its length is read up to the next SOH; no rule makes it an error.
        fields += [(b"355", b"plain")]
        made.expect = ("silence", "reject:*")
    elif op == "length_zero":
        fields += [(b"354", b"0"), (b"355", b"")]
        made.expect = ANY_REJECT
    else:
        # A length whose data field is absent: 355 is optional, so the message may well pass.
        fields += [(b"354", b"5")]
        made.expect = ("silence", "reject:*")
    made.chunks = [g.encode(fields)]


def _duplicate_logon(g: _Gen, made: FuzzInput) -> None:
    """A second connection logs on as the session that is logged on: closed, nothing sent (test case 1e)."""
    made.op = "second_connection"
    made.chunks = [g.encode(g.logon_fields())]
    made.expect = DISCONNECT


#: Family -> (weight, maker). Inputs after Logon matter most: they reach validation and the session.
_SESSION_FAMILIES: dict[str, tuple[float, Callable[[_Gen, FuzzInput], None]]] = {
    "valid": (7, _valid),
    "framing": (7, _framing),
    "body_length": (6, _body_length),
    "checksum": (6, _checksum),
    "header": (14, _header),
    "duplicate_tag": (6, _duplicate_tag),
    "unknown_tag": (7, _unknown_tag),
    "groups": (10, _groups),
    "huge_value": (1.5, _huge_value),
    "values": (8, _values),
    "msg_type": (5, _msg_type),
    "session_level": (9, _session_level),
    "bytewise": (2, _bytewise),
    "slow": (1, _slow),
    "burst": (3, _burst),
    "byte_edits": (8, _random_mutation),
    "data_field": (3, _data_field),
    "duplicate_logon": (0.5, _duplicate_logon),
    "queue_flood": (0.3, _queue_flood),
    "not_reading": (0.2, _not_reading),
    "chain": (5, _chain),
}
#: Families a chain does not take: those that write slowly, twice, on another connection or in bulk.
_NOT_CHAINED = frozenset({"bytewise", "slow", "burst", "duplicate_logon", "queue_flood", "not_reading", "chain",
                          "huge_value"})


# ---------------------------------------------------------------- logon families


def _logon(g: _Gen, made: FuzzInput) -> None:
    """The first message of a connection while the session is logged off."""
    rng = g.rng
    seq = g.next_seq()
    # A refused Logon before this one may have left the acceptor expecting less than ``seq``: then
    # it asks for the gap, which is right too.
    logon: Expect = ("logon", "logon+resend_request")
    ops: dict[str, tuple[Callable[[], list[bytes]], Expect]] = {
        "valid": (lambda: [g.encode(g.logon_fields(seq=seq))], logon),
        "valid_bytewise": (lambda: _bytes_one_by_one(g.encode(g.logon_fields(seq=seq))), logon),
        "valid_then_messages": (lambda: [g.encode(g.logon_fields(seq=seq)) + g.encode(g.heartbeat())
                                         + g.encode(g.app())], logon),
        # Bytes before the first ``8=``: the session takes them for a garbled message before Logon.
        "garbage_then_valid": (lambda: [_no_frame_start(_random_bytes(rng, rng.randint(1, 2000)))
                                        + g.encode(g.logon_fields(seq=seq))], DISCONNECT),
        "reset": (lambda: [g.encode(g.logon_fields(seq=1, reset=True))], ("logon",)),
        "seq_too_high": (lambda: [g.encode(g.logon_fields(seq=seq + rng.randint(1, 20)))],
                         ("logon+resend_request",)),
        "seq_too_low": (lambda: [g.encode(g.logon_fields(seq=max(1, seq - rng.randint(1, 5))))], None),
        "wrong_sender": (lambda: [g.encode(_replace(g.logon_fields(seq=seq), b"49", b"NOBODY"))], DISCONNECT),
        "wrong_target": (lambda: [g.encode(_replace(g.logon_fields(seq=seq), b"56", b"NOBODY"))], DISCONNECT),
        "wrong_begin": (lambda: [build(b"FIX.4.2" if not g.p.fixt else b"FIX.4.4", g.logon_fields(seq=seq))],
                        DISCONNECT),
        "no_heartbeat": (lambda: [g.encode(_without(g.logon_fields(seq=seq), b"108"))], DISCONNECT),
        "heartbeat_negative": (lambda: [g.encode(_replace(g.logon_fields(seq=seq), b"108", b"-30"))], DISCONNECT),
        "heartbeat_letters": (lambda: [g.encode(_replace(g.logon_fields(seq=seq), b"108", b"thirty"))], DISCONNECT),
        "heartbeat_digits": (lambda: [g.encode(_replace(g.logon_fields(seq=seq), b"108", b"3" * 5000))],
                             DISCONNECT),
        "no_encrypt": (lambda: [g.encode(_without(g.logon_fields(seq=seq), b"98"))], DISCONNECT),
        "no_appl_ver": (lambda: [g.encode(_without(g.logon_fields(seq=seq), b"1137"))],
                        DISCONNECT if g.p.fixt else logon),
        "sending_time_skew": (lambda: [g.encode(_replace(g.logon_fields(seq=seq), b"52", g.stamp(-7200)))],
                              DISCONNECT),
        "bad_checksum": (lambda: [_wrong_checksum(g.encode(g.logon_fields(seq=seq)))], DISCONNECT),
        "bad_body_length": (lambda: [g.encode(g.logon_fields(seq=seq), body_length=b"7")], DISCONNECT),
        "not_a_logon": (lambda: [g.encode(g.heartbeat())], DISCONNECT),
        "app_first": (lambda: [g.encode(g.app())], DISCONNECT),
        "duplicate_tag": (lambda: [g.encode(g.logon_fields(seq=seq) + [(b"108", b"30")])], DISCONNECT),
        "unknown_tag": (lambda: [g.encode(g.logon_fields(seq=seq) + [(b"9999", b"x")])], DISCONNECT),
        "oversize": (lambda: [g.encode(g.logon_fields(seq=seq) + [(b"58", b"x" * 20000)])], DISCONNECT),
        "flood_16k": (lambda: [b"\x01" * 17000], DISCONNECT),
        "byte_edits": (lambda: [_mutate_bytes(rng, g.encode(g.logon_fields(seq=seq)))], None),
        "half_then_close": (lambda: [g.encode(g.logon_fields(seq=seq))[:rng.randint(1, 60)]], ("closed_by_us",)),
    }
    made.op = rng.choice(list(ops))
    make, made.expect = ops[made.op]
    made.chunks = make()
    if made.op == "seq_too_high":
        made.fill_gaps = True


def _wrong_checksum(data: bytes) -> bytes:
    right = int(data[-4:-1])
    return data[:-4] + b"%03d" % ((right + 128) % 256) + SOH


def _bytes_one_by_one(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


_LOGON_FAMILIES: dict[str, tuple[float, Callable[[_Gen, FuzzInput], None]]] = {"logon": (1, _logon)}


# ---------------------------------------------------------------- side connections


def _side(g: _Gen, made: FuzzInput) -> None:
    """A connection beside the session's: the acceptor must close it and send nothing on it."""
    rng = g.rng
    op = rng.choice(["idle", "dribble_logon", "flood", "half_close", "reset", "garbage_then_idle",
                     "unknown_session", "connect_storm"])
    made.op = op
    logon = g.encode(_replace(g.logon_fields(seq=1), b"49", b"NOBODY"))
    if op == "idle":
        made.chunks = []
    elif op == "dribble_logon":
        # A valid Logon of another identity, a byte every 30 ms: the logon timeout ends it.
        made.chunks, made.pause_s = _bytes_one_by_one(g.encode(g.logon_fields(seq=1))[:-20]), 0.03
    elif op == "flood":
        made.chunks = [_random_bytes(rng, 4096) for _ in range(rng.randint(5, 40))]
    elif op == "half_close":
        made.chunks = [logon[:rng.randint(0, len(logon) - 1)]]
    elif op == "reset":
        made.chunks = [logon[:rng.randint(1, len(logon) - 1)]]
    elif op == "garbage_then_idle":
        made.chunks = [_no_frame_start(_random_bytes(rng, rng.randint(1, 8000)))]
    elif op == "unknown_session":
        made.chunks = [logon]
    else:
        made.chunks = [b""] * rng.randint(5, 50)
    made.expect = DISCONNECT


_SIDE_FAMILIES: dict[str, tuple[float, Callable[[_Gen, FuzzInput], None]]] = {"side": (1, _side)}
