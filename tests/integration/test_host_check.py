"""``fixmesh deploy check --host``: the sessions' stores and certificates on this machine, for real.

Certificates are made by ``openssl``; a small store's file system is a real
tmpfs (root, as CI runs); an unwritable store folder is one under a file.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.gateway.topology import LOCAL_HOST, load_topology
from actors.tools import deploy
from actors.tools.host_check import Findings, check_sessions
from tests.interop import free_ports, listening_on
from tests.system.test_disk_full import fill
from tests.unit.test_certificates import self_signed
from tests.unit.test_tls import needs_openssl

DAY_S = 86_400

TOPOLOGY = """
broker: {{router: 'tcp://127.0.0.1:{router}', xsub: 'tcp://127.0.0.1:{xsub}', xpub: 'tcp://127.0.0.1:{xpub}'}}
defaults:
  store: {{path: {store}}}
sessions:
  client: {{role: handler, sender_comp_id: GW, target_comp_id: T, port: 9876{tls}}}
  venue: {{role: driven, sender_comp_id: GW, target_comp_id: V, port: 9877}}
pairs:
  - {{handler: client, driven: venue}}
"""


def topology_file(tmp_path: Path, store: Path, tls: str = "") -> Path:
    router, xsub, xpub = free_ports(3)
    path = tmp_path / "topology.yaml"
    path.write_text(TOPOLOGY.format(router=router, xsub=xsub, xpub=xpub, store=store, tls=tls))
    return path


def check(path: Path, now_s: float) -> tuple[Findings, list[str]]:
    lines: list[str] = []
    findings = check_sessions(load_topology(path), LOCAL_HOST, now_s, lines.append)
    return findings, lines


@needs_openssl
def test_a_certificate_is_warned_of_thirty_days_before_its_end_and_a_problem_after_it(tmp_path: Path) -> None:
    cert = self_signed(tmp_path, "gateway", 400)
    path = topology_file(tmp_path, tmp_path / "store",
                         f", tls: {{cert: {cert}, key: {tmp_path / 'gateway.key'}}}")
    now = time.time()
    findings, lines = check(path, now)
    assert any(line.startswith("  client: certificate CN=gateway (cert, 1 of ") and "in 399 days" in line
               for line in lines), lines
    assert not [w for w in findings.warnings if "certificate" in w] and not findings.problems

    findings, _ = check(path, now + 390 * DAY_S)
    (warning,) = [w for w in findings.warnings if "certificate" in w]
    assert warning.startswith("client: certificate CN=gateway") and "in 9 days. Renew it" in warning, warning

    findings, _ = check(path, now + 402 * DAY_S)
    (problem,) = findings.problems
    assert "expired" in problem and problem.endswith("TLS handshakes fail. Renew it, then restart the session")


def test_a_store_folder_this_user_cannot_create_is_a_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    findings, lines = check(topology_file(tmp_path, blocker / "store"), time.time())
    assert f"  client: store {blocker / 'store'}  NOT WRITABLE" in lines
    assert len(findings.problems) == 2 and "cannot be written by this user" in findings.problems[0]


@pytest.fixture
def small_file_system(tmp_path: Path) -> Iterator[Path]:
    assert os.geteuid() == 0, "this test mounts a tmpfs: run it as root (CI does)"
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "fixmesh-test", str(folder)], check=True, timeout=10)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True, timeout=10)


def test_a_small_file_system_is_a_warning_and_a_full_one_a_problem(
        tmp_path: Path, small_file_system: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = topology_file(tmp_path, small_file_system / "store")
    text = path.read_text()
    ports = [int(text.split(f"{endpoint}: 'tcp://127.0.0.1:")[1].split("'")[0]) for endpoint in ("router", "xsub",
                                                                                                 "xpub")]
    with listening_on(ports):  # the bus check passes: the broker's ports answer
        assert deploy.main(["check", "--config", str(path), "--host", LOCAL_HOST, "--timeout-s", "1"]) == 0
        out = capsys.readouterr().out
        assert "WARNING: client: the file system of" in out and "has only 4.2 MB free" in out, out
        assert out.rstrip().endswith("OK, 2 warning(s)"), out

        fill(small_file_system)
        assert deploy.main(["check", "--config", str(path), "--host", LOCAL_HOST, "--timeout-s", "1"]) == 1
        out = capsys.readouterr().out
        assert "PROBLEM: client: the file system of" in out and "the session waits at start" in out, out
        assert out.rstrip().endswith("2 problem(s)"), out
