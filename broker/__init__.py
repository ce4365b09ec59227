"""The bus broker: routes envelopes between actors and proxies their events; knows nothing of FIX.

    protocol   the bus protocol: envelope, kinds, topics, keys' rights, the only msgpack calls
    routing    the pure routing table and liveness, and the leases (time is an argument)
    pair       a pair of brokers, primary and backup: which one serves (pure, one table)
    auth       a bus with keys: CURVE, the ZAP handler in the broker's loop, rights, audit
    broker     the ZeroMQ loop: ROUTER, XSUB/XPUB, signals

Room rule: imports only ``broker`` (``protocol`` nothing else of the project);
the gateway imports ``broker.protocol`` only, and nothing here imports ``actors``.
"""
