"""The shell: runs one FIX session over TCP and owns everything with side effects.

The loop (one ``zmq.Poller``, one thread), the TCP transport, the driver
that executes the session core's outputs against a store (persist before
send) and counts what passes (``traffic``), the acceptor and initiator (a
host name looked up off the loop, ``name_lookup``), the listener hand-off,
a start that waits for a full disk (``disk_wait``), the clock (the only module that reads the time),
dictionaries read from files (their plain tables kept between starts in a
cache folder, ``plain_cache``), the sequence-number policy, schedules and
the process helpers every program uses (logging, stop signals).

Room rule: imports ``actors.fix`` and ``actors.store`` only; knows nothing of
the bus, topologies or pairs.
"""
