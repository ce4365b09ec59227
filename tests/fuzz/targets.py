"""The live acceptors the fuzzer drives: real processes on loopback, started as deployments start them.

* ``endpoint``: ``fixmesh endpoint --role acceptor`` with a file store and
  the data dictionary, validation on: one process, one session, the same
  ``SessionHost``, acceptor, driver and session core as every program.
* ``handler``: a whole gateway (``tests/system/gateway.py``: broker, the
  Handler ``client``, the Driven ``venue`` and a monitor under supervisord)
  with a fixmesh endpoint as the venue; the fuzzer is the trader. Valid
  application messages travel through the broker to the venue.

Both answer the same questions: the acceptor's pid, whether it still runs
(supervisord would restart a Handler that died, so a changed pid is a crash
too), its log, its store, and a restart on the same store.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Protocol

from tests.fuzz.inputs import Profile
from tests.interop import Child, Children, free_ports, spec_file, wait_listening, wait_until
from tests.system.gateway import Gateway

FIXMESH = Path(sys.executable).parent / "fixmesh"


def profile_for(begin_string: str, *, handler: bool = False) -> Profile:
    """The inputs' profile of an acceptor of this FIX version, with the dictionaries it validates with."""
    sender, target = (b"TRADER", b"GATEWAY") if handler else (b"FUZZER", b"FIXMESH")
    if begin_string == "FIXT.1.1":
        app, transport = spec_file("FIX50SP2.xml"), spec_file("FIXT11.xml")
        if app is None or transport is None:
            raise FileNotFoundError("FIX50SP2.xml and FIXT11.xml (FIXMESH_CONFORMANCE_DIR) are needed")
        return Profile("FIXT.1.1", b"FIXT.1.1", app, transport, b"9", sender, target)
    app = spec_file("FIX44.xml")
    if app is None:
        raise FileNotFoundError("FIX44.xml (FIXMESH_CONFORMANCE_DIR) is needed")
    return Profile("FIX.4.4", b"FIX.4.4", app, None, None, sender, target)


class Target(Protocol):
    name: str
    profile: Profile
    port: int
    store_dir: Path
    session_id: str

    @property
    def pid(self) -> int: ...

    def alive(self) -> bool: ...

    def log_text(self) -> str: ...

    def log_paths(self) -> list[Path]:
        """The acceptor's log files, every process's since the start."""

    def restart(self) -> int:
        """SIGTERM (a graceful stop: Logout, store closed) and start again on the same store; the exit code."""

    def stop(self) -> None: ...


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has died)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "?")
    return state not in ("Z", "X")


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` from /proc (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class EndpointTarget:
    """``fixmesh endpoint --role acceptor`` with a file store and validation on."""

    def __init__(self, work: Path, profile: Profile, children: Children) -> None:
        self.name = "endpoint"
        self.profile = profile
        self.children = children
        self.work = work
        self.store_dir = work / "store"
        self.port = free_ports(1)[0]
        sender, target = profile.target.decode(), profile.sender.decode()
        self.session_id = f"{profile.name}:{sender}->{target}"
        self.command = [
            str(FIXMESH), "endpoint", "--role", "acceptor", "--port", str(self.port),
            "--sender", sender, "--target", target, "--store-dir", str(self.store_dir),
            "--begin-string", profile.name, "--data-dictionary", str(profile.app_dictionary), "--heartbeat", "30",
            "--durability", "os_buffer",
        ]
        if profile.transport_dictionary is not None:
            self.command += ["--transport-dictionary", str(profile.transport_dictionary),
                             "--default-appl-ver-id", (profile.default_appl_ver_id or b"9").decode()]
        self.logs: list[Child] = []
        self.child = self._start()

    def _start(self) -> Child:
        child = self.children.start(f"acceptor-{self.profile.name}", self.command)
        self.logs.append(child)
        wait_listening(self.port, child, self.children)
        return child

    @property
    def pid(self) -> int:
        return self.child.pid

    def alive(self) -> bool:
        return self.child.exit_code is None and process_alive(self.child.pid)

    def log_text(self) -> str:
        return "\n".join(child.log_text() for child in self.logs)

    def log_paths(self) -> list[Path]:
        return [child.log_path for child in self.logs]

    def restart(self) -> int:
        code = self.child.terminate()
        self.child = self._start()
        return code

    def revive(self) -> None:
        """After a crash: a new process on the same store, so that the run can go on."""
        self.child.stopped = True
        self.child = self._start()

    def stop(self) -> None:
        if self.child.exit_code is None:
            self.child.terminate()


VENUE_EXTRA = ", reconnect_interval: 0.5"


class HandlerTarget:
    """A gateway's Handler ``client`` (under supervisord, with broker, Driven and monitor) and a venue endpoint."""

    def __init__(self, work: Path, profile: Profile, children: Children) -> None:
        self.name = "handler"
        self.profile = profile
        self.children = children
        extra = f", data_dictionary: {profile.app_dictionary}"
        venue_extra = ""
        if profile.fixt:
            extra += (f", begin_string: FIXT.1.1, default_appl_ver_id: '9',"
                      f" transport_dictionary: {profile.transport_dictionary}")
            venue_extra = ", begin_string: FIXT.1.1, default_appl_ver_id: '9'"
        self.gateway = Gateway(work / "gateway", children, client_extra=extra, venue_extra=venue_extra)
        self.store_dir = work / "gateway" / "store"
        self.session_id = "client"
        self.port = self.gateway.ports.handler
        venue = [str(FIXMESH), "endpoint", "--role", "acceptor", "--port", str(self.gateway.ports.venue),
                 "--sender", "VENUE", "--target", "GATEWAY", "--store-dir", str(work / "venue"),
                 "--begin-string", profile.name, "--heartbeat", "30"]
        if profile.fixt:
            venue += ["--default-appl-ver-id", "9"]
        self.venue = children.start("venue", venue)
        self.gateway.start()
        self._pid = self.gateway.pid("client")
        wait_until(lambda: "CONNECTED" in self.gateway.log("venue"), 30, "the Driven logged on to the venue",
                   children)
        wait_listening(self.port, self.venue, children)

    @property
    def pid(self) -> int:
        return self._pid

    def alive(self) -> bool:
        return process_alive(self._pid) and self.venue.exit_code is None

    def log_text(self) -> str:
        return self.gateway.log("client")

    def log_paths(self) -> list[Path]:
        return [self.gateway.logs / "client.log"]

    def restart(self) -> int:
        self.gateway.ctl("stop", "client")
        code = 0 if self.gateway.state("client") == "STOPPED" else 1
        self.gateway.ctl("start", "client")
        wait_until(lambda: self.gateway.state("client") == "RUNNING", 30, "the Handler running again", self.children)
        self._pid = self.gateway.pid("client")
        wait_listening(self.port, self.venue, self.children)
        return code

    def revive(self) -> None:
        wait_until(lambda: self.gateway.pid("client") not in (0, self._pid), 30, "supervisord restarting the Handler",
                   self.children)
        self._pid = self.gateway.pid("client")
        wait_listening(self.port, self.venue, self.children)

    def stop(self) -> None:
        self.gateway.stop()
        if self.venue.exit_code is None:
            self.venue.terminate()


def make_target(kind: str, work: Path, begin_string: str, children: Children) -> EndpointTarget | HandlerTarget:
    work.mkdir(parents=True, exist_ok=True)
    if kind == "handler":
        return HandlerTarget(work, profile_for(begin_string, handler=True), children)
    return EndpointTarget(work, profile_for(begin_string), children)


def environment_ready() -> str | None:
    """Why the fuzzer cannot run here, or None."""
    if not FIXMESH.exists():
        return f"{FIXMESH} is missing (pip install -e .)"
    if spec_file("FIX44.xml") is None:
        return "the QuickFIX data dictionaries are missing (FIXMESH_CONFORMANCE_DIR)"
    return None if os.path.isdir("/proc") else "/proc is needed for the memory figures"
