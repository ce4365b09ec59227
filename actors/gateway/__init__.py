"""The gateway: session actors linked in Handler/Driven pairs over the bus.

The session actor (one process per FIX session), exactly-once forwarding
between paired sessions, the actor's bus client, the topology (YAML read
once into typed settings; the document kept in the cache folder between
starts, ``yaml_document``), the coordinator and its pure pair policy, and
the listener program that serves a topology's shared ports.

Room rule: imports ``actors.shell`` (and through it fix and store) and
``broker.protocol``; never the broker's loop, never tools or simulators.
"""
