"""Which addresses may try to log on to an acceptor session: an allowlist, and a lock-out for guessers.

Credentials alone let anyone who reaches the port try passwords as fast as
the Logon round trip allows. Two rules close that, checked when a connection
is bound to its session and before its Logon is answered:

* ``allow``: the networks (CIDR) a session's counterparty connects from; any
  other address is closed with nothing sent. Empty: every address.
* lock-out: ``max_failures`` refused Logons from one address within
  ``window_s`` lock that address out for ``lockout_s``; a Logon accepted
  from it forgets its failures. A locked-out trader who then types the right
  password still waits: the lock is on the address, not the guess.

Pure: time is an argument, and the number of addresses remembered is bounded
(``MAX_TRACKED``, the oldest forgotten first), so a scan from many addresses
cannot grow the process.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Final

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Addresses whose failures are remembered at once; beyond it the least recently failed is forgotten.
MAX_TRACKED: Final = 10_000


@dataclass(frozen=True, slots=True)
class AdmissionRules:
    allow: tuple[Network, ...] = ()
    max_failures: int = 5
    window_s: float = 60.0
    lockout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.window_s <= 0 or self.lockout_s < 0:
            raise ValueError("max_failures must be at least 1, window_s positive and lockout_s not negative")


def parse_network(text: str) -> Network:
    """``198.18.0.0/15`` or a single address (``127.0.0.1`` means ``/32``); raises ValueError."""
    return ipaddress.ip_network(text.strip(), strict=False)


@dataclass(slots=True)
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class Admission:
    """The allowlist and the lock-out of one acceptor session."""

    def __init__(self, rules: AdmissionRules) -> None:
        self.rules = rules
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def refusal(self, ip: str, now_s: float) -> str | None:
        """Why a connection from ``ip`` is closed before its Logon is read, or None to let it log on."""
        if self.rules.allow and not self._allowed(ip):
            return f"address {ip} is not in the session's allow_from list"
        record = self._records.get(ip)
        if record is not None and now_s < record.locked_until:
            return (f"address {ip} is locked out for {record.locked_until - now_s:.0f} s more after "
                    f"{self.rules.max_failures} refused Logons")
        return None

    def failed(self, ip: str, now_s: float) -> bool:
        """Count a refused Logon from ``ip``; True when this one locks the address out."""
        record = self._records.pop(ip, None) or _Record()
        self._records[ip] = record  # most recent last
        while len(self._records) > MAX_TRACKED:
            self._records.popitem(last=False)
        failures = record.failures
        failures.append(now_s)
        while failures and failures[0] <= now_s - self.rules.window_s:
            failures.popleft()
        if len(failures) < self.rules.max_failures:
            return False
        failures.clear()
        record.locked_until = now_s + self.rules.lockout_s
        return True

    def succeeded(self, ip: str) -> None:
        """A Logon from ``ip`` was accepted: its earlier failures no longer count."""
        self._records.pop(ip, None)

    @property
    def tracked(self) -> int:
        return len(self._records)

    def _allowed(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.rules.allow)
