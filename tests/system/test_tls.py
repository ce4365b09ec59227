"""FIX over TLS against a TLS peer that is not fixmesh: the ``openssl`` command line.

``openssl s_client`` plays the trader against a fixmesh TLS acceptor (the
endpoint, a real process), and ``openssl s_server`` plays the venue for a
fixmesh TLS initiator: the test writes FIX into the tool's standard input and
reads what fixmesh sent from its standard output. The certificates are made
for the test by the same command line (``tests.unit.test_tls.make_pki``).
Last, a whole gateway runs over TLS on both legs, with mutual TLS towards the
trader, and an order goes through it.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import redirect_stdout, suppress
from pathlib import Path

import pytest

from actors.fix.codec import Framer, encode, parse
from actors.fix.message import Message
from actors.fix.timefmt import TimestampFormatter
from actors.shell.tls import CRL_CHECK_S
from actors.sim import trader_client
from tests.interop import Child, Children, endpoint_command, free_port, wait_until
from tests.system.gateway import Gateway
from tests.unit.test_certificates import openssl_end
from tests.unit.test_tls import Pki, make_pki
from tests.unit.test_tls_revocation import make_crl

OPENSSL = shutil.which("openssl")
pytestmark = [pytest.mark.skipif(OPENSSL is None, reason="the openssl command line is not installed")]

HOST = "127.0.0.1"
WAIT_S = 15.0
POLL_S = 0.05
_STAMP = TimestampFormatter(3)


def fix(msg_type: str, seq: int, sender: str, target: str, body: list[tuple[int, bytes]]) -> bytes:
    header = [(34, b"%d" % seq), (49, sender.encode()), (52, _STAMP.format(time.time_ns())), (56, target.encode())]
    return encode(b"FIX.4.4", msg_type.encode(), header, body)


def logon(seq: int, sender: str, target: str) -> bytes:
    return fix("A", seq, sender, target, [(98, b"0"), (108, b"30")])


class OpenSsl:
    """``openssl s_client`` or ``s_server`` as a FIX counterparty: FIX in on stdin, what the peer sent out on stdout."""

    def __init__(self, name: str, args: list[str], directory: Path) -> None:
        assert OPENSSL is not None
        self.name = name
        self.log_path = directory / f"{name}.stderr"
        self._stderr = self.log_path.open("wb")
        self.popen = subprocess.Popen([OPENSSL, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr)
        assert self.popen.stdout is not None
        os.set_blocking(self.popen.stdout.fileno(), False)
        self.raw = b""
        self._framer = Framer()
        self.messages: list[Message] = []

    def send(self, data: bytes) -> bool:
        """Type ``data`` into the tool; False when it has already gone (the peer refused it)."""
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(data)
            self.popen.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def _read(self) -> None:
        assert self.popen.stdout is not None
        try:
            data = os.read(self.popen.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            return
        self.raw += data
        self._framer.feed(data)
        while (frame := self._framer.next_frame()) is not None:
            if frame.data and frame.error is None:
                self.messages.append(parse(frame.data))

    def wait_for(self, msg_type: str, timeout_s: float = WAIT_S) -> Message | None:
        """The first message of this type the tool printed, waiting at most ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        for _ in range(int(timeout_s / POLL_S) + 1):
            self._read()
            found = next((m for m in self.messages if m.msg_type == msg_type), None)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(POLL_S)
        return None

    def wait_exit(self, timeout_s: float = WAIT_S) -> int | None:
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stderr_text(self) -> str:
        self._stderr.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                with suppress(OSError):
                    stream.close()
        self._stderr.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tools(tmp_path: Path) -> Iterator[list[OpenSsl]]:
    """The openssl processes a test starts; each is killed by its pid at the end."""
    started: list[OpenSsl] = []
    try:
        yield started
    finally:
        for tool in started:
            tool.stop()


def s_client(tools: list[OpenSsl], directory: Path, port: int, pki: Pki, *extra: str) -> OpenSsl:
    args = ["s_client", "-connect", f"{HOST}:{port}", "-CAfile", str(pki.ca), "-verify_return_error",
            "-verify_ip", HOST, "-quiet", *extra]
    tool = OpenSsl(f"s_client.{len(tools) + 1}", args, directory)
    tools.append(tool)
    return tool


def s_server(tools: list[OpenSsl], directory: Path, port: int, pki: Pki, *extra: str) -> OpenSsl:
    args = ["s_server", "-accept", f"{HOST}:{port}", "-cert", str(pki.server_cert), "-key", str(pki.server_key),
            "-quiet", *extra]
    tool = OpenSsl(f"s_server.{len(tools) + 1}", args, directory)
    tools.append(tool)
    return tool


def tls_acceptor(children: Children, tmp_path: Path, pki: Pki, *extra: str) -> tuple[Child, int]:
    """A fixmesh endpoint acceptor (GATEWAY, expecting TRADER) over TLS; returns it once it listens."""
    port = free_port()
    command = endpoint_command("acceptor", port, "GATEWAY", "TRADER", tmp_path / "acceptor", send=0, rate=0,
                               extra=["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), *extra])
    child = children.start("acceptor", command)
    wait_until(lambda: f"listening on {HOST}:{port} (TLS)" in child.log_text(), 30, "the TLS acceptor listening",
               children)
    return child, port


def tls_initiator(children: Children, tmp_path: Path, port: int, *extra: str, send: int = 0) -> Child:
    command = endpoint_command("initiator", port, "GATEWAY", "VENUE", tmp_path / "initiator", send=send, rate=0,
                               extra=list(extra))
    return children.start("initiator", command)


# ------------------------------------------------------------ the acceptor


def test_openssl_s_client_logs_on_and_is_answered_over_tls(tmp_path: Path, children: Children, pki: Pki,
                                                           tools: list[OpenSsl]) -> None:
    acceptor, port = tls_acceptor(children, tmp_path, pki)
    trader = s_client(tools, tmp_path, port, pki)
    assert trader.send(logon(1, "TRADER", "GATEWAY") + fix("1", 2, "TRADER", "GATEWAY", [(112, b"ping-1")]))
    answer = trader.wait_for("A")
    assert answer is not None, f"no Logon answer over TLS\n{trader.stderr_text()}\n{acceptor.log_text()[-2000:]}"
    assert answer.get_str(49) == "GATEWAY" and answer.get_str(56) == "TRADER"
    heartbeat = trader.wait_for("0")
    assert heartbeat is not None and heartbeat.get_str(112) == "ping-1", trader.raw
    # s_client checked the certificate (-verify_return_error, -verify_ip); the acceptor says which TLS it is.
    assert "verify return:1" in trader.stderr_text()
    wait_until(lambda: "bound to session FIX.4.4:GATEWAY->TRADER over TLSv1.3" in acceptor.log_text(), 10,
               "the acceptor's log of the TLS connection", children)


def test_a_plain_tcp_logon_to_a_tls_port_is_refused(tmp_path: Path, children: Children, pki: Pki) -> None:
    acceptor, port = tls_acceptor(children, tmp_path, pki)
    with socket.create_connection((HOST, port), timeout=5.0) as sock:
        sock.sendall(logon(1, "TRADER", "GATEWAY"))
        sock.settimeout(5.0)
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""
    assert b"8=FIX" not in answer
    wait_until(lambda: "TLS handshake failed: wrong version number (not TLS" in acceptor.log_text(), 10,
               "the refusal of plain TCP in the log", children)


def test_mutual_tls_refuses_no_certificate_and_a_strangers_and_admits_the_right_one(
        tmp_path: Path, children: Children, pki: Pki, tools: list[OpenSsl]) -> None:
    acceptor, port = tls_acceptor(children, tmp_path, pki, "--tls-verify-client", "--tls-ca", str(pki.ca))

    anonymous = s_client(tools, tmp_path, port, pki)
    anonymous.send(logon(1, "TRADER", "GATEWAY"))
    assert anonymous.wait_for("A", timeout_s=3.0) is None, "a client without a certificate was answered"
    wait_until(lambda: "TLS handshake failed: peer did not return a certificate" in acceptor.log_text(), 10,
               "the refusal of a client without a certificate in the log", children)

    stranger = s_client(tools, tmp_path, port, pki, "-cert", str(pki.stranger_cert), "-key", str(pki.stranger_key))
    stranger.send(logon(1, "TRADER", "GATEWAY"))
    assert stranger.wait_for("A", timeout_s=3.0) is None, "a certificate of another CA was accepted"
    wait_until(lambda: "TLS handshake failed: certificate verify failed: unable to get local issuer certificate"
               in acceptor.log_text(), 10, "the refusal of a stranger's certificate in the log", children)

    trader = s_client(tools, tmp_path, port, pki, "-cert", str(pki.client_cert), "-key", str(pki.client_key))
    assert trader.send(logon(1, "TRADER", "GATEWAY"))
    answer = trader.wait_for("A")
    assert answer is not None, f"the trader's certificate was refused\n{acceptor.log_text()[-2000:]}"


def test_a_certificate_revoked_while_the_acceptor_runs_is_refused_at_the_next_handshake(
        tmp_path: Path, children: Children, pki: Pki, tools: list[OpenSsl]) -> None:
    """The CA's list is written over while the session runs: no restart, the next Logon is refused."""
    crl = make_crl(pki.ca.parent, [], out=tmp_path / "crl.pem")
    acceptor, port = tls_acceptor(children, tmp_path, pki, "--tls-verify-client", "--tls-ca", str(pki.ca),
                                  "--tls-crl", str(crl))
    first = s_client(tools, tmp_path, port, pki, "-cert", str(pki.client_cert), "-key", str(pki.client_key))
    assert first.send(logon(1, "TRADER", "GATEWAY"))
    assert first.wait_for("A") is not None, f"refused before it was revoked\n{acceptor.log_text()[-2000:]}"
    first.stop()

    make_crl(pki.ca.parent, [pki.client_cert], out=crl)
    wait_until(lambda: "changed: the next handshakes check the new revocation list" in acceptor.log_text(),
               CRL_CHECK_S * 3, "the acceptor to read the new list", children)
    revoked = s_client(tools, tmp_path, port, pki, "-cert", str(pki.client_cert), "-key", str(pki.client_key))
    revoked.send(logon(2, "TRADER", "GATEWAY"))
    assert revoked.wait_for("A", timeout_s=3.0) is None, "a revoked certificate was answered"
    wait_until(lambda: "TLS handshake failed: certificate verify failed: certificate revoked" in acceptor.log_text(),
               10, "the refusal of the revoked certificate in the log", children)
    assert acceptor.exit_code is None, "the acceptor was restarted or stopped"


@pytest.mark.parametrize(
    ("offered", "minimum", "extra"),
    [
        # OpenSSL 3 speaks TLS 1.1 only at security level 0.
        ("TLSv1.1", "1.2", ("-max_protocol", "TLSv1.1", "-cipher", "DEFAULT@SECLEVEL=0")),
        ("TLSv1.2", "1.3", ("-max_protocol", "TLSv1.2")),
    ],
)
def test_a_trader_below_the_minimum_tls_version_is_refused(tmp_path: Path, children: Children, pki: Pki,
                                                           tools: list[OpenSsl], offered: str, minimum: str,
                                                           extra: tuple[str, ...]) -> None:
    acceptor, port = tls_acceptor(children, tmp_path, pki, "--tls-min-version", minimum)
    old = s_client(tools, tmp_path, port, pki, *extra)
    old.send(logon(1, "TRADER", "GATEWAY"))
    assert old.wait_exit() is not None, f"s_client offering {offered} was kept connected"
    assert old.wait_for("A", timeout_s=0.5) is None, f"a trader offering at most {offered} was answered"
    wait_until(lambda: "TLS handshake failed: unsupported protocol" in acceptor.log_text(), 10,
               f"the refusal of {offered} in the log", children)
    assert "alert protocol version" in old.stderr_text(), old.stderr_text()


# ----------------------------------------------------------- the initiator


def test_the_initiator_logs_on_to_openssl_s_server_with_its_client_certificate(
        tmp_path: Path, children: Children, pki: Pki, tools: list[OpenSsl]) -> None:
    port = free_port()
    # -Verify 1: the venue demands a client certificate (mutual TLS from the initiator's side).
    venue = s_server(tools, tmp_path, port, pki, "-Verify", "1", "-CAfile", str(pki.ca), "-verify_return_error")
    initiator = tls_initiator(children, tmp_path, port, "--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert),
                              "--tls-key", str(pki.client_key), send=1)
    ours = venue.wait_for("A")
    assert ours is not None, f"no Logon from the initiator\n{initiator.log_text()[-2000:]}\n{venue.stderr_text()}"
    assert ours.get_str(49) == "GATEWAY" and ours.get_str(56) == "VENUE"
    assert venue.send(logon(1, "VENUE", "GATEWAY"))
    order = venue.wait_for("D")
    assert order is not None and order.get_str(11) == "1", f"no order after the Logon\n{initiator.log_text()[-2000:]}"
    log = initiator.log_text()
    assert f"TLS with {HOST}:{port} established: TLSv1.3" in log and "-> CONNECTED" in log


def test_without_a_client_certificate_the_initiator_is_refused_by_a_venue_that_demands_one(
        tmp_path: Path, children: Children, pki: Pki, tools: list[OpenSsl]) -> None:
    port = free_port()
    venue = s_server(tools, tmp_path, port, pki, "-Verify", "1", "-CAfile", str(pki.ca), "-verify_return_error")
    initiator = tls_initiator(children, tmp_path, port, "--tls-ca", str(pki.ca))
    # TLS 1.3: the client's side of the handshake ends before the server judges its certificate, so the refusal
    # comes as an alert on the first read and ends the connection.
    wait_until(lambda: "alert certificate required" in initiator.log_text(), 30,
               "the venue's refusal in the initiator's log", children)
    assert "connection lost: TLS error: tlsv13 alert certificate required" in initiator.log_text()
    assert venue.wait_for("A", timeout_s=0.5) is None


def test_the_initiator_refuses_a_server_whose_certificate_does_not_carry_its_server_name(
        tmp_path: Path, children: Children, pki: Pki, tools: list[OpenSsl]) -> None:
    port = free_port()
    venue = s_server(tools, tmp_path, port, pki)
    initiator = tls_initiator(children, tmp_path, port, "--tls-ca", str(pki.ca), "--tls-server-name",
                              "venue.example", "--max-tries", "2")
    initiator.stopped = True  # it gives up and exits by itself
    wait_until(lambda: initiator.exit_code is not None, 30, "the initiator to give up", children)
    log = initiator.log_text()
    assert (f"TLS handshake with {HOST}:{port} failed: certificate verify failed: Hostname mismatch, "
            "certificate is not valid for 'venue.example'") in log, log[-3000:]
    assert "gave up after 2 tries" in log and initiator.exit_code == 1
    assert venue.wait_for("A", timeout_s=0.5) is None and b"8=FIX" not in venue.raw


def test_a_server_that_never_answers_the_handshake_is_a_failed_try_after_the_connect_timeout(
        tmp_path: Path, children: Children, pki: Pki) -> None:
    with socket.create_server((HOST, 0)) as silent:  # accepts (in the kernel's queue) and never says a word
        port = silent.getsockname()[1]
        initiator = tls_initiator(children, tmp_path, port, "--tls-ca", str(pki.ca), "--connect-timeout", "1",
                                  "--max-tries", "1")
        initiator.stopped = True
        wait_until(lambda: initiator.exit_code is not None, 30, "the initiator to give up", children)
    assert f"TLS handshake with {HOST}:{port} not done within 1 s" in initiator.log_text()


def test_the_initiator_refuses_a_server_its_ca_does_not_vouch_for(
        tmp_path: Path, children: Children, pki: Pki, tools: list[OpenSsl]) -> None:
    port = free_port()
    venue = s_server(tools, tmp_path, port, pki)
    initiator = tls_initiator(children, tmp_path, port, "--tls-ca", str(pki.other_ca), "--max-tries", "1")
    initiator.stopped = True
    wait_until(lambda: initiator.exit_code is not None, 30, "the initiator to give up", children)
    assert "certificate verify failed: unable to get local issuer certificate" in initiator.log_text()
    assert b"8=FIX" not in venue.raw


# ---------------------------------------------------------------- a gateway


@pytest.mark.slow
def test_an_order_through_a_gateway_over_tls_on_both_legs(tmp_path: Path, children: Children, pki: Pki) -> None:
    """trader --TLS, client certificate--> Handler ==bus==> Driven --TLS--> venue simulator."""
    handler_tls = (f", tls: {{cert: {pki.server_cert}, key: {pki.server_key}, ca: {pki.ca}, verify_client: true}}")
    gateway = Gateway(tmp_path / "gateway", children, client_extra=handler_tls,
                      venue_extra=f", tls: {{ca: {pki.ca}}}")
    venue_port = gateway.ports.venue
    children.start("venue-sim", [sys.executable, "-m", "actors.sim.venue_sim", "--port", str(venue_port),
                                 "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)])
    wait_until(lambda: f"listening on {HOST}:{venue_port} (TLS)" in children.started[-1].log_text(), 30,
               "the venue simulator listening over TLS", children)
    gateway.start()
    try:
        wait_until(lambda: "established: TLSv1.3" in gateway.log("venue"), 30, "the Driven's TLS to the venue",
                   children)
        out = io.StringIO()
        with redirect_stdout(out):
            code = trader_client.main([
                "--port", str(gateway.ports.handler), "--timeout-s", "20", "--max-tries", "10",
                "--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key),
                "buy 10 MSFT@101"])
        assert code == 0 and "FILLED" in out.getvalue(), \
            f"exit {code}\n{out.getvalue()}\n{gateway.log('client')[-3000:]}\n{gateway.log('venue')[-3000:]}"
        assert "bound to session client over TLSv1.3" in gateway.log("client")
        # Each session says when its certificates end (these, made for two days, draw the warning) and
        # publishes the first end in its counters: the Handler its own chain and its CA, the Driven its CA.
        assert "client: certificate CN=localhost (cert, 1 of " in gateway.log("client")
        assert "venue: certificate CN=fixmesh test CA (ca, 1 of " in gateway.log("venue")
        assert "; renew it before then" in gateway.log("venue")
        expected = {"client": min(openssl_end(pki.server_cert), openssl_end(pki.ca)), "venue": openssl_end(pki.ca)}

        def published() -> dict[str, object]:
            return {str(e["topic"]).split(".")[1]: dict(e["body"]).get("tls_expires_s")  # type: ignore[call-overload]
                    for e in gateway.events() if str(e["topic"]).endswith(".stats")}

        wait_until(lambda: published() == expected, 10, f"stats with the certificates' end {expected}", children)
    finally:
        gateway.stop()
