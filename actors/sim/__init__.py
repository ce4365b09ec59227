"""Simulators and harnesses: the counterparties fixmesh is tried against.

The venue simulator, the trader's client, the single-session endpoint used
by tests and the acceptor configured for QuickFIX's acceptance scripts.

Room rule: may import the shell, store and core; nothing imports it but
``actors.cli``, the tests and the benchmark.
"""
