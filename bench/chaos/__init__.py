"""The chaos run (``python -m bench.chaos``): K Handler/Driven pairs over namespace hosts under a steady order
flow, random faults (kill -9, a lost host, a cut link), then the ledger: nothing lost, nothing twice.

A program, not a test: it imports ``bench`` (``netns``, ``deployment``,
``children``) and ``actors`` (the endpoint, the store, the session engine
its venue runs on), never ``tests`` (pytest is not there at run time).
Modules: ``plan`` (hosts, topology, who runs where), ``user`` and ``venue``
(the witnesses' programs), ``faults`` (the kinds, the choice, the
injection), ``watch`` (recovery times, while the run goes), ``ledger`` (the
check, pure), ``report`` (the table and the JSON), ``run`` (the whole run),
``__main__`` (the command line). docs/chaos.md says what is checked and how.
"""
