"""What the fixmesh bench processes share: sessions, the order and its execution report, stopping.

The bench processes use the session engine the way the actors do
(``Session`` + ``SessionDriver`` + store + ``Loop``/``Acceptor``/``Initiator``)
without the endpoint's order bookkeeping, so that they measure the engine.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from actors.fix.config import Role, SessionConfig
from actors.fix.dictionary import DataDictionary
from actors.fix.session import Session
from actors.fix.timefmt import TimestampFormatter
from actors.shell import acceptor
from actors.shell.dictionaries import load_dictionary
from actors.shell.driver import SessionDriver
from actors.shell.loop import Loop

BEGIN_STRING = "FIX.4.4"
NEW_ORDER_SINGLE = "D"
EXECUTION_REPORT = "8"
CL_ORD_ID = 11


def spec_dir() -> Path:
    """QuickFIX's data dictionaries: ``$FIXMESH_CONFORMANCE_DIR/spec``, else the shared copy beside the repo."""
    configured = os.environ.get("FIXMESH_CONFORMANCE_DIR", "").strip()
    shared = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "quickfix"
    base = Path(configured) if configured else shared
    return base / "spec"


def default_dictionary() -> Path | None:
    path = spec_dir() / "FIX44.xml"
    return path if path.is_file() else None


def dictionary(path: str | None) -> DataDictionary | None:
    return load_dictionary(path) if path else None


def session(role: Role, sender: str, target: str, dictionary_path: str | None, *, next_sender: int = 1,
            next_target: int = 1, heartbeat_s: int = 30) -> Session:
    dd = dictionary(dictionary_path)
    config = SessionConfig(begin_string=BEGIN_STRING, sender_comp_id=sender, target_comp_id=target, role=role,
                           heartbeat_interval_s=heartbeat_s, use_data_dictionary=dd is not None)
    return Session(config, next_sender=next_sender, next_target=next_target, transport_dictionary=dd,
                   app_dictionary=dd)


class OrderFactory:
    """NewOrderSingle bodies valid against FIX44.xml, ClOrdID = a number."""

    def __init__(self) -> None:
        self._ts = TimestampFormatter(3)

    def body(self, cl_ord_id: int, utc_ns: int) -> list[tuple[int, bytes]]:
        return [(CL_ORD_ID, b"%d" % cl_ord_id), (21, b"1"), (38, b"100"), (40, b"2"), (44, b"10.5"), (54, b"1"),
                (55, b"FMX"), (60, self._ts.format(utc_ns))]


def execution_report(order_fields: dict[int, bytes], exec_id: int, utc_ns: int, ts: TimestampFormatter) -> \
        list[tuple[int, bytes]]:
    """A new-order acknowledgement (ExecType 0, OrdStatus 0) with the fields FIX44.xml requires."""
    return [
        (6, b"0"), (CL_ORD_ID, order_fields.get(CL_ORD_ID, b"?")), (14, b"0"), (17, b"E%d" % exec_id),
        (37, b"O%d" % exec_id), (38, order_fields.get(38, b"100")), (39, b"0"), (54, order_fields.get(54, b"1")),
        (55, order_fields.get(55, b"FMX")), (60, ts.format(utc_ns)), (150, b"0"),
        (151, order_fields.get(38, b"100")),
    ]


def acceptor_target(loop: Loop, driver: SessionDriver) -> Any:
    """What ``Acceptor``'s lookup returns for a session driven in this process.

    ``DriverTarget`` where the acceptor hands connections to targets (sessions
    possibly in other processes); the driver itself with the older acceptor.
    """
    target_class = getattr(acceptor, "DriverTarget", None)
    return driver if target_class is None else target_class(loop, driver)


def exit_on_sigterm() -> None:
    """SIGTERM and SIGINT end the process through SystemExit, so ``finally`` blocks and profilers run."""
    def stop(signum: int, _frame: object) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
