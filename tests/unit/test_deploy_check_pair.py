"""``fixmesh deploy check`` on a pair of brokers: a broker of the pair that does not answer is a problem.

While the backup is down the primary is a single point of failure, and while
the primary is down the backup carries the bus alone: the check says which
broker, on which host, at which endpoint, what it means and what to look at,
and exits 1 (docs/deploy.md, "Checking a host"). Both brokers run on
127.0.0.1 here (a one-host topology may place the pair there): each broker
is played by plain listening sockets on its three ports, which is all the
check connects to.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from actors.gateway.topology import LOCAL_HOST
from actors.tools import deploy
from tests.interop import free_ports

PAIR = """\
broker:
  router: 'tcp://127.0.0.1:{0}'
  xsub: 'tcp://127.0.0.1:{1}'
  xpub: 'tcp://127.0.0.1:{2}'
  peer: 'tcp://127.0.0.1:{3}'
  backup: {{router: 'tcp://127.0.0.1:{4}', xsub: 'tcp://127.0.0.1:{5}', xpub: 'tcp://127.0.0.1:{6}',
           peer: 'tcp://127.0.0.1:{7}'}}
sessions:
  client: {{role: handler, sender_comp_id: GW, target_comp_id: T, port: 9876}}
  venue: {{role: driven, sender_comp_id: GW, target_comp_id: V, port: 9877}}
pairs:
  - {{handler: client, driven: venue}}
"""


@contextmanager
def listening(*ports: int) -> Iterator[None]:
    """Something accepting connections on each of ``ports`` (127.0.0.1) until the block ends."""
    with ExitStack() as stack:
        for port in ports:
            listener = stack.enter_context(socket.socket())
            listener.bind(("127.0.0.1", port))
            listener.listen()
        yield


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = deploy.main(["check", "--config", str(path), "--host", LOCAL_HOST, "--timeout-s", "1"])
    return code, capsys.readouterr().out


def problems(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("PROBLEM: ")]


def test_an_unreachable_backup_broker_is_a_problem_named_with_its_host_endpoints_and_what_to_do(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ports = free_ports(8)
    primary, backup = ports[0:3], ports[4:7]
    path = tmp_path / "topology.yaml"
    path.write_text(PAIR.format(*ports))

    with listening(*primary):
        code, out = check(path, capsys)
    assert code == 1, out
    assert "bus endpoints of the backup broker on local, from host local:" in out, out
    (problem,) = problems(out)
    endpoints = ", ".join(f"broker.backup.{plane} tcp://127.0.0.1:{port}"
                          for plane, port in zip(("router", "xsub", "xpub"), backup, strict=True))
    assert problem.startswith(f"PROBLEM: {endpoints} unreachable from host local (Connection refused): "), problem
    assert "the backup broker on local is down or cut off, so the broker on local is a single point of failure " \
           "(losing local stops the bus)" in problem, problem
    assert "Check `broker-backup` on host local (supervisorctl -c supervisord.conf status broker-backup" in problem
    assert out.rstrip().endswith("1 problem(s)"), out

    # The other way round: the primary gone, the backup carrying the bus alone.
    with listening(*backup):
        code, out = check(path, capsys)
    assert code == 1, out
    (problem,) = problems(out)
    assert problem.startswith(f"PROBLEM: broker.router tcp://127.0.0.1:{primary[0]}, "), problem
    assert "the backup on local carries the bus alone" in problem and "Check `broker` on host local" in problem

    # Neither: two problems, each saying the bus is down.
    code, out = check(path, capsys)
    assert code == 1 and len(problems(out)) == 2, out
    assert all("the bus is down" in p for p in problems(out)), out

    with listening(*primary, *backup):
        code, out = check(path, capsys)
    assert code == 0 and not problems(out) and out.rstrip().endswith("OK"), out
    assert out.count("reachable (") == 6, out
