"""A chaos run's end user: ``fixmesh endpoint`` as an initiator that stops sending at SIGUSR1.

    python -m bench.chaos.user --role initiator --host H --port P --sender TRADER1 --target GATEWAY \
        --store-dir D --received-log F --send 1000000 --rate 20 --reconnect-after-logout ...

Every option is the endpoint's (``actors/sim/endpoint.py``): NewOrderSingles
with ClOrdID 1, 2, ... at ``--rate`` once logged on (stored and resent by
FIX while the session is down), one line per received message in the
received log, the next ClOrdID in ``<store>/<session>.next-clordid``. The
chaos run cannot know in advance how many orders its faults will take, so
the user is given far more than it will send and SIGUSR1 ends the flow: the
orders sent so far are all there will be; the user stays logged on and goes
on receiving (and logging) until SIGTERM.
"""

from __future__ import annotations

import signal
import sys

from actors.fix.config import Role
from actors.shell.process import configure_logging
from actors.sim import endpoint
from actors.sim.tls_options import tls_settings


def main(argv: list[str] | None = None) -> int:
    p = endpoint.parser()
    p.prog = "python -m bench.chaos.user"
    args = p.parse_args(argv)
    args.tls_settings = tls_settings(args, p, acceptor=args.role == Role.ACCEPTOR.value)
    configure_logging(args.log_level)
    user = endpoint.Endpoint(args)

    def stop_sending(_signum: int, _frame: object) -> None:
        # What was sent is what the counter says; the sender stops at its next tick.
        user.sender.total = user.counter.next_id - 1

    signal.signal(signal.SIGUSR1, stop_sending)
    return user.run()


if __name__ == "__main__":
    sys.exit(main())
