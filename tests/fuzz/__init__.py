"""A fuzzer against a live acceptor: mutated FIX over TCP, and what the process must do about it.

``inputs`` makes the inputs (seeded, reproducible from a seed and an index),
``wire`` writes and reads FIX without fixmesh's codec, ``targets`` starts the
acceptor processes (a ``fixmesh endpoint`` acceptor, or a gateway Handler),
``runner`` drives them and checks every answer, the process, its memory and
its store. ``python -m tests.fuzz --inputs N --seed S [--target handler|endpoint]``
runs it and prints the figures; ``docs/fuzzing.md`` describes it and keeps the
figures of the long run.
"""
