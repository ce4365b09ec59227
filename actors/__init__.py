"""fixmesh's FIX side: one room per role, each a sub-package with one job.

    fix/      the pure session core                      imports nothing else of fixmesh
    store/    message stores behind one interface        imports fix only
    shell/    runs one session over TCP                  imports fix and store
    gateway/  session actors, forwarding, coordinator    imports shell (and below) and broker.protocol
    tools/    operator tools (monitor, ctl, demo)        imports anything below it
    sim/      simulators and test harnesses             imports anything below it
    cli.py    the one front door: ``fixmesh <command>``

Nothing imports upward; ``tests/unit/test_import_graph.py`` holds the rule.
"""
