"""A Driven whose venue is named by a host name keeps its actor alive while the name server does not answer.

The host is a network namespace whose resolver (``/etc/netns/<namespace>/resolv.conf``,
which ``ip netns exec`` mounts over ``/etc/resolv.conf``) asks a name server
inside it that takes every query and never answers: a DNS outage. The
broker and the Driven run in it; the venue is ``venue.fixmesh.test``. Each
lookup takes the resolver's full timeout (several seconds), longer than the
bus allows an actor to be silent. The Driven must go on serving its loop:
bus heartbeats, commands, its state events; each connect try fails on its
connect timeout with a reason that names the lookup, and the broker never
declares the actor down.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hosts import Hosts
from tests.interop import Children, free_ports, wait_until
from tests.system.gateway import FIXMESH

pytestmark = [pytest.mark.slow]

#: Each query waits 2 s, twice, for the A and the AAAA records: about 8 s per lookup, against 3 s of bus silence.
RESOLV_CONF = "nameserver {address}\noptions timeout:2 attempts:2\n"
SILENT_DNS = """
import socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], 53))
print("listening", flush=True)
deadline = time.monotonic() + 300
while time.monotonic() < deadline:  # take the queries, answer none
    sock.settimeout(1.0)
    try:
        sock.recv(512)
    except OSError:
        pass
"""

TOPOLOGY = """\
broker: {{router: 'tcp://127.0.0.1:{router}', xsub: 'tcp://127.0.0.1:{xsub}', xpub: 'tcp://127.0.0.1:{xpub}'}}
defaults:
  store: {{path: {store}}}
sessions:
  client: {{role: handler, sender_comp_id: GATEWAY, target_comp_id: TRADER, port: {handler}}}
  venue: {{role: driven, sender_comp_id: GATEWAY, target_comp_id: VENUE, host: venue.fixmesh.test, port: 9,
          connect_timeout: 1, reconnect_interval: 1, reconnect_max_tries: unlimited, connect_on_start: true}}
pairs:
  - {{handler: client, driven: venue}}
"""

WATCH_S = 12.0


@pytest.fixture
def host(tmp_path: Path, children: Children) -> Iterator[Hosts]:
    with Hosts(["gw"], tmp_path, children) as hosts:
        netns_etc = Path("/etc/netns") / hosts.namespace("gw")
        netns_etc.mkdir(parents=True)
        try:
            (netns_etc / "resolv.conf").write_text(RESOLV_CONF.format(address=hosts.address("gw")))
            yield hosts
        finally:
            shutil.rmtree(netns_etc)


def test_a_name_server_that_never_answers_does_not_stop_the_drivens_loop(
        tmp_path: Path, children: Children, host: Hosts) -> None:
    address = host.address("gw")
    dns = host.start("gw", "dns", [sys.executable, "-c", SILENT_DNS, address])
    wait_until(lambda: "listening" in dns.log_text(), 10, "the silent name server", children)
    router, xsub, xpub, handler = free_ports(4)
    topology = tmp_path / "topology.yaml"
    topology.write_text(TOPOLOGY.format(router=router, xsub=xsub, xpub=xpub, handler=handler,
                                        store=tmp_path / "store"))
    broker = host.start("gw", "broker", [str(FIXMESH), "broker", "--config", str(topology)], cwd=tmp_path)
    venue = host.start("gw", "venue", [str(FIXMESH), "session", "--config", str(topology), "--session", "venue"],
                       cwd=tmp_path)
    wait_until(lambda: "connecting to venue.fixmesh.test:9 (try 1)" in venue.log_text(), 30,
               "the Driven's first connect try", children)
    start = time.monotonic()
    time.sleep(WATCH_S)

    broker_log, venue_log = broker.log_text(), venue.log_text()
    assert "actor venue is down" not in broker_log, broker_log[-3000:]
    # Tries go on at the pace the settings give (1 s timeout, 1 s between tries), not the resolver's.
    tries = venue_log.count("connecting to venue.fixmesh.test:9 (try ")
    assert tries >= WATCH_S / 3, venue_log[-3000:]
    assert "name lookup of venue.fixmesh.test not answered within 1 s" in venue_log, venue_log[-3000:]
    assert time.monotonic() - start < WATCH_S + 5
