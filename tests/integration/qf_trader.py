"""A QuickFIX initiator that sends a scripted list of messages and records what comes back.

    python -m tests.integration.qf_trader --port 9877 --sender QFT --target VENUE \\
        --work-dir /tmp/qf --script /tmp/script.json --record /tmp/received.jsonl

The venue simulator's tests use it as an independent counterparty: QuickFIX
frames, sequences and (with ``--data-dictionary``) validates every message
the simulator sends, so a report QuickFIX would refuse shows up as a
session-level Reject instead of a delivered message.

``--script`` is a JSON list of messages, each an object of tag -> value
with "35" for the MsgType; all are sent in order once logged on.
``--record`` gets one JSON object per line, flushed at once:
``{"dir": "in", "msg": {tag: value, ...}}`` for every application message
received, and ``{"dir": "out", ...}`` for every session-level Reject (35=3)
QuickFIX sends. QuickFIX's engine runs on its own threads, hence a process
of its own; SIGTERM logs out and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

import quickfix as fix

from bench.qf_settings import one_session_settings

log = logging.getLogger("qf_trader")

#: How often the main thread looks at the stop flag.
POLL_S = 0.05
#: Header and trailer tags QuickFIX fills in itself.
_SET_BY_ENGINE = frozenset({"8", "9", "10", "34", "35", "49", "52", "56"})


def fields_of(message: fix.Message) -> dict[str, str]:
    """Tag -> value of a message's wire text (the first occurrence of each tag)."""
    fields: dict[str, str] = {}
    for pair in message.toString().split("\x01"):
        tag, _, value = pair.partition("=")
        if tag and tag not in fields:
            fields[tag] = value
    return fields


class Scripted(fix.Application):
    """Sends the script after the first Logon; records replies. Called on QuickFIX's threads."""

    def __init__(self, script: list[dict[str, str]], begin_string: str, record: Path) -> None:
        super().__init__()
        self.script = script
        self.begin_string = begin_string
        self.session_id: fix.SessionID | None = None
        self._sent = False
        self._lock = threading.Lock()
        self._file: TextIO = record.open("a", encoding="utf-8")

    def onCreate(self, session_id: fix.SessionID) -> None:
        self.session_id = session_id

    def onLogon(self, session_id: fix.SessionID) -> None:
        log.info("logged on")
        if self._sent:
            return
        self._sent = True
        for spec in self.script:
            message = fix.Message()
            header = message.getHeader()
            header.setField(8, self.begin_string)
            header.setField(35, spec["35"])
            for tag, value in spec.items():
                if tag not in _SET_BY_ENGINE:
                    message.setField(int(tag), value)
            fix.Session.sendToTarget(message, session_id)
        log.info("sent %d scripted messages", len(self.script))

    def onLogout(self, session_id: fix.SessionID) -> None:
        log.info("logged out")

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        if message.getHeader().getField(35) == "3":
            self._write("out", message)

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._write("in", message)

    def _write(self, direction: str, message: fix.Message) -> None:
        entry: dict[str, Any] = {"dir": direction, "msg": fields_of(message)}
        with self._lock:
            self._file.write(json.dumps(entry) + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def settings_text(args: argparse.Namespace, work_dir: Path) -> str:
    return one_session_settings(
        role="initiator", begin_string=args.begin_string, sender=args.sender, target=args.target, host=args.host,
        port=args.port, store_dir=work_dir / "store", log_dir=work_dir / "log", dictionary=args.data_dictionary)


def run(args: argparse.Namespace) -> int:
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / "quickfix.cfg"
    config.write_text(settings_text(args, work_dir), encoding="ascii")
    script = json.loads(Path(args.script).read_text(encoding="utf-8"))
    settings = fix.SessionSettings(str(config))
    app = Scripted(script, args.begin_string, Path(args.record))
    engine = fix.ThreadedSocketInitiator(app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    engine.start()
    log.info("connecting to %s:%d", args.host, args.port)
    try:
        while not stop.wait(POLL_S):
            pass
    finally:
        engine.stop()
        app.close()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.integration.qf_trader", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sender", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--begin-string", default="FIX.4.4")
    p.add_argument("--data-dictionary")
    p.add_argument("--work-dir", required=True, help="QuickFIX FileStore, FileLog and settings go here")
    p.add_argument("--script", required=True, help="JSON list of messages to send")
    p.add_argument("--record", required=True, help="JSON lines of what was received")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
