"""``python -m broker``: run the bus broker until SIGTERM.

    python -m broker [--router tcp://127.0.0.1:5570] [--xsub tcp://127.0.0.1:5571]
                     [--xpub tcp://127.0.0.1:5572] [--policy FILE] [--log-level INFO]
                     [--role primary|backup --peer-bind ENDPOINT --peer-connect ENDPOINT]

``--policy`` runs a bus with keys (``broker/auth.py``): the JSON file names the
broker's secret key file and every principal. ``fixmesh broker --config
TOPOLOGY`` writes it from the topology and starts this program with it.
Without it the bus is open: the broker binds loopback only and says so loudly.

``--role`` makes the broker one of a pair (``broker/pair.py``): it tells its
state on ``--peer-bind`` and hears its peer's on ``--peer-connect``, and
serves clients only while it is the active one. ``fixmesh broker --config
TOPOLOGY [--backup]`` takes all three from the topology's ``broker:`` and
``broker.backup:``.

Crash-only: an endpoint that cannot be bound or an unexpected error is logged
and the process exits non-zero, for the supervisor to restart it. A restart
loses nothing that matters (see ``broker.broker``). A policy or key file that
cannot be used, or an open bus on a non-loopback endpoint, exits 2 with one
line saying what to fix.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from broker import protocol
from broker.auth import Policy, PolicyError, load_policy
from broker.broker import Endpoints, InsecureEndpoint, PairLink, check_open_endpoints, serve
from broker.pair import Role

log = logging.getLogger("fixmesh.broker")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m broker", description="fixmesh bus broker")
    parser.add_argument("--router", default=protocol.DEFAULT_ROUTER_ENDPOINT,
                        help="business plane, actors' DEALERs connect here "
                             f"(default: {protocol.DEFAULT_ROUTER_ENDPOINT})")
    parser.add_argument("--xsub", default=protocol.DEFAULT_XSUB_ENDPOINT,
                        help=f"event plane, publishers connect here (default: {protocol.DEFAULT_XSUB_ENDPOINT})")
    parser.add_argument("--xpub", default=protocol.DEFAULT_XPUB_ENDPOINT,
                        help=f"event plane, subscribers connect here (default: {protocol.DEFAULT_XPUB_ENDPOINT})")
    parser.add_argument("--policy", metavar="FILE",
                        help="the bus policy (JSON): keys and rights; without it the bus is open, loopback only")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="default: INFO")
    parser.add_argument("--role", choices=protocol.PAIR_ROLES,
                        help="one broker of a pair: primary or backup (with --peer-bind and --peer-connect)")
    parser.add_argument("--peer-bind", metavar="ENDPOINT", help="a pair: where this broker tells its state")
    parser.add_argument("--peer-connect", metavar="ENDPOINT", help="a pair: where the other broker tells its own")
    args = parser.parse_args(argv)
    given = [args.role is not None, args.peer_bind is not None, args.peer_connect is not None]
    if any(given) and not all(given):
        parser.error("a broker of a pair needs all of --role, --peer-bind and --peer-connect")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    endpoints = Endpoints(router=args.router, xsub=args.xsub, xpub=args.xpub)
    pair = None if args.role is None else PairLink(Role(args.role), args.peer_bind, args.peer_connect)
    policy: Policy | None = None
    try:
        if args.policy is None:
            check_open_endpoints(endpoints, pair)
        else:
            policy = load_policy(args.policy)
    except (PolicyError, InsecureEndpoint) as exc:
        print(f"broker: {exc}", file=sys.stderr)
        return 2
    try:
        serve(endpoints, policy, pair)
    except Exception:
        log.exception("broker failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
