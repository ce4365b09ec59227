"""``python -m broker``: run the bus broker until SIGTERM.

    python -m broker [--router tcp://127.0.0.1:5570] [--xsub tcp://127.0.0.1:5571]
                     [--xpub tcp://127.0.0.1:5572] [--log-level INFO]

Crash-only: an endpoint that cannot be bound or an unexpected error is logged
and the process exits non-zero, for the supervisor to restart it. A restart
loses nothing that matters (see ``broker.broker``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from broker import protocol
from broker.broker import Endpoints, serve

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
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="default: INFO")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(Endpoints(router=args.router, xsub=args.xsub, xpub=args.xpub))
    except Exception:
        log.exception("broker failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
