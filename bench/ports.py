"""Ports for listeners that the benchmark and the tests start a moment after choosing them.

A port the kernel hands out for binding (port 0) comes from its ephemeral
range, and can be handed out again, before the listener binds it, as the
local port of any outgoing connection (a benchmark or a test starts dozens of
processes that connect); a broker that then fails to bind exits, and a client
reconnecting to an unbound loopback port can even connect to itself on it.
Ports below the ephemeral range (as in production, 5570-5572) are never given
to outgoing connections, so neither can happen.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

HOST = "127.0.0.1"

_RNG = random.SystemRandom()
#: Probes per port before giving up: the range below the ephemeral one has thousands of ports.
_TRIES = 100


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = HOST) -> int:
    """A port below the kernel's ephemeral range that nothing listens on now."""
    floor = _ephemeral_floor()
    low = 20000 if floor > 21000 else 1024
    for _ in range(_TRIES):
        port = _RNG.randrange(low, floor)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on {host} below the ephemeral range ({low}-{floor - 1}) after {_TRIES} tries")


def free_ports(count: int, host: str = HOST) -> list[int]:
    """``count`` distinct free ports: each ``free_port`` probe releases its port, so two calls can pick the same one."""
    ports: list[int] = []
    for _ in range(_TRIES * count):
        if len(ports) == count:
            return ports
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    raise RuntimeError(f"no {count} distinct free ports on {host} below the ephemeral range")
