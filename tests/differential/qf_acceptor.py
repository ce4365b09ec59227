"""QuickFIX's acceptor for the differential test, run as its own process.

    python -m tests.differential.qf_acceptor --port 5001 --sessions sessions.json --work-dir /tmp/qf

One SocketAcceptor on one loopback port with every session of the sessions
file (``tests/differential/__init__.py`` writes it), each with the data
dictionaries of its version and a memory store; QuickFIX's log goes to stdout.
The settings are QuickFIX's defaults, written out so that they can be read
beside fixmesh's (``actors/fix/config.py``, ``actors/fix/validation.py``):
same latency check, timeouts and validation switches. The application is the
one of QuickFIX's acceptance tests, as ``fixmesh acceptance-server`` has it:
NewOrderSingle, SecurityDefinition and Email are echoed (an order sent again
with PossResend is not), any other application message is unsupported
(QuickFIX answers with BusinessMessageReject, or a Reject before FIX.4.2).

The SocketAcceptor serves every connection on one thread. Not the
ThreadedSocketAcceptor: its connection threads go on reading a socket number
after QuickFIX has closed it, so with scenarios played in parallel a new
connection that is given the number has its first messages read by another
session's thread (seen as a Logon nobody answers, and a "CompID problem" in
the other session's log). The bindings run the engine on a C++ thread, so it
lives in a process of its own. SIGTERM ends it at once with exit code 0 (see
``run``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import quickfix as fix

from tests.differential import SessionEntry, read_sessions

log = logging.getLogger("qf_acceptor")

ECHOED = frozenset({"D", "d", "C"})
CLORDID, POSS_RESEND = 11, 97

#: Written out although they are QuickFIX 1.16's defaults: these are the switches fixmesh mirrors.
SESSION_DEFAULTS = (
    "ResetOnLogon=N",
    "ResetOnLogout=N",
    "ResetOnDisconnect=N",
    "CheckLatency=Y",
    "MaxLatency=120",
    "LogonTimeout=10",
    "LogoutTimeout=2",
    "CheckCompID=Y",
    "PersistMessages=Y",
    "SendRedundantResendRequests=N",
    "TimestampPrecision=3",
    "UseDataDictionary=Y",
    "ValidateFieldsOutOfOrder=Y",
    "ValidateFieldsHaveValues=Y",
    "ValidateUserDefinedFields=Y",
    "AllowUnknownMsgFields=N",
    "ValidateLengthAndChecksum=Y",
    "RejectInvalidMessage=Y",
)


class EchoApplication(fix.Application):  # type: ignore[misc]  # the bindings have no type hints
    """The acceptance tests' application; QuickFIX calls it on the acceptor's thread."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._seen: dict[str, set[str]] = {}

    def onCreate(self, session_id: fix.SessionID) -> None:
        pass

    def onLogon(self, session_id: fix.SessionID) -> None:
        log.info("%s logged on", session_id.toString())

    def onLogout(self, session_id: fix.SessionID) -> None:
        log.info("%s logged out", session_id.toString())
        with self._lock:
            self._seen.pop(session_id.toString(), None)

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        header = message.getHeader()
        msg_type = header.getField(35)
        if msg_type not in ECHOED:
            raise fix.UnsupportedMessageType()
        if msg_type == "D":
            cl_ord_id = message.getField(CLORDID) if message.isSetField(CLORDID) else ""
            poss_resend = header.isSetField(POSS_RESEND) and header.getField(POSS_RESEND) == "Y"
            with self._lock:
                seen = self._seen.setdefault(session_id.toString(), set())
                if poss_resend and cl_ord_id in seen:
                    return
                seen.add(cl_ord_id)
        fix.Session.sendToTarget(fix.Message(message), session_id)


def settings_text(sender_comp_id: str, sessions: list[SessionEntry], host: str, port: int) -> str:
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        f"SocketAcceptHost={host}",
        f"SocketAcceptPort={port}",
        "SocketReuseAddress=Y",
        "SocketNodelay=Y",
        "NonStopSession=Y",
        f"SenderCompID={sender_comp_id}",
        # QuickFIX's socket loop uses select(), which cannot watch a descriptor above FD_SETSIZE (1024). A
        # FileLog keeps two files open per session, and a run has hundreds of sessions, so the log goes to
        # stdout (the process's log file) instead.
        "ScreenLogShowIncoming=Y",
        "ScreenLogShowOutgoing=Y",
        "ScreenLogShowEvents=Y",
        *SESSION_DEFAULTS,
    ]
    for entry in sessions:
        lines += ["[SESSION]", f"BeginString={entry.begin_string}", f"TargetCompID={entry.target_comp_id}"]
        if entry.transport_dictionary is not None:
            lines += [
                f"DefaultApplVerID={entry.appl_ver_name}",
                f"TransportDataDictionary={entry.transport_dictionary}",
                f"AppDataDictionary={entry.app_dictionary}",
            ]
        else:
            lines.append(f"DataDictionary={entry.app_dictionary}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    sender, sessions = read_sessions(Path(args.sessions))
    config = work_dir / "quickfix.cfg"
    config.write_text(settings_text(sender, sessions, args.host, args.port), encoding="ascii")
    settings = fix.SessionSettings(str(config))
    app = EchoApplication()
    acceptor = fix.SocketAcceptor(app, fix.MemoryStoreFactory(), settings, fix.ScreenLogFactory(settings))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    acceptor.start()
    print(f"listening on {args.host}:{args.port} with {len(sessions)} sessions", flush=True)
    while not stop.wait(0.2):
        pass
    # Not acceptor.stop(): it logs out the sessions still logged on and waits for QuickFIX's threads, whose
    # callbacks need the interpreter lock this thread holds, so it can hang. The stores are in memory and
    # the logs are written as they go: there is nothing to save.
    sys.stdout.flush()
    os._exit(0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.differential.qf_acceptor", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sessions", required=True, help="the sessions file (tests/differential/__init__.py)")
    p.add_argument("--work-dir", required=True, help="QuickFIX's settings file goes here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
