"""The receive path of a NewOrderSingle in process, piece by piece: where the engine's time goes.

    python -m bench.receive [--messages N] [--no-dictionary]

A logged-on acceptor session is handed a stream of NewOrderSingle in 64 KiB
chunks, as its socket would hand them over. Each piece runs alone over the
same stream: framing (cutting the stream into checked frames), parsing,
data-dictionary validation; then the whole ``Session.process``, which is
those three and the session's own checks and bookkeeping. Microseconds per
message; the rows of section 0 of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from actors.fix.codec import Framer, parse
from actors.fix.config import Role
from actors.fix.outputs import Output, Send
from actors.fix.session import Session
from actors.fix.validation import ValidationOptions, validate
from actors.shell import clock
from bench.fixmsg import NEW_ORDER_SINGLE, OrderFactory, default_dictionary, dictionary, session

CHUNK = 65536


def _wire(outputs: list[Output]) -> bytes:
    return b"".join(o.data for o in outputs if isinstance(o, Send) and o.transmit)


def _logged_on_pair(dictionary_path: str | None) -> tuple[Session, Session]:
    sender = session(Role.INITIATOR, "SENDER", "RECEIVER", dictionary_path)
    receiver = session(Role.ACCEPTOR, "RECEIVER", "SENDER", dictionary_path)
    now = clock.now()
    receiver.connection_made(now)
    logon = _wire(sender.connection_made(now))
    receiver.receive(logon)
    sender.receive(_wire(receiver.process(now)))
    sender.process(now)
    if not (sender.is_logged_on and receiver.is_logged_on):
        raise RuntimeError("the benchmark's sessions did not log on")
    return sender, receiver


def _per_message_us(n: int, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return (time.perf_counter() - start) / n * 1e6


def measure(n: int, dictionary_path: str | None) -> dict[str, float]:
    """Microseconds per message of each piece and of the whole receive path."""
    sender, receiver = _logged_on_pair(dictionary_path)
    now = clock.now()
    orders = OrderFactory()
    messages = [_wire(sender.send(NEW_ORDER_SINGLE, orders.body(i, now.utc_ns), now)) for i in range(1, n + 1)]
    stream = b"".join(messages)
    chunks = [stream[i:i + CHUNK] for i in range(0, len(stream), CHUNK)]

    def framing() -> None:
        framer = Framer()
        for chunk in chunks:
            framer.feed(chunk)
            while framer.next_frame() is not None:
                pass

    def parsing() -> None:
        for data in messages:
            parse(data)

    dd = dictionary(dictionary_path)
    parsed = [parse(data) for data in messages]
    options = ValidationOptions()

    def validation() -> None:
        for message in parsed:
            validate(message, dd, dd, options)

    def whole() -> None:
        for chunk in chunks:
            receiver.receive(chunk)
            receiver.process(now)
            while receiver.more_input:  # it stops after each order, for the application to answer it
                receiver.process(now)

    result = {"messages": float(n), "framing_us": _per_message_us(n, framing), "parse_us": _per_message_us(n, parsing),
              "validation_us": _per_message_us(n, validation) if dd is not None else 0.0,
              "whole_us": _per_message_us(n, whole)}
    if receiver.next_target != n + 2:
        raise RuntimeError(f"the receiver took {receiver.next_target - 2} of {n} orders")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.receive", description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=50_000)
    p.add_argument("--no-dictionary", action="store_true")
    args = p.parse_args(argv)
    path = None if args.no_dictionary else default_dictionary()
    res = measure(args.messages, str(path) if path else None)
    for key in ("framing_us", "parse_us", "validation_us", "whole_us"):
        print(f"{key[:-3]:<12}{res[key]:8.2f} us/message")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
