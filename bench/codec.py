"""Codec throughput: fixmesh's framer+parser and encoder against simplefix.

    python -m bench.codec [--messages N]

Prints messages per second for framing+parsing a stream of NewOrderSingle
messages and for encoding them, with each library.
"""

from __future__ import annotations

import argparse
import time

import simplefix

from actors.fix.codec import Framer, encode, parse

ORDER_BODY = [
    (11, b"ORDER-000001"), (21, b"1"), (38, b"100"), (40, b"2"), (44, b"101.25"),
    (54, b"1"), (55, b"MSFT"), (59, b"0"), (60, b"20260101-12:00:00.000"),
]


def _header(seq: int) -> list[tuple[int, bytes]]:
    return [(34, b"%d" % seq), (49, b"CLIENT"), (52, b"20260101-12:00:00.000"), (56, b"GATEWAY")]


def stream(n: int) -> bytes:
    return b"".join(encode(b"FIX.4.4", b"D", _header(i), ORDER_BODY) for i in range(1, n + 1))


def fixmesh_parse(data: bytes, n: int) -> float:
    start = time.perf_counter()
    framer = Framer()
    for i in range(0, len(data), 65536):
        framer.feed(data[i : i + 65536])
        while (frame := framer.next_frame()) is not None:
            parse(frame.data)
    return n / (time.perf_counter() - start)


def simplefix_parse(data: bytes, n: int) -> float:
    start = time.perf_counter()
    parser = simplefix.FixParser()
    count = 0
    for i in range(0, len(data), 65536):
        parser.append_buffer(data[i : i + 65536])
        while parser.get_message() is not None:
            count += 1
    assert count == n
    return n / (time.perf_counter() - start)


def fixmesh_encode(n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        encode(b"FIX.4.4", b"D", _header(i), ORDER_BODY)
    return n / (time.perf_counter() - start)


def simplefix_encode(n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        m = simplefix.FixMessage()
        m.append_pair(8, b"FIX.4.4", header=True)
        m.append_pair(35, b"D", header=True)
        for tag, value in _header(i):
            m.append_pair(tag, value, header=True)
        for tag, value in ORDER_BODY:
            m.append_pair(tag, value)
        m.encode()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    n = parser.parse_args().messages
    data = stream(n)
    rows = [
        ("frame+parse", fixmesh_parse(data, n), simplefix_parse(data, n)),
        ("encode", fixmesh_encode(n), simplefix_encode(n)),
    ]
    print(f"{'operation':<14}{'fixmesh msg/s':>16}{'simplefix msg/s':>18}{'ratio':>8}")
    for name, ours, theirs in rows:
        print(f"{name:<14}{ours:>16,.0f}{theirs:>18,.0f}{ours / theirs:>8.2f}")


if __name__ == "__main__":
    main()
