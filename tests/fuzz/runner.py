"""Drives a live acceptor with the fuzzer's inputs over TCP and checks what it does.

One main connection carries the ``session`` inputs, many per connection:
after each input the runner writes a barrier, a SequenceReset-Reset to its
next MsgSeqNum and a TestRequest, and reads until the Heartbeat that answers
it. What came before that Heartbeat is the acceptor's answer to the input,
classified by kind into an outcome label (``silence``, ``reject:13``,
``logout``, ``resend_request``, ``disconnect`` ...) and compared with what
the FIX spec allows for the input. The reset keeps the MsgSeqNum the
acceptor expects equal to the runner's after every input, whatever the input
did to it. When the acceptor logged out or closed, the next input gets a new
connection and a new Logon. ``logon`` inputs are the first bytes of a new
connection while the session is logged off; ``side`` inputs run on
connections of their own in threads, beside the session.

Checked for every input: every byte the acceptor sends belongs to a
well-formed message (BodyLength, CheckSum, CompIDs) that its own dictionary
accepts; its MsgSeqNums go up by one without gaps or repeats across
connections; a second connection is closed with nothing sent. After each
batch: the process runs (its pid, and a TCP connection to its port), its RSS
(/proc/<pid>/status) stays under the bound, its log shows no traceback. At
the end: a clean session (a fresh Logon with the runner's numbers) is
accepted with consistent numbers, the store holds every message the
acceptor sent, numbered without gaps and byte for byte as sent, and after a
restart on the same store the numbers still agree.
"""

from __future__ import annotations

import contextlib
import fnmatch
import select
import socket
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from actors.fix.codec import GarbledMessage, parse
from actors.fix.validation import ValidationOptions, validate
from actors.store.api import StoreError
from actors.store.file import FileStore
from tests.fuzz.inputs import Context, FuzzInput, Profile, generate, phase_of
from tests.fuzz.targets import EndpointTarget, HandlerTarget, rss_kib
from tests.fuzz.wire import SOH, Field, MalformedOutput, Reader, Received, build

HOST = "127.0.0.1"
#: Inputs between two liveness, memory and log checks.
BATCH = 100
#: How long the answer to one input may take before the barrier is written again.
BARRIER_WAIT_S = (0.5, 1.0, 2.0)
#: How long a Logon answer, a Logout exchange or a side connection may take.
LOGON_WAIT_S = 1.0
LOGOUT_WAIT_S = 4.0
#: A side connection must be closed by the acceptor within its logon timeout (10 s) and this margin.
SIDE_WAIT_S = 16.0
SIDE_THREADS = 6
#: MsgSeqNums beyond this are not followed (the next Logon resets instead); 18 digits fit any store.
SEQ_CEILING = 10**17
_SEQ_MAX = 10**18 - 1

#: Kinds in the order they appear in an outcome label.
_LABEL_ORDER = ("logon", "reject", "business_reject", "resend_request", "sequence_reset", "heartbeat", "app",
                "logout", "disconnect", "stuck", "closed_by_us")
#: Kinds that are not part of an outcome label: the acceptor's own timers, resends and forwarded traffic.
_UNLABELLED = ("heartbeat_timer", "test_request", "resent", "barrier_resend", "late_barrier")


@dataclass
class Finding:
    kind: str
    seed: int
    inp: str
    detail: str
    data: bytes = b""

    def report(self) -> str:
        shown = self.data[:600].replace(SOH, b"|")
        more = f" ... ({len(self.data)} bytes)" if len(self.data) > 600 else ""
        return f"[{self.kind}] seed {self.seed} input {self.inp}: {self.detail}\n    bytes: {shown!r}{more}"


@dataclass
class Figures:
    target: str
    version: str
    inputs: int = 0
    connections: int = 0
    crashes: int = 0
    reset_logons: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    families: Counter[str] = field(default_factory=Counter)
    start_rss_kib: int = 0
    peak_rss_kib: int = 0
    end_rss_kib: int = 0
    elapsed_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    clean_session: str = "not run"

    @property
    def rate(self) -> float:
        return self.inputs / self.elapsed_s if self.elapsed_s else 0.0


class Closed(Exception):
    """The connection is gone."""


class Connection:
    """One TCP connection to the acceptor: writes, and reads split into checked messages."""

    def __init__(self, port: int, begin: bytes, on_malformed: Callable[[str], None]) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=5.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.reader = Reader(begin)
        self.closed = False
        self.got_bytes = 0
        self._pending: list[Received] = []
        self._on_malformed = on_malformed

    def write(self, data: bytes) -> None:
        if self.closed:
            raise Closed
        view = memoryview(data)
        deadline = time.monotonic() + 10.0
        while view:
            try:
                sent = self.sock.send(view)
                view = view[sent:]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Closed from None
                select.select([], [self.sock], [], 0.5)
                # Read meanwhile, so that a large write cannot fill both directions.
                self._pending = self.poll(0.0)  # poll hands out what was pending too
            except OSError:
                # The acceptor closed; what it wrote before may still wait in our receive buffer.
                self._pending = self.poll(0.0)  # poll hands out what was pending too
                self.closed = True
                raise Closed from None

    def poll(self, timeout_s: float) -> list[Received]:
        """Messages that arrive within ``timeout_s`` (at least what is there); sets ``closed`` at EOF."""
        out, self._pending = self._pending, []
        if self.closed:
            return out
        ready, _, _ = select.select([self.sock], [], [], timeout_s)
        while ready:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError:
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            self.got_bytes += len(data)
            try:
                out += self.reader.feed(data)
            except MalformedOutput as exc:
                self._on_malformed(str(exc))
                self.close()
                break
            ready, _, _ = select.select([self.sock], [], [], 0)
        return out

    @property
    def drained(self) -> bool:
        """Closed, and every message read before the close handed out."""
        return self.closed and not self._pending

    def unread(self, messages: list[Received]) -> None:
        """Put back messages read but not looked at yet: the next ``poll`` returns them first."""
        self._pending = messages + self._pending

    def close(self, reset: bool = False) -> None:
        if reset:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.sock.close()
        self.closed = True


def _seq_values(data: bytes) -> list[tuple[int, int]]:
    """(tag, value) of every MsgSeqNum (34) and NewSeqNo (36) in ``data`` the acceptor may read as a number."""
    found = []
    for part in data.split(SOH):
        tag, sep, value = part.partition(b"=")
        if sep and tag.isdigit() and len(tag) <= 18 and int(tag) in (34, 36) and value.isdigit() and len(value) <= 18:
            found.append((int(tag), int(value)))
    return found


class Runner:
    def __init__(self, target: EndpointTarget | HandlerTarget, seed: int, *, max_rss_growth_mib: int = 128,
                 log: bool = True) -> None:
        self.target = target
        self.profile: Profile = target.profile
        self.seed = seed
        self.fig = Figures(target.name, self.profile.name)
        self.max_rss_growth_kib = max_rss_growth_mib * 1024
        self.log_enabled = log
        self.main: Connection | None = None
        #: Our next MsgSeqNum; never below the number the acceptor expects.
        self.seq = 1
        #: The acceptor's next MsgSeqNum as seen on the wire.
        self.their_next = 1
        with contextlib.suppress(StoreError):
            # A store from an earlier run (--work-dir again): start from its numbers.
            store = FileStore.inspect(target.store_dir, target.session_id)
            self.seq, self.their_next = store.next_target_seq, store.next_sender_seq
            store.close()
        #: CRC-32 of every message the acceptor sent since its last reset, by MsgSeqNum (the store must agree).
        self.wire: dict[int, int] = {}
        self.transport_dd, self.app_dd = self.profile.dictionaries()
        self.sides: list[tuple[FuzzInput, Future[str]]] = []
        #: TestReqIDs of barriers written again whose first answer came: their Heartbeats may still come.
        self.late_barriers: set[bytes] = set()
        self.pool = ThreadPoolExecutor(SIDE_THREADS, thread_name_prefix="fuzz-side")
        self.recent: list[FuzzInput] = []
        #: How much of each log file has been read.
        self.log_offsets: dict[Path, int] = {}
        self.current: FuzzInput | None = None

    # ------------------------------------------------------------------ the run

    def run(self, start: int, count: int) -> Figures:
        begun = time.monotonic()
        self._ensure_logged_on()
        self.fig.start_rss_kib = self.fig.peak_rss_kib = rss_kib(self.target.pid)
        for index in range(start, start + count):
            phase = phase_of(self.seed, index)
            if phase == "side":
                self._side(index)
            elif phase == "logon":
                self._logon_input(index)
            else:
                self._session_input(index)
            self.fig.inputs += 1
            if self.fig.inputs % BATCH == 0:
                self._check_process()
        self._collect_sides(wait=True)
        self._check_process()
        self._final_checks()
        self.fig.end_rss_kib = rss_kib(self.target.pid)
        self.fig.elapsed_s = time.monotonic() - begun
        self.pool.shutdown(wait=True)
        return self.fig

    def _note(self, kind: str, detail: str, inp: FuzzInput | None = None, data: bytes = b"") -> None:
        inp = inp or self.current
        name = inp.describe() if inp else "-"
        finding = Finding(kind, self.seed, name, detail, data or (inp.data if inp else b""))
        self.fig.findings.append(finding)
        if self.log_enabled:
            print(finding.report(), flush=True)

    # ------------------------------------------------------------------ connections and logons

    def _connect(self) -> Connection:
        for _ in range(3):
            self.fig.connections += 1
            try:
                return Connection(self.target.port, self.profile.begin, self._malformed)
            except OSError as exc:
                # A process that crashed may still be on its way out: give it a moment to be gone.
                for _ in range(50):
                    if not self.target.alive():
                        break
                    time.sleep(0.1)
                else:
                    raise AssertionError(f"the acceptor runs but refuses connections: {exc}") from None
                self._check_process()  # notes the crash and starts a new process on the same store
        raise AssertionError("the acceptor keeps dying")

    def _malformed(self, text: str) -> None:
        self._note("malformed_output", f"the acceptor sent bytes that are not FIX: {text}")

    def _ensure_logged_on(self) -> None:
        if self.main is not None and not self.main.closed:
            return
        if self.seq > SEQ_CEILING:
            self._reset_logon()
            return
        for reset in (False, True):
            if (self._reset_logon() if reset else self._plain_logon()):
                return
        raise AssertionError(f"the acceptor refuses a clean Logon (seq {self.seq}); log:\n"
                             + self.target.log_text()[-3000:])

    def _logon_bytes(self, seq: int, reset: bool) -> bytes:
        body: list[Field] = [(b"98", b"0"), (b"108", b"30")]
        if reset:
            body.append((b"141", b"Y"))
        if self.profile.default_appl_ver_id:
            body.append((b"1137", self.profile.default_appl_ver_id))
        return build(self.profile.begin, self._header(b"A", seq) + body)

    def _plain_logon(self) -> bool:
        conn = self._connect()
        seq = self.seq
        self.seq += 1
        try:
            conn.write(self._logon_bytes(seq, reset=False))
        except Closed:
            return False
        messages = self._read_logon(conn, fill_to=seq)
        if any(m.msg_type == "A" for m in messages) and not conn.closed:
            self.main = conn
            return True
        conn.close()
        return False

    def _reset_logon(self) -> bool:
        conn = self._connect()
        self.seq = 2
        self.fig.reset_logons += 1
        try:
            conn.write(self._logon_bytes(1, reset=True))
        except Closed:
            return False
        messages = self._read_logon(conn, fill_to=1)
        if any(m.msg_type == "A" for m in messages) and not conn.closed:
            self.main = conn
            return True
        conn.close()
        return False

    def _read_logon(self, conn: Connection, fill_to: int) -> list[Received]:
        """What answers a Logon: the Logon (and maybe a ResendRequest, answered with a GapFill to ``fill_to``)."""
        got: list[Received] = []
        deadline = time.monotonic() + LOGON_WAIT_S
        while time.monotonic() < deadline and not conn.drained:
            batch = conn.poll(0.05)
            for message in batch:
                self._account(message)
                got.append(message)
                if message.msg_type == "2":
                    self._gap_fill(conn, message, fill_to)
            if any(m.msg_type == "A" for m in got):
                # A ResendRequest follows the Logon in the same write; a short look for it is enough,
                # the barrier of the next input collects anything later.
                got += self._settle(conn, fill_to, 0.02)
                break
            if any(m.msg_type == "5" for m in got):
                self._answer_logout(conn)
                break
        return got

    def _settle(self, conn: Connection, fill_to: int, wait_s: float) -> list[Received]:
        got = []
        for message in conn.poll(wait_s):
            self._account(message)
            got.append(message)
            if message.msg_type == "2":
                self._gap_fill(conn, message, fill_to)
        return got

    def _logout_main(self) -> None:
        """End the main session cleanly: our Logout, the acceptor's answer, its close."""
        conn = self.main
        self.main = None
        if conn is None:
            return
        if conn.closed:
            for message in conn.poll(0.0):
                self._account(message)
            return
        try:
            conn.write(build(self.profile.begin, self._header(b"5", self._take_seq())))
        except Closed:
            return
        deadline = time.monotonic() + LOGOUT_WAIT_S
        while not conn.drained and time.monotonic() < deadline:
            for message in conn.poll(0.1):
                self._account(message)
        if not conn.closed:
            self._note("stuck", "the acceptor did not close the connection after the Logout exchange")
        conn.close()

    def _answer_logout(self, conn: Connection) -> None:
        """The acceptor logged out: answer, then read until it closes."""
        with contextlib.suppress(Closed):
            conn.write(build(self.profile.begin, self._header(b"5", self._take_seq())))
        deadline = time.monotonic() + LOGOUT_WAIT_S
        while not conn.drained and time.monotonic() < deadline:
            for message in conn.poll(0.1):
                self._account(message)

    def _take_seq(self) -> int:
        seq = self.seq
        self.seq += 1
        return seq

    def _header(self, msg_type: bytes, seq: int) -> list[Field]:
        now = time.time_ns()
        sec, frac = divmod(now, 1_000_000_000)
        stamp = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(sec)).encode() + b".%03d" % (frac // 1_000_000)
        return [(b"35", msg_type), (b"34", b"%d" % seq), (b"49", self.profile.sender), (b"52", stamp),
                (b"56", self.profile.target)]

    def _gap_fill(self, conn: Connection, request: Received, new_seq: int) -> None:
        """Answer the acceptor's ResendRequest as a peer with nothing to resend: a GapFill to ``new_seq``."""
        begin = request.get_int(7)
        if begin is None or begin >= new_seq:
            return
        header = self._header(b"4", begin)
        header[4:4] = [(b"43", b"Y"), (b"122", header[3][1])]
        with contextlib.suppress(Closed):
            conn.write(build(self.profile.begin, header + [(b"36", b"%d" % new_seq), (b"123", b"Y")]))

    # ------------------------------------------------------------------ what the acceptor sends

    def _account(self, message: Received) -> str:
        """Check one message of the acceptor and return its kind."""
        seq = message.seq
        mt = message.msg_type
        if message.get(49) != self.profile.target or message.get(56) != self.profile.sender:
            self._note("malformed_output", f"CompIDs 49={message.get(49)!r} 56={message.get(56)!r}",
                       data=message.raw)
        try:
            rejection = validate(parse(message.raw), self.transport_dd, self.app_dd, ValidationOptions())
        except GarbledMessage as exc:
            self._note("malformed_output", f"the acceptor sent a message its own parser refuses: {exc}",
                       data=message.raw)
            rejection = None
        if rejection is not None and mt == "3" and rejection.tag == 45 and message.get(45) is None:
            # A Reject of a SequenceReset-Reset whose MsgSeqNum (which FIX ignores) is no number:
            # there is nothing to refer to.
            rejection = None
        if rejection is not None:
            self._note("invalid_output", f"the acceptor sent a message its dictionary rejects: {rejection.text} "
                       f"(tag {rejection.tag}): {message.text()[:300]}", data=message.raw)
        if seq is None:
            self._note("malformed_output", "no MsgSeqNum", data=message.raw)
        elif message.poss_dup:
            if seq >= self.their_next:
                self._note("sequence", f"a PossDup message {seq} that was never sent (next is {self.their_next})",
                           data=message.raw)
        else:
            if mt == "A" and message.get(141) == b"Y":
                if seq != 1:
                    self._note("sequence", f"a reset Logon numbered {seq}", data=message.raw)
                self.their_next = 1
                self.wire.clear()
            if seq > self.their_next:
                # A Handler stores what it forwards while its trader is away and resends it on request
                # (the store check below finds those); an endpoint sends nothing it did not answer.
                if isinstance(self.target, EndpointTarget):
                    self._note("sequence", f"the acceptor skipped {self.their_next}..{seq - 1}", data=message.raw)
            elif seq < self.their_next:
                self._note("sequence", f"MsgSeqNum {seq} again (expected {self.their_next}) without PossDup",
                           data=message.raw)
                if seq == 1:
                    # The acceptor started its numbers again without telling (no reset Logon): follow
                    # it from here, so that one defect is one finding, not one per message after it.
                    self.their_next = 1
                    self.wire.clear()
            self.their_next = max(self.their_next, seq + 1)
            self.wire[seq] = zlib.crc32(message.raw)
        if message.poss_dup and mt not in ("4",):
            return "resent"
        if mt == "0" and message.get(112) in self.late_barriers:
            return "late_barrier"  # an earlier barrier written twice: its second Heartbeat
        return _kind(message)

    # ------------------------------------------------------------------ session inputs

    def _session_input(self, index: int) -> None:
        self._ensure_logged_on()
        conn = self.main
        assert conn is not None
        inp_seq = self.seq
        inp = generate(self.seed, index, self.profile, Context(inp_seq, time.time_ns(), self.their_next))
        self._remember(inp)
        self.fig.families[inp.family] += 1
        if inp.family == "duplicate_logon":
            self._second_connection(inp)
            return
        kinds: list[str] = []
        test_ids: list[bytes] = []
        highest = max((value + (1 if tag == 34 else 0) for tag, value in _seq_values(inp.data)), default=0)
        fill_to = max((value for tag, value in _seq_values(inp.data) if tag == 34), default=0)
        self.seq = max(self.seq, min(highest, _SEQ_MAX))
        try:
            for i, chunk in enumerate(inp.chunks):
                if i and inp.pause_s:
                    time.sleep(inp.pause_s)
                conn.write(chunk)
            if inp.family == "not_reading":
                time.sleep(inp.pause_s)
        except Closed:
            pass
        if inp.fill_gaps and not conn.closed:
            kinds += self._collect_fill(conn, fill_to, test_ids)
        # A ResendRequest the input's own numbers cannot explain asks for the barrier that a frame the
        # input left open swallowed.
        input_high = any(tag == 34 and value > inp_seq for tag, value in _seq_values(inp.data))
        kinds += self._barrier(conn, index, test_ids, input_high, extra_s=len(inp.data) / 1e6)
        self._judge(inp, kinds, test_ids)
        if conn.closed:
            self.main = None

    def _collect_fill(self, conn: Connection, fill_to: int, test_ids: list[bytes]) -> list[str]:
        """Wait for the ResendRequest the input provokes and fill the gap up to the input's message."""
        kinds: list[str] = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not conn.drained:
            batch = conn.poll(0.05)
            for i, message in enumerate(batch):
                kind = self._account(message)
                kinds.append(kind)
                if kind == "heartbeat":
                    test_ids.append(message.get(112) or b"")
                if message.msg_type == "2":
                    self._gap_fill(conn, message, fill_to)
                    conn.unread(batch[i + 1:])
                    return kinds
        return kinds

    def _barrier(self, conn: Connection, index: int, test_ids: list[bytes], input_high: bool = True,
                 extra_s: float = 0.0) -> list[str]:
        """Write reset + TestRequest until its Heartbeat comes back; the kinds of everything before it.

        ``extra_s``: more time for the first answer (a second per MB of input: a big input takes a
        busy acceptor longer, and a barrier written twice leaves a Heartbeat that comes late).
        """
        kinds: list[str] = []
        ids: set[bytes] = set()
        answered_logout = False
        for attempt, wait_s in enumerate(BARRIER_WAIT_S):
            if conn.closed:
                break
            test_id = b"B%d.%d.%d" % (index, attempt, self.fig.connections)
            ids.add(test_id)
            reset_seq = self.seq
            request_seq = reset_seq + 1
            self.seq = reset_seq + 2
            reset = build(self.profile.begin, self._header(b"4", reset_seq) + [(b"36", b"%d" % request_seq)])
            request = build(self.profile.begin, self._header(b"1", request_seq) + [(b"112", test_id)])
            try:
                conn.write(reset + request)
            except Closed:
                break
            deadline = time.monotonic() + wait_s + (extra_s if attempt == 0 else 0.0)
            while time.monotonic() < deadline and not conn.drained:
                batch = conn.poll(0.05)
                for i, message in enumerate(batch):
                    kind = self._account(message)
                    echoed = message.get(112)
                    if message.msg_type == "0" and echoed in ids:
                        conn.unread(batch[i + 1:])
                        self.late_barriers |= ids - {echoed}
                        if answered_logout:
                            # The session ends: the acceptor closes once it has our Logout.
                            self._wait_closed(conn, kinds)
                        return kinds
                    if message.msg_type == "2" and not input_high:
                        kind = "barrier_resend"
                    kinds.append(kind)
                    if kind == "heartbeat" and echoed is not None:
                        test_ids.append(echoed)
                    elif message.msg_type == "2":
                        self._gap_fill(conn, message, request_seq)
                    elif message.msg_type == "1":
                        self._answer_test_request(conn, message)
                    elif message.msg_type == "5" and not answered_logout:
                        answered_logout = True
                        with contextlib.suppress(Closed):
                            conn.write(build(self.profile.begin, self._header(b"5", self._take_seq())))
        if conn.closed:
            # What was read before the close and not looked at yet (a write that failed reads meanwhile).
            return kinds + [self._account(message) for message in conn.poll(0.0)]
        # No answer to three barriers: the acceptor still waits for the rest of a frame it started.
        conn.close()
        return kinds + ["stuck"]

    def _wait_closed(self, conn: Connection, kinds: list[str]) -> None:
        deadline = time.monotonic() + LOGOUT_WAIT_S
        while not conn.drained and time.monotonic() < deadline:
            kinds += [self._account(message) for message in conn.poll(0.05)]
        if not conn.closed:
            kinds.append("stuck")
            conn.close()

    def _answer_test_request(self, conn: Connection, message: Received) -> None:
        with contextlib.suppress(Closed):
            conn.write(build(self.profile.begin, self._header(b"0", self._take_seq())
                             + [(b"112", message.get(112) or b"")]))

    def _judge(self, inp: FuzzInput, kinds: list[str], test_ids: list[bytes]) -> None:
        label = _label(kinds, closed=self.main is None or (self.main.closed if self.main else True))
        for kind in kinds:
            self.fig.answers[kind.split(":")[0] if kind.startswith("reject") else kind] += 1
            if kind.startswith("reject:"):
                self.fig.answers[kind] += 1
        if label == "silence":
            self.fig.answers["silence"] += 1
        if "disconnect" in label.split("+"):
            self.fig.answers["disconnect"] += 1
        self.fig.labels[f"{inp.family}/{inp.op} -> {label}"] += 1
        if inp.expect is not None and not any(fnmatch.fnmatchcase(label, pattern) for pattern in inp.expect):
            self._note("wrong_answer", f"answered {label!r}, the FIX spec allows {' or '.join(inp.expect)}", inp)
        if inp.test_ids and label == "heartbeat" and test_ids != inp.test_ids:
            self._note("wrong_answer", f"Heartbeats answered TestReqIDs {test_ids[:5]!r}... "
                                       f"({len(test_ids)}), expected {inp.test_ids[:5]!r}... ({len(inp.test_ids)})",
                       inp)

    def _second_connection(self, inp: FuzzInput) -> None:
        """A Logon for the session on a second connection while it is logged on: closed, nothing sent."""
        conn = self._connect()
        with contextlib.suppress(Closed):
            conn.write(inp.data)
        deadline = time.monotonic() + LOGON_WAIT_S
        got: list[Received] = []
        while not conn.drained and time.monotonic() < deadline:
            got += conn.poll(0.05)
        label = "disconnect" if conn.closed and not conn.got_bytes else f"{conn.got_bytes} bytes sent"
        if not conn.closed:
            label = "open"
        conn.close()
        self._judge_side(inp, label)

    # ------------------------------------------------------------------ logon inputs

    def _logon_input(self, index: int) -> None:
        self._logout_main()
        inp = generate(self.seed, index, self.profile, Context(self.seq, time.time_ns(), self.their_next))
        self._remember(inp)
        self.fig.families[inp.family] += 1
        values = _seq_values(inp.data)
        fill_to = max((value for tag, value in values if tag == 34), default=self.seq)
        self.seq = max(self.seq, min(max((v + 1 for _, v in values), default=0), _SEQ_MAX))
        conn = self._connect()
        kinds: list[str] = []
        try:
            for i, chunk in enumerate(inp.chunks):
                if i and inp.pause_s:
                    time.sleep(inp.pause_s)
                conn.write(chunk)
        except Closed:
            pass
        if inp.op == "half_then_close":
            time.sleep(0.05)
            kinds += [self._account(m) for m in conn.poll(0.0)]
            conn.close()
            self._judge_logon(inp, kinds + ["closed_by_us"])
            return
        deadline = time.monotonic() + LOGON_WAIT_S
        logged_on = False
        while time.monotonic() < deadline and not conn.drained:
            for message in conn.poll(0.05):
                kinds.append(self._account(message))
                if message.msg_type == "A":
                    logged_on = True
                elif message.msg_type == "2" and inp.fill_gaps:
                    self._gap_fill(conn, message, fill_to)
                elif message.msg_type == "5":
                    self._answer_logout(conn)
            if logged_on:
                for message in conn.poll(0.05):
                    kinds.append(self._account(message))
                    if message.msg_type == "2" and inp.fill_gaps:
                        self._gap_fill(conn, message, fill_to)
                break
        if logged_on and not conn.closed:
            self.main = conn
            kinds += self._barrier(conn, index, [])
            if conn.closed:
                self.main = None
        elif not conn.closed:
            conn.close()
            kinds.append("closed_by_us")
        self._judge_logon(inp, kinds, closed=conn.closed and not logged_on)

    def _judge_logon(self, inp: FuzzInput, kinds: list[str], closed: bool = False) -> None:
        label = _label(kinds, closed=closed and "closed_by_us" not in kinds)
        for kind in kinds:
            self.fig.answers[kind] += 1
        self.fig.labels[f"{inp.family}/{inp.op} -> {label}"] += 1
        if inp.expect is not None and not any(fnmatch.fnmatchcase(label, pattern) for pattern in inp.expect):
            self._note("wrong_answer", f"answered {label!r}, the FIX spec allows {' or '.join(inp.expect)}", inp)

    # ------------------------------------------------------------------ side connections

    def _side(self, index: int) -> None:
        inp = generate(self.seed, index, self.profile, Context(self.seq, time.time_ns(), self.their_next))
        self._remember(inp)
        self.fig.families[inp.family] += 1
        self.fig.connections += len(inp.chunks) if inp.op == "connect_storm" else 1
        self.sides.append((inp, self.pool.submit(_side_connection, self.target.port, inp)))
        self._collect_sides(wait=len(self.sides) > 4 * SIDE_THREADS)

    def _collect_sides(self, wait: bool) -> None:
        keep = []
        for inp, future in self.sides:
            if future.done() or wait:
                self._judge_side(inp, future.result(timeout=SIDE_WAIT_S + 30))
            else:
                keep.append((inp, future))
        self.sides = keep

    def _judge_side(self, inp: FuzzInput, label: str) -> None:
        self.fig.answers[label if label in ("disconnect", "closed_by_us", "open") else "side_bytes"] += 1
        self.fig.labels[f"{inp.family}/{inp.op} -> {label}"] += 1
        if inp.op == "reset" and label == "closed_by_us":
            return
        if inp.expect is not None and label not in inp.expect:
            self._note("wrong_answer", f"a connection beside the session: {label}, expected it closed with nothing "
                       "sent", inp)

    # ------------------------------------------------------------------ process checks

    def _remember(self, inp: FuzzInput) -> None:
        self.current = inp
        self.recent.append(inp)
        del self.recent[:-8]

    def _check_process(self) -> None:
        pid = self.target.pid
        alive = self.target.alive()
        if alive:
            try:
                with socket.create_connection((HOST, self.target.port), timeout=2.0):
                    self.fig.connections += 1
            except OSError as exc:
                self._note("probe", f"the acceptor's port does not accept a connection: {exc}")
        rss = rss_kib(pid)
        self.fig.peak_rss_kib = max(self.fig.peak_rss_kib, rss)
        if rss > self.fig.start_rss_kib + self.max_rss_growth_kib:
            self._note("memory", f"RSS {rss // 1024} MiB, {(rss - self.fig.start_rss_kib) // 1024} MiB above the "
                       f"start (bound {self.max_rss_growth_kib // 1024} MiB)")
            self.fig.start_rss_kib = rss  # report growth once per bound, not after every batch
        new = self._new_log()
        for marker in ("Traceback", "unexpected error", "exiting for the supervisor"):
            at = new.find(marker)
            if at >= 0:
                self._note("traceback", f"the log shows {marker!r}:\n{new[max(0, at - 300):at + 2500]}",
                           data=b"".join(i.data[:2000] for i in self.recent[-3:]))
                break
        if not alive:
            self.fig.crashes += 1
            recent = "; ".join(i.describe() for i in self.recent)
            self._note("crash", f"the acceptor (pid {pid}) is gone; the last inputs: {recent}",
                       data=b"".join(i.data[:2000] for i in self.recent[-3:]))
            self.main = None
            self.target.revive()
            self.fig.start_rss_kib = rss_kib(self.target.pid)

    # ------------------------------------------------------------------ the clean session and the store

    def _new_log(self) -> str:
        """What the acceptor's log files gained since the last look."""
        parts = []
        for path in self.target.log_paths():
            offset = self.log_offsets.get(path, 0)
            try:
                with path.open("rb") as file:
                    file.seek(offset)
                    data = file.read()
            except OSError:
                continue
            self.log_offsets[path] = offset + len(data)
            parts.append(data.decode("utf-8", errors="replace"))
        return "\n".join(parts)

    def _final_checks(self) -> None:
        problems: list[str] = []
        # A clean session: log off, a fresh Logon with our numbers, a TestRequest answered, Logout.
        self._logout_main()
        if self.seq > SEQ_CEILING:
            self._reset_logon()
        elif not self._plain_logon():
            problems.append(f"a fresh Logon with MsgSeqNum {self.seq - 1} was refused")
        if self.main is not None:
            kinds = self._barrier(self.main, -1, [])
            if kinds:
                problems.append(f"the clean session answered {kinds} besides the Heartbeat")
            self._logout_main()
        problems += self._store_problems(after="the clean session")
        # The same after a restart on the same store (a graceful stop closes the store).
        code = self.target.restart()
        if code != 0:
            problems.append(f"the acceptor exited {code} on SIGTERM")
        expected_out = self.their_next
        if not self._plain_logon():
            problems.append("after a restart, a fresh Logon was refused")
        elif self.main is not None:
            first = [seq for seq in sorted(self.wire) if seq >= expected_out][:1]
            if first and first[0] != expected_out:
                problems.append(f"after a restart the acceptor's Logon is {first[0]}, expected {expected_out}")
            kinds = self._barrier(self.main, -2, [])
            if kinds:
                problems.append(f"after a restart the session answered {kinds} besides the Heartbeat")
            self._logout_main()
        problems += self._store_problems(after="a restart")
        self.fig.clean_session = "consistent" if not problems else "; ".join(problems)
        for problem in problems:
            self._note("store", problem)

    def _store_problems(self, after: str) -> list[str]:
        problems: list[str] = []
        deadline = time.monotonic() + 5.0
        while True:
            store = FileStore.inspect(self.target.store_dir, self.target.session_id)
            try:
                next_out, next_in = store.next_sender_seq, store.next_target_seq
                stored = store.get_outgoing(1, next_out - 1)
            finally:
                store.close()
            settled = next_out == self.their_next and (next_in == self.seq or isinstance(self.target, HandlerTarget))
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if next_out != self.their_next:
            problems.append(f"after {after} the store's next outgoing number is {next_out}, "
                            f"the wire's {self.their_next}")
        if isinstance(self.target, EndpointTarget) and next_in != self.seq:
            problems.append(f"after {after} the store expects {next_in}, the peer's next is {self.seq}")
        elif next_in > self.seq:
            problems.append(f"after {after} the store expects {next_in}, beyond the peer's next {self.seq}")
        seqs = [seq for seq, _ in stored]
        if seqs and (seqs[0] != 1 or seqs != list(range(1, len(seqs) + 1))):
            holes = sorted(set(range(1, seqs[-1] + 1)) - set(seqs))[:10]
            problems.append(f"after {after} the store's messages are not 1..{seqs[-1]} without gaps: missing {holes}")
        if seqs and seqs[-1] != next_out - 1:
            problems.append(f"after {after} the last stored message is {seqs[-1]}, next outgoing {next_out}")
        differ = [seq for seq, data in stored if seq in self.wire and zlib.crc32(data) != self.wire[seq]]
        if differ:
            problems.append(f"after {after} {len(differ)} stored messages differ from what was sent, "
                            f"first {differ[:5]}")
        missing = [seq for seq in self.wire if seq not in dict(stored)]
        if missing:
            problems.append(f"after {after} {len(missing)} messages sent are not in the store, first {missing[:5]}")
        return problems


def _kind(message: Received) -> str:
    mt = message.msg_type
    if mt == "3":
        reason = message.get(373)
        return f"reject:{reason.decode('latin-1')}" if reason is not None else "reject:none"
    if mt == "0":
        return "heartbeat" if message.get(112) is not None else "heartbeat_timer"
    return {"1": "test_request", "2": "resend_request", "4": "sequence_reset", "5": "logout", "A": "logon",
            "j": "business_reject"}.get(mt, "app")


def _label(kinds: list[str], closed: bool) -> str:
    shown = {k for k in kinds if k not in _UNLABELLED}
    if closed and "logout" not in shown:
        shown.add("disconnect")
    if not shown:
        return "silence"
    return "+".join(sorted(shown, key=lambda k: (_LABEL_ORDER.index(k.split(":")[0]), k)))


def _side_connection(port: int, inp: FuzzInput) -> str:
    """Play a side input; ``disconnect`` when the acceptor closed it having sent nothing."""
    if inp.op == "connect_storm":
        for _ in inp.chunks:
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=5.0):
                pass
        return "disconnect"
    try:
        sock = socket.create_connection((HOST, port), timeout=5.0)
    except OSError as exc:
        return f"connect failed: {exc}"
    got = 0
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, chunk in enumerate(inp.chunks):
            if i and inp.pause_s:
                time.sleep(inp.pause_s)
            try:
                sock.sendall(chunk)
            except OSError:
                break
        if inp.op == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return "closed_by_us"
        if inp.op == "half_close":
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + SIDE_WAIT_S
        sock.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                data = sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return "disconnect" if not got else f"{got} bytes sent"
            if not data:
                return "disconnect" if not got else f"{got} bytes sent"
            got += len(data)
        return "open"
    finally:
        sock.close()


def figures_table(figures: list[Figures]) -> str:
    """The figures of one or more runs as a text table."""
    lines = []
    for f in figures:
        lines.append(f"target {f.target} {f.version}")
        lines.append(f"  inputs            {f.inputs}")
        lines.append(f"  connections       {f.connections}  (reset Logons {f.reset_logons})")
        lines.append(f"  crashes           {f.crashes}")
        lines.append(f"  findings          {len(f.findings)}  {dict(Counter(x.kind for x in f.findings))}")
        top = ", ".join(f"{k} {v}" for k, v in sorted(f.answers.items(), key=lambda kv: -kv[1]))
        lines.append(f"  answers by kind   {top}")
        lines.append(f"  RSS               start {f.start_rss_kib / 1024:.1f} MiB, "
                     f"peak {f.peak_rss_kib / 1024:.1f} MiB, end {f.end_rss_kib / 1024:.1f} MiB")
        lines.append(f"  time              {f.elapsed_s:.1f} s, {f.rate:.0f} inputs/s")
        lines.append(f"  clean session     {f.clean_session}")
    return "\n".join(lines)
