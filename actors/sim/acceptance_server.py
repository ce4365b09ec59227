"""fixmesh's acceptor configured for QuickFIX's session-layer acceptance scripts.

    fixmesh acceptance-server --fix-version 4.2 --port 5001 \
        --spec-dir ../shared/conformance/quickfix/spec

It is the real acceptor (driver, file store, data-dictionary validation) with
the sessions and the small echo application the scripts assume
(``FORMAT.md`` beside the scripts, sections 5 and 6): SenderCompID ISLD,
ResetOnLogon, HeartBtInt taken from the Logon, NewOrderSingle,
SecurityDefinition and Email echoed, every other application message answered
with BusinessMessageReject. Point any acceptance script at it with
``python -m tests.acceptance``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from actors.fix import tags as T
from actors.fix.config import Role, SessionConfig
from actors.fix.message import Message
from actors.fix.outputs import Output, StateChanged
from actors.fix.states import SessionState
from actors.fix.validation import ValidationOptions
from actors.shell.driver import SessionDriver
from actors.shell.host import AcceptorSpec, HostSpec, SessionHost, SessionSpec, StoreSpec
from actors.shell.process import configure_logging

log = logging.getLogger("fixmesh.acceptance")


@dataclass(frozen=True)
class Version:
    begin_string: str
    target_comp_ids: tuple[str, ...]
    app_dictionary: str
    transport_dictionary: str | None = None
    default_appl_ver_id: str | None = None


VERSIONS = {
    "4.0": Version("FIX.4.0", ("TW40",), "FIX40.xml"),
    "4.1": Version("FIX.4.1", ("TW41",), "FIX41.xml"),
    "4.2": Version("FIX.4.2", ("TW42",), "FIX42.xml"),
    "4.3": Version("FIX.4.3", ("TW43",), "FIX43.xml"),
    "4.4": Version("FIX.4.4", ("TW44", "TW", "NO_CHECK_FIELDS_HAVE_VALUES"), "FIX44.xml"),
    "5.0": Version("FIXT.1.1", ("TW50",), "FIX50.xml", "FIXT11.xml", "7"),
    "5.0SP1": Version("FIXT.1.1", ("TW50SP1",), "FIX50SP1.xml", "FIXT11.xml", "8"),
    "5.0SP2": Version("FIXT.1.1", ("TW50SP2",), "FIX50SP2.xml", "FIXT11.xml", "9"),
}

ECHOED = frozenset({"D", "d", "C"})
_NOT_ECHOED_HEADER = frozenset({8, 9, 35, 34, 49, 52, 56, 43, 122, 10})


class EchoApplication:
    """The scripts' application: echo orders once, forget them at logout."""

    def __init__(self) -> None:
        self._seen_orders: set[bytes] = set()

    def on_message(self, driver: SessionDriver, message: Message) -> None:
        mt = message.msg_type
        if mt == "D":
            cl_ord_id = message.get(11) or b""
            if message.flag(T.POSS_RESEND) and cl_ord_id in self._seen_orders:
                return
            self._seen_orders.add(cl_ord_id)
        header = [(t, v) for t, v in message.header_fields() if t not in _NOT_ECHOED_HEADER]
        body = message.body_fields()
        dictionary = driver.session.app_dictionary
        body = dictionary.canonical_body(mt, body) if dictionary is not None else sorted(body, key=lambda f: f[0])
        driver.send(mt, body, header)

    def on_output(self, driver: SessionDriver, output: Output) -> None:
        if isinstance(output, StateChanged) and output.new in (
            SessionState.DISCONNECTED, SessionState.DISCONNECTED_ABNORMALLY
        ):
            self._seen_orders.clear()


def build(args: argparse.Namespace) -> SessionHost:
    """The host of the version's sessions, all on one listening port."""
    version = VERSIONS[args.fix_version]
    spec = Path(args.spec_dir) if args.spec_dir else None
    app_path = args.data_dictionary or (str(spec / version.app_dictionary) if spec else None)
    transport_path = args.transport_dictionary or (
        str(spec / version.transport_dictionary) if spec and version.transport_dictionary else None
    )
    if app_path is None:
        raise SystemExit("acceptance_server: give --spec-dir or --data-dictionary")
    store_dir = Path(args.store_dir or tempfile.mkdtemp(prefix="fixmesh-acceptance-"))
    host = SessionHost(HostSpec(listen=AcceptorSpec(args.host, args.port), stop_text="acceptance server stopping"))
    for target in version.target_comp_ids:
        options = ValidationOptions(check_fields_have_values=target != "NO_CHECK_FIELDS_HAVE_VALUES")
        config = SessionConfig(
            begin_string=version.begin_string,
            sender_comp_id="ISLD",
            target_comp_id=target,
            role=Role.ACCEPTOR,
            reset_on_logon=True,
            default_appl_ver_id=version.default_appl_ver_id,
            validation=options,
            app_msg_types=ECHOED,
        )
        session = SessionSpec(f"{version.begin_string}-ISLD-{target}", config, StoreSpec("file", store_dir),
                              app_dictionary=app_path, transport_dictionary=transport_path)
        host.add_session(session, EchoApplication())
    return host


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fixmesh acceptance-server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fix-version", required=True, choices=sorted(VERSIONS))
    parser.add_argument("--port", type=int, required=True, help="TCP port (0 = any free port, printed at start)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--spec-dir", help="folder holding FIX40.xml ... FIX50SP2.xml and FIXT11.xml")
    parser.add_argument("--data-dictionary", help="application data dictionary (overrides --spec-dir)")
    parser.add_argument("--transport-dictionary", help="FIXT.1.1 transport dictionary (overrides --spec-dir)")
    parser.add_argument("--store-dir", help="folder for the session stores (default: a new temporary folder)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    host = build(args)
    host.start()
    print(f"listening on {args.host}:{host.port}", flush=True)
    host.run(max_wait_s=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
