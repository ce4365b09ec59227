"""Primary and backup connections of the Driven, with real processes and sockets.

The venue is a fixmesh endpoint (a real FIX acceptor); "the primary never
answers" is a port nobody listens on. A venue site that fails over keeps its
session state: the second venue process uses the same store as the first,
as a replicated venue would. Sequence numbers are checked on the wire: each
line of a venue's received log holds the MsgSeqNum the Driven sent.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop import (
    Child,
    Children,
    count_received,
    endpoint_command,
    exactly_once_problems,
    free_port,
    read_received,
    wait_until,
)
from tests.system.gateway import Gateway

pytestmark = [pytest.mark.slow]


class Site:
    def __init__(self, tmp_path: Path, children: Children, venue_extra: str) -> None:
        self.tmp = tmp_path
        self.children = children
        self.backup_port = free_port()
        self.gw = Gateway(tmp_path / "gateway", children,
                          venue_extra=venue_extra.replace("BACKUP", str(self.backup_port)))

    def start(self) -> None:
        """Start the gateway (after the venues that should be up from the beginning)."""
        self.gw.start()

    def venue(self, port: int, store: str, name: str) -> Child:
        command = endpoint_command("acceptor", port, "VENUE", "GATEWAY", self.tmp / store, send=0, rate=0)
        command[command.index("--received-log") + 1] = str(self.tmp / f"{name}.log")
        return self.children.start(name, command)

    def trader(self, send: int, rate: float) -> Child:
        return self.children.start("trader", endpoint_command("initiator", self.gw.ports.handler, "TRADER",
                                                              "GATEWAY", self.tmp / "trader", send=send, rate=rate))

    def received(self, name: str) -> int:
        return count_received(self.tmp / f"{name}.log")

    def switches(self) -> list[dict[str, object]]:
        return [e["body"] for e in self.gw.events() if e.get("topic") == "session.venue.switch"]  # type: ignore[misc]

    def ctl(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "actors.tools.ctl", "--config", str(self.gw.topology), *args],
                                capture_output=True, text=True, timeout=30)
        return result.stdout + result.stderr


@pytest.fixture
def make_site(tmp_path: Path, children: Children) -> Iterator[type]:
    sites: list[Site] = []

    def build(venue_extra: str) -> Site:
        site = Site(tmp_path, children, venue_extra)
        sites.append(site)
        return site

    try:
        yield build  # type: ignore[misc]
    finally:
        for site in sites:
            site.gw.stop()


def test_a_primary_that_never_answers_switches_to_the_backup(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site(", reconnect_max_tries: 2, backup: {port: BACKUP}, auto_switch_to_backup: true")
    site.venue(site.backup_port, "venue-store", "backup")
    site.start()
    site.trader(send=20, rate=100)
    wait_until(lambda: site.received("backup") == 20, 30, "20 orders at the backup venue", site.children)
    [switch] = site.switches()
    assert "primary" in str(switch["from"]) and "backup" in str(switch["to"]) and "tries failed" in str(switch["why"])


def test_cyclic_switching_with_both_sites_going_up_and_down(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site(", reconnect_max_tries: 2, backup: {port: BACKUP}, cyclic_switch_backup: true")
    backup = site.venue(site.backup_port, "venue-store", "backup")
    site.start()
    site.trader(send=300, rate=100)
    wait_until(lambda: site.received("backup") >= 60, 30, "orders at the backup venue", site.children)
    backup.kill()
    site.venue(site.gw.ports.venue, "venue-store", "primary")  # the site fails over, state and all
    wait_until(lambda: site.received("backup") + site.received("primary") >= 300, 60, "all orders",
               site.children)
    entries = read_received(site.tmp / "backup.log") + read_received(site.tmp / "primary.log")
    assert not exactly_once_problems(entries, 300)
    hops = [(str(s["from"]).split()[0], str(s["to"]).split()[0]) for s in site.switches()]
    assert hops[:2] == [("primary", "backup"), ("backup", "primary")], hops
    # KeepConnectionState (the default): the MsgSeqNums continue across the switch.
    before = read_received(site.tmp / "backup.log")
    after = [e for e in read_received(site.tmp / "primary.log") if not e.possdup]
    assert after and after[0].seq > before[-1].seq


def test_without_keep_connection_state_the_backup_starts_at_one(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site(", reconnect_max_tries: 2, backup: {port: BACKUP}, auto_switch_to_backup: true, "
                     "keep_connection_state: false")
    primary = site.venue(site.gw.ports.venue, "primary-store", "primary")
    site.start()
    site.trader(send=200, rate=100)
    wait_until(lambda: site.received("primary") >= 50, 30, "orders at the primary", site.children)
    primary.kill()
    site.venue(site.backup_port, "backup-store", "backup")  # a separate site with its own, fresh session
    wait_until(lambda: site.received("backup") >= 20, 60, "orders at the backup", site.children)
    at_primary = read_received(site.tmp / "primary.log")
    at_backup = read_received(site.tmp / "backup.log")
    # A fresh sequence: orders queued before the new Logon take 1, 2, ...; the Logon follows them.
    assert min(e.seq for e in at_backup) <= 2 < at_primary[-1].seq, (at_primary[-1], at_backup[:3])


def test_switch_connection_on_command(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site(", backup: {port: BACKUP}")
    site.venue(site.gw.ports.venue, "venue-store", "primary")
    site.start()
    site.trader(send=400, rate=100)
    wait_until(lambda: site.received("primary") >= 50, 30, "orders at the primary", site.children)
    site.venue(site.backup_port, "venue-store-copy", "backup-sink")
    # Both sites up: the operator moves the Driven to the backup; with the default
    # KeepConnectionState the backup continues the sequence (its own store is fresh,
    # so it asks for what it missed and receives it as PossDup resends).
    output = site.ctl("venue", "switch_connection", "--text", "primary site maintenance")
    assert '"ok": true' in output, output
    wait_until(lambda: site.received("backup-sink") > 0, 30, "orders at the backup after the switch", site.children)
    [switch] = site.switches()
    assert switch["why"] == "primary site maintenance" and "backup" in str(switch["to"])
    status = site.ctl("venue", "status")
    assert '"state": "CONNECTED"' in status, status
