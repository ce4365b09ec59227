"""QuickFIX settings for one always-on session, written the one way every QuickFIX counterparty here needs.

The benchmark's QuickFIX engines and latency peers (``bench.qf_engine``,
``bench.qf_rt``) and the tests' QuickFIX peers (``tests/interop/qf_peer.py``,
``tests/integration/qf_trader.py``) each run one session, initiator or
acceptor, with a file store; they differ only in the values below. The
differential test's acceptor, with hundreds of sessions, writes its own.
"""

from __future__ import annotations

from pathlib import Path

FIXT = "FIXT.1.1"


def one_session_settings(*, role: str, begin_string: str, sender: str, target: str, host: str, port: int,
                         store_dir: Path, log_dir: Path | None = None, heartbeat_s: int = 30,
                         dictionary: str | None = None, transport_dictionary: str | None = None,
                         default_appl_ver_id: str | None = None) -> str:
    """The settings file's text: ``role`` is ``initiator`` or ``acceptor``; no ``log_dir``, no file log.

    A FIXT.1.1 session validates only with both dictionaries (``transport_dictionary`` for the
    session level, ``dictionary`` for the application's) and needs its ``default_appl_ver_id``.
    """
    lines = [
        "[DEFAULT]",
        f"ConnectionType={role}",
        f"FileStorePath={store_dir}",
        *([f"FileLogPath={log_dir}"] if log_dir is not None else []),
        "NonStopSession=Y",
        f"HeartBtInt={heartbeat_s}",
        "ReconnectInterval=1",
        "SocketReuseAddress=Y",
        "SocketNodelay=Y",
        "[SESSION]",
        f"BeginString={begin_string}",
        f"SenderCompID={sender}",
        f"TargetCompID={target}",
    ]
    if role == "initiator":
        lines += [f"SocketConnectHost={host}", f"SocketConnectPort={port}"]
    else:
        lines += [f"SocketAcceptHost={host}", f"SocketAcceptPort={port}"]
    if begin_string == FIXT:
        lines.append(f"DefaultApplVerID={default_appl_ver_id}")
        if dictionary and transport_dictionary:
            lines += ["UseDataDictionary=Y", f"TransportDataDictionary={transport_dictionary}",
                      f"AppDataDictionary={dictionary}"]
        else:
            lines.append("UseDataDictionary=N")
    elif dictionary:
        lines += ["UseDataDictionary=Y", f"DataDictionary={dictionary}"]
    else:
        lines.append("UseDataDictionary=N")
    return "\n".join(lines) + "\n"
