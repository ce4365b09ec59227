"""The multi-host harness itself (``tests/hosts.py``): hosts reach each other, a cut link and a lost host are
what they say, and nothing is left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.hosts import Hosts
from tests.interop import Children, wait_until

CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], 5000), timeout=1); print('connected')"
#: A listener that starts a child of its own, as supervisord does: a lost host takes both.
SERVE = ("import socket, subprocess, sys, time; s = socket.socket(); s.bind((sys.argv[1], 5000)); s.listen(); "
         "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); print('up', flush=True); "
         "time.sleep(60)")


def test_hosts_reach_each_other_until_cut_and_a_lost_host_leaves_nothing(tmp_path: Path, children: Children) -> None:
    with Hosts(["a", "b"], tmp_path, children) as hosts:
        a, b = hosts.address("a"), hosts.address("b")
        assert a != b and a.startswith("198.18.") and b.startswith("198.18.")
        server = hosts.start("a", "server", [sys.executable, "-c", SERVE, a])
        wait_until(lambda: "up" in server.log_text(), 10, "the server in host a", children)
        assert len(hosts.pids("a")) == 2 and server.pid in hosts.pids("a")

        def connect() -> subprocess.CompletedProcess[str]:
            return hosts.run("b", [sys.executable, "-c", CONNECT, a], timeout_s=20)

        assert connect().stdout.strip() == "connected"
        outside = hosts.run("b", [sys.executable, "-c", CONNECT, "127.0.0.2"], timeout_s=20)
        assert outside.returncode != 0  # a host's loopback is its own: nothing listens there
        routes = hosts.run("b", ["ip", "route"]).stdout
        assert "default" not in routes, routes  # no way out of the hosts' network
        hosts.cut("a")
        assert connect().returncode != 0
        hosts.heal("a")
        wait_until(lambda: connect().returncode == 0, 10, "host a reachable again", children)

        hosts.kill("a")
        assert hosts.pids("a") == [] and server.exit_code is not None
        names = (hosts.namespace("a"), hosts.namespace("b"), hosts.bridge)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10).stdout
    assert not any(name in listed or name in links for name in names), (listed, links)
