"""Several hosts on one machine, for what crosses a network: network namespaces on a bridge.

The chaos run (``bench.chaos``), the benchmark's cross-host scale row and the
system tests (through ``tests/hosts.py``) use it:

    with Hosts(["a", "b", "c"], directory, children) as hosts:
        hosts.address("a")                               # 198.18.N.1: this run's address of host a
        hosts.run("b", ["fixmesh", "deploy", "check", ...])       # a command inside host b, to its end
        hosts.start("b", "supervisord", [...], env=..., cwd=...)  # a process inside host b (a ``Child``)
        hosts.cut("c"); hosts.heal("c")                 # host c's link down, and up again
        hosts.kill("b")                                 # host b lost: every process in it, kill -9
        hosts.pids("b")                                 # what still runs in host b

Each host is a network namespace with loopback up and one veth pair whose
other end is on a bridge in the root namespace; the bridge has no address
and the hosts have no default route, so the hosts reach each other and
nothing else. Run what talks to a host inside another host (``run``,
``start``), never from the caller's own namespace: it has no route to the
bridge, and its traffic to a host's address would leave the machine.
Addresses are in 198.18.0.0/15 (RFC 2544's benchmark range), one /24 per
run. Names carry this process's pid and a counter (namespaces
``fixmesh-<pid>-<n>-<host>``, interfaces ``fmb``/``fmv<pid hex>x<n>...``),
so runs side by side never meet; ``close`` (also on an exception) kills
what runs in the namespaces and removes them and the bridge, and a new
``Hosts`` first removes what a dead run left behind (its pid no longer
exists). Every process in a namespace of this run was started by this run,
so ``kill`` takes them all, by pid, supervisord's children included.
Without root or iproute2 the constructor raises ``NamespacesUnavailable``
with the reason (the tests turn it into a failure: CI runs as root, and they
must not pass by skipping; the benchmark prints it in the row).
``children`` is anything that starts and knows child processes
(``bench.children.Children``, or the tests' ``tests.interop.Children``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from bench.children import Child, Children

NAMESPACE_PREFIX = "fixmesh-"
IP_TIMEOUT_S = 10.0
KILL_WAIT_S = 10.0
_RUNS = itertools.count(1)
_NAMESPACE = re.compile(rf"^{NAMESPACE_PREFIX}(\d+)-\d+-")
_INTERFACE = re.compile(r"^fm[bv]([0-9a-f]+)x")


class NamespacesUnavailable(RuntimeError):
    """Network namespaces cannot be made here (no root, no iproute2); the message says why."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """One ``ip`` command, bounded in time; a failure (with ``check``) raises with its message."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def namespace_pids(namespace: str) -> list[int]:
    result = ip("netns", "pids", namespace, check=False)
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace(namespace: str) -> None:
    """SIGKILL every process in a namespace of ours, until none is left (bounded)."""
    deadline = time.monotonic() + KILL_WAIT_S
    for _ in range(100):
        pids = namespace_pids(namespace)
        if not pids or time.monotonic() > deadline:
            return
        for signum in (signal.SIGSTOP, signal.SIGKILL):  # all stopped first: none starts a replacement meanwhile
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
        time.sleep(0.05)


def remove_leftovers() -> None:
    """Namespaces and bridges of runs whose process is gone (a test run killed before its cleanup)."""
    listing = ip("netns", "list", check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAMESPACE.match(name)
        if match and not _alive(int(match.group(1))):
            _kill_namespace(name)
            ip("netns", "del", name, check=False)
    links = ip("-o", "link", "show", check=False).stdout
    for line in links.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        match = _INTERFACE.match(name)
        if match and not _alive(int(match.group(1), 16)):
            ip("link", "del", name, check=False)


class Hosts:
    """N hosts (network namespaces) on one bridge; a context manager that always cleans up."""

    def __init__(self, names: Sequence[str], directory: Path, children: Children | None = None) -> None:
        """``children`` starts the processes of ``start``; without it only ``run`` and ``command`` run anything."""
        if len(set(names)) != len(names) or not 0 < len(names) < 200:
            raise ValueError(f"host names must be distinct, 1 to 199 of them: {names}")
        self.names = list(names)
        self.directory = directory
        self.children = children
        pid = os.getpid()
        run = next(_RUNS)
        tag = f"{pid:x}x{run:x}"
        self.bridge = f"fmb{tag}"
        self._namespaces = {name: f"{NAMESPACE_PREFIX}{pid}-{run}-{name}" for name in names}
        self._links = {name: f"fmv{tag}v{i}" for i, name in enumerate(names)}
        subnet = (pid * 7 + run) % 256
        self._addresses = {name: f"198.18.{subnet}.{i + 1}" for i, name in enumerate(names)}
        self._made_namespaces: list[str] = []
        self._made_bridge = False
        if any(len(link) > 15 for link in (self.bridge, *self._links.values())):
            raise ValueError("interface names longer than Linux's 15 characters")
        try:
            remove_leftovers()
            self._build()
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            self.close()
            raise NamespacesUnavailable(f"network namespaces cannot be made here ({exc}); they need root and "
                                        "iproute2's `ip`") from exc

    def _build(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        ip("link", "set", self.bridge, "up")
        for name in self.names:
            namespace, link = self._namespaces[name], self._links[name]
            ip("netns", "add", namespace)
            self._made_namespaces.append(namespace)
            inside = f"{link}p"
            ip("link", "add", link, "type", "veth", "peer", "name", inside)
            ip("link", "set", link, "master", self.bridge, "up")
            ip("link", "set", inside, "netns", namespace)
            ip("-n", namespace, "link", "set", inside, "name", "eth0")
            ip("-n", namespace, "addr", "add", f"{self._addresses[name]}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")
            ip("-n", namespace, "link", "set", "lo", "up")

    # ------------------------------------------------------------ use

    def address(self, name: str) -> str:
        return self._addresses[name]

    def namespace(self, name: str) -> str:
        return self._namespaces[name]

    def command(self, name: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside host ``name`` (``ip netns exec`` execs it: the pid is the command's)."""
        return ["ip", "netns", "exec", self._namespaces[name], *argv]

    def run(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        """A command inside host ``name``, to its end (at most ``timeout_s``)."""
        return subprocess.run(self.command(name, argv), capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)

    def start(self, name: str, label: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Child:
        """A process inside host ``name``, one of ``children`` (its output in ``<label>.<n>.log``)."""
        if self.children is None:
            raise ValueError("Hosts made without children start no process: pass children")
        return self.children.start(label, self.command(name, argv), env=env, cwd=cwd)

    def pids(self, name: str) -> list[int]:
        """Every process running inside host ``name`` (all of them started by this run)."""
        return namespace_pids(self._namespaces[name])

    def kill(self, name: str) -> None:
        """Host ``name`` is lost: every process in it is killed at once (kill -9), supervisord's children too."""
        prefix = ["ip", "netns", "exec", self._namespaces[name]]
        inside = [child for child in (self.children.started if self.children is not None else ())
                  if child.command[:4] == prefix]
        for child in inside:
            child.stopped = True
        _kill_namespace(self._namespaces[name])
        for child in inside:
            if child.exit_code is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.popen.wait(timeout=KILL_WAIT_S)

    def cut(self, name: str) -> None:
        """Host ``name``'s link goes down: its processes run on, but nothing reaches it or leaves it."""
        ip("link", "set", self._links[name], "down")

    def heal(self, name: str) -> None:
        ip("link", "set", self._links[name], "up")

    # ------------------------------------------------------------ cleanup

    def close(self) -> None:
        for namespace in reversed(self._made_namespaces):
            _kill_namespace(namespace)
            ip("netns", "del", namespace, check=False)
        self._made_namespaces.clear()
        for link in self._links.values():  # gone with their namespace's end, unless building stopped half-way
            ip("link", "del", link, check=False)
        if self._made_bridge:
            ip("link", "del", self.bridge, check=False)
            self._made_bridge = False

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
