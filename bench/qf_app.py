"""The part of a QuickFIX ``Application`` every benchmark peer shares.

QuickFIX's Python bindings call every Application method, so each must
exist; the benchmark peers only differ in what they do with application
messages and in the event they report at Logon.
"""

from __future__ import annotations

import threading
import time

import quickfix as fix

from bench.procs import emit


class BenchApplication(fix.Application):  # type: ignore[misc]
    #: The event reported to the benchmark when the session logs on.
    logon_event = "logon"

    def __init__(self) -> None:
        super().__init__()
        self.session_id: fix.SessionID | None = None
        self.logged_on = threading.Event()

    def onCreate(self, session_id: fix.SessionID) -> None:
        self.session_id = session_id

    def onLogon(self, session_id: fix.SessionID) -> None:
        emit(self.logon_event, t=time.monotonic())
        self.logged_on.set()

    def onLogout(self, session_id: fix.SessionID) -> None:
        self.logged_on.clear()

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass
