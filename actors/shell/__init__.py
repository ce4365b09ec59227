"""The shell: runs one FIX session over TCP and owns everything with side effects.

The loop (one ``zmq.Poller``, no threads), the TCP transport, the driver
that executes the session core's outputs against a store (persist before
send) and counts what passes (``traffic``), the acceptor and initiator, the
listener hand-off, the clock (the only module that reads the time),
dictionaries read from files (their plain tables kept between starts in a
cache folder, ``plain_cache``), the sequence-number policy, schedules and
the process helpers every program uses (logging, stop signals).

Room rule: imports ``actors.fix`` and ``actors.store`` only; knows nothing of
the bus, topologies or pairs.
"""
