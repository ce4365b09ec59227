"""The FIX session core: a pure state machine, its codec, validation and time formats.

Room rule: imports nothing else of fixmesh (no sockets, files, clocks, zmq,
msgpack or yaml either); ``tests/unit/test_purity.py`` and the import-graph
test check it.

Parts of it run compiled (``actors.fix.native``); the check below runs before
any of them is imported, so a stale build fails loudly instead of running old code.
"""

from actors.fix.native import ensure_fresh

ensure_fresh()
