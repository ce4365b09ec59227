"""Opt-in order tracing: when each order passed each step of each process, to follow one order through the gateway.

With ``FIXMESH_TRACE_DIR`` set, a session actor appends one line per step an
order takes in it to ``<dir>/<process>.trace``::

    <UTC ns> <process> <step> <ClOrdID>

The steps of a session actor: ``fix_in`` (its session delivered the message,
validated and in sequence), ``bus_out`` (about to be handed to the bus for
the peer), ``bus_in`` (the peer's forward read from the bus), ``fix_out``
(stored and synced, about to be written to the counterparty's socket). A
step that hands a message on is stamped just before it does: the next
process may read the message before the call that sent it returns. The benchmark's client and
venue add their own (``bench.rt_client``, ``bench.responder``), and
``python -m bench.trace DIR`` lines them up per ClOrdID: the slowest orders'
timelines and the median of each hop. The broker knows nothing of orders: its
share is the gap between one actor's ``bus_out`` and the other's ``bus_in``.

Off (the default) it costs a test for None per message. On, a line per step,
buffered and written at exit: for diagnosis runs, not for production.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TextIO

#: The environment variable naming the folder of the trace files; unset or empty: no tracing.
TRACE_DIR_ENV = "FIXMESH_TRACE_DIR"


class OrderTrace:
    """One process's trace file."""

    def __init__(self, path: Path, process: str) -> None:
        self.path = path
        self.process = process
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = open(path, "a", buffering=1 << 20)  # noqa: SIM115  (open for the process's life)

    @staticmethod
    def from_environment(process: str) -> OrderTrace | None:
        """The trace of ``process`` if ``FIXMESH_TRACE_DIR`` is set, else None."""
        directory = os.environ.get(TRACE_DIR_ENV, "").strip()
        return OrderTrace(Path(directory) / f"{process}.trace", process) if directory else None

    def mark(self, step: str, cl_ord_id: bytes | str | None) -> None:
        """``cl_ord_id`` passed ``step`` now; a message without one is not traced."""
        if cl_ord_id is None:
            return
        key = cl_ord_id.decode("ascii", "replace") if isinstance(cl_ord_id, bytes) else cl_ord_id
        self._file.write(f"{time.time_ns()} {self.process} {step} {key}\n")

    def close(self) -> None:
        self._file.close()
