"""The topology file: YAML read once into frozen, typed settings.

Every process of a deployment reads the same file and takes its own part
(the broker its endpoints, a session actor its session). A mistake is found
before anything starts and reported once, as ``ConfigError``, naming the
file, the key path, what is wrong and what would be right; an unknown key is
a mistake too (a typo must not silently fall back to a default).

Names are QuickFIX's settings in snake_case where one exists
(``docs/configuration.md`` has the mapping).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from actors.fix.config import BEGIN_STRINGS, DEFAULT_QUALIFIER_TAG, Role, SessionConfig
from actors.fix.validation import ValidationOptions
from actors.gateway.bus import BrokerAddress, CurveKeys, KeyFileError, load_curve_keys, load_public_key
from actors.gateway.credentials import Credentials, CredentialsError, PasswordHash
from actors.gateway.yaml_document import DocumentError, read_document
from actors.shell.acceptor import DEFAULT_MAX_PENDING_CONNECTIONS
from actors.shell.admission import AdmissionRules, parse_network
from actors.shell.host import StoreSpec
from actors.shell.schedule import DAYS, Schedule, ScheduleError, parse_day, parse_time
from actors.shell.seqpolicy import SequencePolicy
from actors.shell.throttle import (
    DEFAULT_MAX_DELAYED,
    DEFAULT_MAX_QUEUED,
    MAX_COUNT,
    SESSION_MSG_TYPES,
    Action,
    InboundThrottling,
    Limit,
    OutboundThrottling,
    Rates,
    ThrottleSettings,
)
from actors.shell.tls_settings import MIN_VERSIONS, TlsSettings
from actors.store import Durability
from broker import protocol

T = TypeVar("T")

#: Gateway roles: a Handler faces the end user (acceptor), a Driven faces the venue (initiator).
GATEWAY_ROLES = {"handler": Role.ACCEPTOR, "driven": Role.INITIATOR, "acceptor": Role.ACCEPTOR,
                 "initiator": Role.INITIATOR}

#: Connect attempts in a row before an initiator gives up, unless the topology says otherwise: with the
#: default 5 s interval about half a minute, after which a paired Driven's user is told the venue is gone.
DEFAULT_RECONNECT_MAX_TRIES = 6
#: The spelling of "retry for ever" (the default is finite so that a vanished venue is always reported).
UNLIMITED = "unlimited"


class ConfigError(ValueError):
    """A topology file that cannot be used; the message says where and how to fix it."""


@dataclass(frozen=True, slots=True)
class BackupBrokerSettings:
    """``broker.backup``: the backup broker of a pair (``docs/bus.md``, "A pair of brokers")."""

    router: str
    xsub: str
    xpub: str
    #: Where the backup tells the primary its state (it binds it; the primary connects).
    peer: str
    #: The host the backup runs on (``hosts:``); the loader always sets it.
    runs_on: str | None = None


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    router: str = protocol.DEFAULT_ROUTER_ENDPOINT
    xsub: str = protocol.DEFAULT_XSUB_ENDPOINT
    xpub: str = protocol.DEFAULT_XPUB_ENDPOINT
    #: The host the broker runs on (``hosts:``); the loader always sets it.
    runs_on: str | None = None
    #: With a backup: where the primary tells the backup its state (it binds it; the backup connects).
    peer: str | None = None
    #: The backup broker of a pair; None: one broker.
    backup: BackupBrokerSettings | None = None

    @property
    def backup_address(self) -> BrokerAddress | None:
        """The backup's endpoints as a bus client connects to them (``BusClient(..., backup=)``); None: no backup."""
        b = self.backup
        return None if b is None else BrokerAddress(b.router, b.xsub, b.xpub)


#: The coordinator's key, which is also its actor name, and the topics it publishes besides its own
#: ``actor.coordinator.*`` (``actors.gateway.vocabulary``: ``coordinator.started``, ``pair.<pair>.<cmd>``).
COORDINATOR_KEY = "coordinator"
#: A further coordinator's name (``fixmesh coordinator --name coordinator-<something>``); its key is the same.
COORDINATOR_NAME_PREFIX = "coordinator-"
COORDINATOR_TOPICS = ("coordinator.", "pair.")
DEFAULT_BROKER_KEY = "broker"


def operator_prefix(key: str) -> str:
    """An operator's tools (``fixmesh ctl``) join the bus as ``ctl-<key>-<pid>``: the names its key may use."""
    return f"ctl-{key}-"


@dataclass(frozen=True, slots=True)
class BusSecurity:
    """``bus:``: the keys of a bus with keys (``docs/bus.md``). Absent, the bus is open (loopback only).

    Every process finds its own key pair at ``<keys_dir>/<key>.key_secret`` and
    the broker's public key at ``<keys_dir>/<broker_key>.key``; the broker finds
    every principal's public key at ``<keys_dir>/<key>.key``. A session's key is
    named after the session, the coordinator's is ``coordinator``.
    """

    keys_dir: Path
    broker_key: str = DEFAULT_BROKER_KEY
    #: Keys that may command every session (each command published as ``audit.command``) and read events.
    operators: tuple[str, ...] = ()
    #: Keys that may only read events (``fixmesh monitor``).
    subscribers: tuple[str, ...] = ()

    def secret_file(self, key: str) -> Path:
        return self.keys_dir / f"{key}.key_secret"

    def public_file(self, key: str) -> Path:
        return self.keys_dir / f"{key}.key"


#: The three ways an acceptor's ``credentials`` give the password; an inline plain ``password`` is not one.
PASSWORD_KEYS = ("password_hash", "password_env", "password_file")
_CREDENTIALS_FIX = ("use credentials: {username: NAME, password_hash: 'scrypt$...'} (printed by "
                    "`fixmesh credentials hash`), or password_env: VARIABLE, or password_file: PATH")


@dataclass(frozen=True, slots=True)
class CredentialSource:
    """Where an acceptor's password comes from; read and hashed when the session starts, not when the file is read.

    Every process of a deployment reads the topology (coordinator, ctl, listener); only the
    session actor that checks Logons needs the secret, so only it must have the variable or
    the file (``resolve_credentials``).
    """

    username: str
    #: Exactly one of these three is set.
    password_hash: PasswordHash | None = None
    password_env: str | None = None
    password_file: Path | None = None


@dataclass(frozen=True, slots=True)
class SessionSettings:
    name: str
    role: str
    config: SessionConfig
    host: str
    port: int
    #: The loader always sets ``directory`` (default ``var/store``): the forwarding journal lives there too.
    store: StoreSpec
    sequence: SequencePolicy
    data_dictionary: Path | None = None
    transport_dictionary: Path | None = None
    reconnect_interval_s: float = 5.0
    #: Connect attempts in a row before giving up (a paired Driven's user is then logged out); None: for ever.
    reconnect_max_tries: int | None = DEFAULT_RECONNECT_MAX_TRIES
    connect_timeout_s: float = 5.0
    #: The session application messages are forwarded to (from ``pairs``).
    peer: str | None = None
    #: When logons are accepted (acceptors) and the session may be up.
    schedule: Schedule = field(default_factory=Schedule)
    #: Initiators: connect when the process starts, or only when commanded (a paired Driven).
    connect_on_start: bool = True
    #: FIX Antenna's message rejecting: stored messages older than ``message_ttl_s`` are not
    #: sent when the counterparty asks for them; they go back to their origin as rejected.
    enable_message_rejecting: bool = False
    message_ttl_s: float = 0.0
    #: Initiators: a backup address and FIX Antenna's switching options.
    backup: tuple[str, int] | None = None
    auto_switch_to_backup: bool = False
    cyclic_switch_backup: bool = False
    #: Keep the store and both sequence numbers across a switch; otherwise start at 1.
    keep_connection_state: bool = True
    #: Handlers: answer the user's Logon only once the paired Driven is logged on to the venue
    #: (docs/coordinator.md); off, the Logon is answered at once.
    logon_waits_for_venue: bool = False
    #: Acceptors: what a Logon must carry (Username 553, Password 554); None: no check.
    credentials: CredentialSource | None = None
    #: FIX over TLS (``tls:``, docs/security.md); None: plain TCP.
    tls: TlsSettings | None = None
    #: Acceptors: connections that may wait for their Logon at once on the session's port.
    max_pending_connections: int = DEFAULT_MAX_PENDING_CONNECTIONS
    #: Acceptors: the addresses allowed to connect and the lock-out of addresses that keep failing.
    admission: AdmissionRules | None = None
    #: The host the session's actor runs on (``hosts:``); the loader always sets it.
    runs_on: str | None = None
    #: Rate limits on application messages, each direction optional (``throttle:``); None: none.
    throttle: ThrottleSettings | None = None

    @property
    def journal_path(self) -> Path:
        """The forwarding journal (``actors.gateway.forwarding``), beside the session's store."""
        return (self.store.directory or Path("var/store")) / f"{self.name}.forwarded"


@dataclass(frozen=True, slots=True)
class Pair:
    handler: str
    driven: str

    @property
    def name(self) -> str:
        return f"{self.handler}-{self.driven}"


#: The one host of a topology without ``hosts:``: every program on this machine, the bus on loopback.
LOCAL_HOST = "local"
#: Programs of ``programs:`` whose command fixmesh knows (``fixmesh <name> --config T``); any other needs ``command``.
KNOWN_PROGRAMS = ("coordinator", "listener", "monitor", "metrics")
#: Known programs that read the event plane: on a bus with keys, each with a key of its own (``key:``).
KEYED_PROGRAMS = ("monitor", "metrics")
#: Programs that run on one host only (``runs_on: HOST``); any other may run on several (``runs_on: [a, b]``).
SINGLE_PROGRAMS = ("coordinator", "listener")
#: supervisord's names of the broker programs, which no session or program may take.
BROKER_PROGRAMS = ("broker", "broker-backup")


@dataclass(frozen=True, slots=True)
class HostSettings:
    """``hosts.<name>``: a machine of the deployment and the address the others reach it at."""

    name: str
    address: str
    #: False for the one host of a topology without ``hosts:``, whose bus endpoints are not checked against it
    #: (such a topology may bind its broker where other machines reach it, with keys, as before hosts existed).
    declared: bool = True

    @property
    def is_loopback(self) -> bool:
        return ipaddress.ip_address(self.address).is_loopback


@dataclass(frozen=True, slots=True)
class ProgramSettings:
    """``programs.<name>``: a program besides the broker and the sessions, and the hosts it runs on."""

    name: str
    #: One host, or several for a program that runs on each (``metrics``: one per host).
    runs_on: tuple[str, ...]
    #: ``fixmesh`` arguments (the words after ``fixmesh``); None for a known program: ``<name> --config T``.
    command: str | None = None
    #: supervisord's start order (lower first); None: the renderer's default for the program.
    priority: int | None = None
    #: The monitor's or the metrics' key on a bus with keys (a subscriber's or an operator's).
    key: str | None = None
    #: One line on what the program is for: the rendered configuration's comment, the demo's greeting.
    about: str | None = None


@dataclass(frozen=True, slots=True)
class Topology:
    path: Path
    broker: BrokerSettings
    sessions: Mapping[str, SessionSettings]
    pairs: tuple[Pair, ...] = field(default_factory=tuple)
    #: Where processes of this topology meet locally (Unix sockets for connection handover).
    runtime_dir: Path = Path("var/run")
    #: Tags shown as *** wherever a message is shown, beyond Password(554) and its kin (actors.fix.secrets).
    secret_tags: frozenset[int] = frozenset()
    #: The bus's keys; None: an open bus (loopback endpoints only).
    bus: BusSecurity | None = None
    #: The machines (``hosts:``); the loader always gives at least one (``LOCAL_HOST`` when the file names none).
    hosts: Mapping[str, HostSettings] = field(default_factory=dict)
    #: Programs besides the broker and the sessions, each placed on a host (``programs:``, and the coordinator
    #: and listener the topology needs, placed on the one host when there is only one).
    programs: Mapping[str, ProgramSettings] = field(default_factory=dict)

    def host(self, name: str) -> HostSettings:
        try:
            return self.hosts[name]
        except KeyError:
            known = ", ".join(self.hosts) or "none"
            raise ConfigError(f"{self.path}: hosts: no host named {name!r} (configured: {known})") from None

    def bus_keys(self, key: str, secret_file: Path | None = None) -> CurveKeys | None:
        """The keys a process that uses ``key`` joins the bus with; None on an open bus.

        ``secret_file``: the key pair somewhere else than ``<keys_dir>/<key>.key_secret``. A missing,
        unreadable or too widely readable file is a ConfigError naming the file and the fix.
        """
        if self.bus is None:
            return None
        try:
            return load_curve_keys(key, secret_file or self.bus.secret_file(key),
                                   self.bus.public_file(self.bus.broker_key))
        except KeyFileError as exc:
            raise ConfigError(f"{self.path}: bus.keys_dir: {exc}") from None

    def bus_principals(self) -> tuple[protocol.Principal, ...]:
        """Every key of the bus and its rights, with its public key read from ``keys_dir`` (ConfigError if missing).

        A session's key may act as the session only, deliver to its peer only, and subscribe. The
        coordinator's (when there are pairs) may command the paired sessions and publish its own
        topics. An operator's may act as ``ctl-<key>-*``, command every session (audited) and subscribe.
        A subscriber's may only subscribe.
        """
        bus = self.bus
        if bus is None:
            return ()
        rights: list[tuple[str, dict[str, Any]]] = [
            (name, {"names": frozenset({name}), "deliver_to": frozenset({s.peer} if s.peer else ()),
                    "subscribe": True})
            for name, s in self.sessions.items()]
        if self.pairs:
            paired = frozenset(name for pair in self.pairs for name in (pair.handler, pair.driven))
            # A second coordinator (``fixmesh coordinator --name coordinator-b``) uses the same key.
            rights.append((COORDINATOR_KEY, {"names": frozenset({COORDINATOR_KEY}),
                                             "name_prefixes": (COORDINATOR_NAME_PREFIX,), "command_to": paired,
                                             "publish": COORDINATOR_TOPICS, "subscribe": True}))
        rights += [(key, {"name_prefixes": (operator_prefix(key),), "command_to": frozenset({protocol.ANY}),
                          "audit": True, "subscribe": True}) for key in bus.operators]
        rights += [(key, {"subscribe": True}) for key in bus.subscribers]
        principals = []
        for key, granted in rights:
            try:
                public_key = load_public_key(key, bus.public_file(key)).decode("ascii")
            except KeyFileError as exc:
                raise ConfigError(f"{self.path}: bus.keys_dir: {exc}") from None
            principals.append(protocol.Principal(key, public_key, **granted))
        return tuple(principals)

    def bus_policy(self) -> protocol.BusPolicy | None:
        """What the broker of a bus with keys is started with (``python -m broker --policy``); None: open bus."""
        if self.bus is None:
            return None
        return protocol.BusPolicy(str(self.bus.secret_file(self.bus.broker_key)), self.bus_principals())

    def shared_ports(self) -> dict[tuple[str, int], list[str]]:
        """Acceptor ports that several sessions share (they differ by session qualifier)."""
        ports: dict[tuple[str, int], list[str]] = {}
        for name, s in self.sessions.items():
            if s.config.role is Role.ACCEPTOR:
                ports.setdefault((s.host, s.port), []).append(name)
        return {address: names for address, names in ports.items() if len(names) > 1}

    def port_is_shared(self, name: str) -> bool:
        return any(name in names for names in self.shared_ports().values())

    def session(self, name: str) -> SessionSettings:
        try:
            return self.sessions[name]
        except KeyError:
            known = ", ".join(sorted(self.sessions)) or "none"
            raise ConfigError(f"{self.path}: sessions: no session named {name!r} (configured: {known})") from None


# --------------------------------------------------------------------- reading


class _Section:
    """One mapping of the file, with the key path for error messages."""

    def __init__(self, path: Path, where: str, data: Any, defaults: Mapping[str, Any] | None = None) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: {where or 'top level'}: expected a mapping of keys, got {_kind(data)}")
        self.path = path
        self.where = where
        self.data = dict(data)
        self.defaults = dict(defaults or {})
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.key(name)}: {problem}")

    def get(self, name: str, kind: type[T], default: Any = ..., *, expect: str = "",
            check: Callable[[T], bool] | None = None) -> T:
        self.used.add(name)
        if name in self.data:
            value = self.data[name]
        elif name in self.defaults:
            value = self.defaults[name]
        elif default is ...:
            typo = self._typo_of(name)
            if typo is not None:
                raise self.error(typo, f"unknown key; did you mean {name!r}?")
            raise self.error(name, f"missing; {expect or 'it is required'}")
        else:
            return default  # type: ignore[no-any-return]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(name, f"is {_kind(value)} {value!r}; expected {expect or kind.__name__}")
        if check is not None and not check(value):
            raise self.error(name, f"is {value!r}; expected {expect}")
        return value

    def optional(self, name: str, kind: type[T], *, expect: str = "") -> T | None:
        if self.data.get(name, self.defaults.get(name)) is None:
            self.used.add(name)
            return None
        return self.get(name, kind, expect=expect)

    def section(self, name: str) -> _Section:
        self.used.add(name)
        return _Section(self.path, self.key(name), self.data.get(name), self.defaults.get(name))

    def _typo_of(self, name: str) -> str | None:
        unknown = [k for k in self.data if isinstance(k, str) and k not in self.used]
        from difflib import get_close_matches  # error paths only: an actor that starts never loads it

        close = get_close_matches(name, unknown, n=1, cutoff=0.75)
        return close[0] if close else None

    def finish(self) -> None:
        unknown = sorted(str(k) for k in set(self.data) - self.used)
        if unknown:
            from difflib import get_close_matches

            guess = get_close_matches(unknown[0], sorted(self.used), n=1, cutoff=0.6)
            hint = f"did you mean {guess[0]!r}?" if guess else f"the keys here are: {', '.join(sorted(self.used))}"
            raise self.error(unknown[0], f"unknown key; {hint}")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", int: "a number",
            float: "a number", type(None): "empty"}.get(type(value), type(value).__name__)


def load_topology(path: str | Path) -> Topology:
    """Read and check the whole file; raise ConfigError on the first problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the topology file ({exc.strerror}); check the path") from None
    try:
        raw = read_document(file, text)  # PyYAML is imported only when the document is not cached
    except DocumentError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    top = _Section(file, "", raw)
    top.used.update(("broker", "defaults", "sessions", "pairs", "runtime_dir", "secret_tags", "bus", "hosts",
                     "programs"))
    top.finish()
    broker = _broker(top.section("broker"))
    defaults = top.section("defaults").data
    sessions_section = top.section("sessions")
    if not sessions_section.data:
        raise ConfigError(f"{file}: sessions: no sessions configured; add at least one under 'sessions:'")
    pairs = _pairs(top, file)
    peers = {p.handler: p.driven for p in pairs} | {p.driven: p.handler for p in pairs}
    sessions: dict[str, SessionSettings] = {}
    base_dir = file.parent
    for name in sessions_section.data:
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise sessions_section.error(str(name), "session names use letters, digits, '-' and '_' only")
        sections = _Section(file, f"sessions.{name}", sessions_section.data[name], defaults)
        sessions_section.used.add(name)
        sessions[name] = _session(name, sections, base_dir, peers.get(name))
    sessions_section.finish()
    top.finish()
    _check_pairs(file, pairs, sessions)
    _check_unique(file, sessions)
    runtime_dir = _resolve(base_dir, top.get("runtime_dir", str, "var/run", expect="a folder for local sockets"))
    secret_tags: list[int] = top.get("secret_tags", list, [], expect="a list of tag numbers, e.g. [5001, 5002]")
    if not all(type(tag) is int and tag > 0 for tag in secret_tags):
        raise top.error("secret_tags", f"is {secret_tags!r}; expected a list of tag numbers, e.g. [5001, 5002]")
    bus = _bus(top.section("bus"), base_dir, sessions, pairs)
    _check_open_bus(file, broker, bus)
    topology = Topology(file, broker, sessions, tuple(pairs), runtime_dir, frozenset(secret_tags), bus=bus)
    _check_tls_ports(file, topology)
    return _place(top, topology)


def _bus(s: _Section, base_dir: Path, sessions: Mapping[str, SessionSettings], pairs: list[Pair]) -> BusSecurity | None:
    """``bus: {keys_dir, broker_key, operators, subscribers}``; absent = an open bus."""
    if not s.data:
        s.finish()
        return None
    def is_key_name(v: str) -> bool:
        return v != "" and v.replace("-", "").replace("_", "").isalnum()
    key_name = "a key name: letters, digits, '-' and '_'"
    keys_dir = _resolve(base_dir, s.get("keys_dir", str, expect="the folder of the key pairs made by "
                                        "`fixmesh keys create NAME --dir DIR`", check=lambda v: v != ""))
    broker_key = s.get("broker_key", str, DEFAULT_BROKER_KEY, expect=key_name, check=is_key_name)
    roles: dict[str, str] = {name: f"session {name}" for name in sessions}
    if pairs:
        roles[COORDINATOR_KEY] = "the coordinator"
    if broker_key in roles:
        raise s.error("broker_key", f"{broker_key!r} is already the key of {roles[broker_key]}; give the broker "
                                    "a key of its own")
    roles[broker_key] = "the broker"
    lists: dict[str, tuple[str, ...]] = {}
    for group, example in (("operators", "[ops]"), ("subscribers", "[dashboard]")):
        names = s.get(group, list, [], expect=f"a list of key names, e.g. {example}")
        for i, key in enumerate(names):
            if not isinstance(key, str) or not is_key_name(key):
                raise s.error(f"{group}[{i}]", f"is {key!r}; expected {key_name}")
            if key in roles:
                raise s.error(f"{group}[{i}]", f"{key!r} is already the key of {roles[key]}; each key has one role")
            roles[key] = f"bus.{group}[{i}]"
        lists[group] = tuple(names)
    s.finish()
    return BusSecurity(keys_dir, broker_key, lists["operators"], lists["subscribers"])


# --------------------------------------------------------------------- hosts and placement


def _place(top: _Section, topology: Topology) -> Topology:
    """``hosts:``, ``programs:`` and every ``runs_on``: each program on exactly one host (``docs/deploy.md``).

    Without ``hosts:`` there is one host, ``LOCAL_HOST`` on loopback, and nothing needs ``runs_on``. With
    several, every session, the broker and every program names its host; the coordinator (when there are
    pairs) and the listener (when sessions share a port) must be placed too. The broker binds its endpoints
    on its own host's address (loopback too on a one-host topology), an acceptor does not listen on another
    host's address, and the sessions of a shared port run where the listener does: it hands their
    connections over a Unix socket.
    """
    file = topology.path
    hosts = _hosts(top.section("hosts"))
    names = ", ".join(hosts)
    one_host = len(hosts) == 1
    if topology.bus is None:
        for host in hosts.values():
            if not host.is_loopback:
                raise ConfigError(
                    f"{file}: hosts.{host.name}.address: {host.address} is not a loopback address, and a bus between "
                    "hosts refuses to start without keys; add bus: {keys_dir: FOLDER} with the keys made by "
                    "`fixmesh keys create --config` (docs/bus.md, docs/deploy.md)")

    def runs_on(key: str, given: str | None) -> str:
        if given is None:
            if one_host:
                return next(iter(hosts))
            raise ConfigError(f"{file}: {key}: missing; with several hosts ({names}) every program says where it "
                              "runs: add runs_on: HOST")
        if given not in hosts:
            from difflib import get_close_matches

            guess = get_close_matches(given, list(hosts), n=1, cutoff=0.6)
            hint = f"did you mean {guess[0]!r}?" if guess else "add it under hosts: with its address, or fix the name"
            raise ConfigError(f"{file}: {key}: no host named {given!r} (the hosts are {names}); {hint}")
        return given

    broker_host = hosts[runs_on("broker.runs_on", topology.broker.runs_on)]
    for key in ("router", "xsub", "xpub"):
        _check_endpoint_on_host(file, f"broker.{key}", getattr(topology.broker, key), broker_host, one_host)
    backup = topology.broker.backup
    if backup is not None:
        backup_host = hosts[runs_on("broker.backup.runs_on", backup.runs_on)]
        assert topology.broker.peer is not None
        _check_endpoint_on_host(file, "broker.peer", topology.broker.peer, broker_host, one_host)
        for key in ("router", "xsub", "xpub", "peer"):
            _check_endpoint_on_host(file, f"broker.backup.{key}", getattr(backup, key), backup_host, one_host)
        backup = replace(backup, runs_on=backup_host.name)
    sessions = {name: replace(s, runs_on=runs_on(f"sessions.{name}.runs_on", s.runs_on))
                for name, s in topology.sessions.items()}
    addresses = {h.address: h.name for h in hosts.values()}
    for name, s in sessions.items():
        other = addresses.get(s.host)
        if s.config.role is Role.ACCEPTOR and other is not None and other != s.runs_on:
            here = hosts[str(s.runs_on)]
            raise ConfigError(
                f"{file}: sessions.{name}.host: {s.host} is the address of host {other}, but the session runs_on "
                f"{here.name}; an acceptor listens on its own host: use {here.address} (or 0.0.0.0), or move the "
                f"session with runs_on: {other}")
    programs = _programs(top.section("programs"), topology, sessions, hosts, runs_on)
    topology = replace(topology, broker=replace(topology.broker, runs_on=broker_host.name, backup=backup),
                       sessions=sessions,
                       hosts=hosts, programs=programs)
    shared = topology.shared_ports()
    if shared and "listener" in programs:
        listener = programs["listener"].runs_on[0]
        for (address, port), sharing in shared.items():
            for name in sharing:
                if sessions[name].runs_on != listener:
                    raise ConfigError(
                        f"{file}: sessions.{name}.runs_on: the session shares {address}:{port} with "
                        f"{', '.join(n for n in sharing if n != name)}, whose connections the listener hands over a "
                        f"Unix socket on its own host, {listener}; put the session on {listener}, or give it a "
                        "port of its own")
    return topology


def _hosts(s: _Section) -> dict[str, HostSettings]:
    """``hosts: {NAME: {address: IP}}``; absent: one host, ``LOCAL_HOST`` at 127.0.0.1."""
    if not s.data:
        s.finish()
        return {LOCAL_HOST: HostSettings(LOCAL_HOST, "127.0.0.1", declared=False)}
    hosts: dict[str, HostSettings] = {}
    by_address: dict[str, str] = {}
    for name in s.data:
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise s.error(str(name), "host names use letters, digits, '-' and '_' only")
        h = s.section(name)
        address = h.get("address", str, expect="the host's IP address, e.g. 198.18.0.1")
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise h.error("address", f"is {address!r}; expected an IP address such as 198.18.0.1 (the other hosts "
                                     "reach this one's bus endpoints and FIX ports at it)") from None
        if ip.is_unspecified:
            raise h.error("address", f"is {address}, which names no host; give the address the other hosts "
                                     "reach this one at")
        h.finish()
        if address in by_address:
            raise h.error("address", f"{address} is already the address of hosts.{by_address[address]}; each host "
                                     "has an address of its own")
        by_address[address] = name
        hosts[name] = HostSettings(name, address)
    s.finish()
    return hosts


def _programs(s: _Section, topology: Topology, sessions: Mapping[str, SessionSettings],
              hosts: Mapping[str, HostSettings],
              runs_on: Callable[[str, str | None], str]) -> dict[str, ProgramSettings]:
    """``programs: {NAME: {runs_on, command, priority, key, about}}``, and the coordinator and listener the topology
    needs (placed on the one host, or a ConfigError with several)."""
    file = topology.path
    programs: dict[str, ProgramSettings] = {}
    for name in s.data:
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise s.error(str(name), "program names use letters, digits, '-' and '_' only")
        if name in sessions or name in BROKER_PROGRAMS:
            what = f"session {name}" if name in sessions else "the broker"
            raise s.error(name, f"is already the name of {what}, and supervisord names each program once; "
                                "rename this program")
        p = s.section(name)
        where = p.key("runs_on")
        command = p.optional("command", str, expect="the fixmesh command and its arguments, e.g. venue-sim --port 9877")
        if command is None and name not in KNOWN_PROGRAMS:
            raise p.error("command", f"missing; {name} is not one of {', '.join(KNOWN_PROGRAMS)}, whose commands "
                                     "fixmesh knows, so give the fixmesh command it runs, e.g. command: venue-sim "
                                     "--port 9877")
        if command is not None and (command.split() or [""])[0] == "fixmesh":
            raise p.error("command", "write the command without the leading 'fixmesh' (the rendered configuration "
                                     "adds it), e.g. command: venue-sim --port 9877")
        if command is not None and not command.strip():
            raise p.error("command", "is empty; give the fixmesh command it runs, e.g. venue-sim --port 9877")
        key = p.optional("key", str, expect="a key name listed under bus.subscribers or bus.operators")
        about = p.optional("about", str, expect="one line on what the program is for")
        if key is not None and name not in KEYED_PROGRAMS:
            raise p.error("key", f"only {' and '.join(KEYED_PROGRAMS)} join the bus with a key named here; remove it")
        placed = p.optional("runs_on", object)
        if isinstance(placed, list) and name not in SINGLE_PROGRAMS:
            if not placed or not all(isinstance(h, str) for h in placed) or len(set(placed)) != len(placed):
                raise p.error("runs_on", f"is {placed!r}; expected a host name, or a list of distinct host names")
            hosts_of = tuple(runs_on(f"{where}[{i}]", h) for i, h in enumerate(placed))
        elif placed is None or isinstance(placed, str):
            hosts_of = (runs_on(where, placed),)
        else:
            expected = (f"the name of a host under hosts: (the {name} runs on one host)" if name in SINGLE_PROGRAMS
                        else "the name of a host under hosts:, or a list of them")
            raise p.error("runs_on", f"is {placed!r}; expected {expected}")
        program = ProgramSettings(
            name=name, runs_on=hosts_of, command=command, key=key, about=about,
            priority=p.optional("priority", int, expect="supervisord's start order, a number (lower starts first)"))
        p.finish()
        programs[name] = program
    s.finish()
    needed = {"coordinator": "the topology has pairs" if topology.pairs else "",
              "listener": "sessions share a port" if topology.shared_ports() else ""}
    for name, why in needed.items():
        if why and name not in programs:
            if len(hosts) > 1:
                raise ConfigError(f"{file}: programs.{name}: missing; {why}, so the {name} runs on one of the hosts "
                                  f"({', '.join(hosts)}): add programs: {{{name}: {{runs_on: HOST}}}}")
            programs[name] = ProgramSettings(name, (next(iter(hosts)),))
    bus = topology.bus
    for name in KEYED_PROGRAMS:
        reader = programs.get(name)
        if reader is None or reader.command is not None or bus is None:
            continue
        if reader.key is None or reader.key not in (*bus.subscribers, *bus.operators):
            problem = "missing" if reader.key is None else f"{reader.key!r} is not listed under bus.subscribers " \
                                                            "or bus.operators"
            raise ConfigError(f"{file}: programs.{name}.key: {problem}; on a bus with keys the {name} reads events "
                              "with a key that may: add key: NAME and list NAME under bus.subscribers")
    return programs


def endpoint_address(endpoint: str) -> tuple[str, int] | None:
    """The host and port of a ``tcp://HOST:PORT`` endpoint; None for ``ipc://``, ``inproc://`` or no port."""
    if not endpoint.startswith("tcp://"):
        return None
    rest = endpoint[len("tcp://"):].rsplit(";", 1)[-1]  # ``tcp://source;destination``: the destination
    address, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit():
        return None
    return address.strip("[]"), int(port)


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def _check_endpoint_on_host(file: Path, key: str, endpoint: str, host: HostSettings, one_host: bool) -> None:
    """A broker binds its endpoints on its own host's address, where every other host connects to them.

    On a one-host topology loopback (and a local ``ipc://`` socket) is fine too; a topology without ``hosts:``
    names no address to check against.
    """
    if not host.declared:
        return
    if endpoint.startswith(("ipc://", "inproc://")):
        if one_host:
            return
        raise ConfigError(f"{file}: {key}: {endpoint} is a local socket, which the other hosts cannot reach; use "
                          f"tcp://{host.address}:PORT on {host.name}, the broker's host")
    parsed = endpoint_address(endpoint)
    if parsed is None:
        raise ConfigError(f"{file}: {key}: {endpoint} names no address and port; expected tcp://{host.address}:PORT")
    address, port = parsed
    if _same_address(address, host.address):
        return
    if one_host and protocol.is_loopback_endpoint(f"tcp://{address}:{port}"):
        return
    raise ConfigError(f"{file}: {key}: {endpoint} is not on {host.name} ({host.address}), the host the broker "
                      f"runs_on; the broker binds it there and every other host connects to it there: use "
                      f"tcp://{host.address}:{port}")


def _check_open_bus(file: Path, broker: BrokerSettings, bus: BusSecurity | None) -> None:
    """A bus other hosts can reach needs keys: without a ``bus:`` section the topology refuses to start."""
    if bus is not None:
        return
    endpoints = [("router", broker.router), ("xsub", broker.xsub), ("xpub", broker.xpub)]
    if broker.backup is not None:
        endpoints += [("peer", str(broker.peer)), *((f"backup.{key}", getattr(broker.backup, key))
                                                    for key in ("router", "xsub", "xpub", "peer"))]
    for key, endpoint in endpoints:
        if not protocol.is_loopback_endpoint(endpoint):
            raise ConfigError(
                f"{file}: broker.{key}: {endpoint} is not a loopback address, and a bus between hosts refuses "
                "to start without keys; add bus: {keys_dir: FOLDER} with the keys made by `fixmesh keys create` "
                "(docs/bus.md), or use 127.0.0.1 for a demo on one host")


def _broker(s: _Section) -> BrokerSettings:
    endpoint = "a ZeroMQ endpoint such as tcp://127.0.0.1:5570"
    def is_endpoint(v: str) -> bool:
        return v.startswith(("tcp://", "ipc://", "inproc://"))
    result = BrokerSettings(
        router=s.get("router", str, protocol.DEFAULT_ROUTER_ENDPOINT, expect=endpoint, check=is_endpoint),
        xsub=s.get("xsub", str, protocol.DEFAULT_XSUB_ENDPOINT, expect=endpoint, check=is_endpoint),
        xpub=s.get("xpub", str, protocol.DEFAULT_XPUB_ENDPOINT, expect=endpoint, check=is_endpoint),
        runs_on=s.optional("runs_on", str, expect="the name of a host under hosts:"),
        peer=s.optional("peer", str, expect=endpoint),
        backup=_backup_broker(s.section("backup"), endpoint, is_endpoint),
    )
    s.finish()  # first: a misspelt key is named as such, not as a missing backup
    if result.peer is not None and not is_endpoint(result.peer):
        raise s.error("peer", f"is {result.peer!r}; expected {endpoint}")
    if (result.peer is None) != (result.backup is None):
        raise s.error("peer" if result.peer is None else "backup",
                      "missing; a pair of brokers needs broker.peer (where the primary tells its state) and "
                      "broker.backup: {router, xsub, xpub, peer} (docs/bus.md)" if result.peer is None else
                      "missing; broker.peer is only for a pair: add broker.backup: {router, xsub, xpub, peer}, or "
                      "remove peer")
    if result.backup is not None:
        mine = {result.router, result.xsub, result.xpub, result.peer}
        theirs = {result.backup.router, result.backup.xsub, result.backup.xpub, result.backup.peer}
        if len(mine) < 4 or len(theirs) < 4 or mine & theirs:
            raise s.error("backup", "the primary's router, xsub, xpub and peer and the backup's are eight different "
                                    "endpoints; give each one a port of its own")
    return result


def _backup_broker(s: _Section, endpoint: str, is_endpoint: Callable[[str], bool]) -> BackupBrokerSettings | None:
    """``broker.backup: {runs_on, router, xsub, xpub, peer}``; absent = one broker."""
    if not s.data:
        s.finish()
        return None
    result = BackupBrokerSettings(
        router=s.get("router", str, expect=endpoint, check=is_endpoint),
        xsub=s.get("xsub", str, expect=endpoint, check=is_endpoint),
        xpub=s.get("xpub", str, expect=endpoint, check=is_endpoint),
        peer=s.get("peer", str, expect=endpoint, check=is_endpoint),
        runs_on=s.optional("runs_on", str, expect="the name of a host under hosts:"),
    )
    s.finish()
    return result


def _session(name: str, s: _Section, base_dir: Path, peer: str | None) -> SessionSettings:
    role_name = s.get("role", str, expect="one of handler, driven, acceptor, initiator",
                      check=lambda v: v in GATEWAY_ROLES)
    role = GATEWAY_ROLES[role_name]
    credentials = _credentials(s.section("credentials"), base_dir)
    if role is Role.ACCEPTOR:
        # A plain password in a committed topology is readable by everyone who reads the repository.
        if s.data.get("password", s.defaults.get("password")) is not None:
            raise s.error("password", f"an acceptor keeps no plain password in the topology; {_CREDENTIALS_FIX}")
        if s.data.get("username", s.defaults.get("username")) is not None:
            raise s.error("username", "an acceptor checks the user's Username under credentials: "
                                      "{username: NAME, password_hash: ...}; move it there")
    elif credentials is not None:
        raise s.error("credentials", f"only an acceptor (handler) checks credentials; {name} is a {role_name}, "
                                     "which sends username and password in its own Logon")
    begin = s.get("begin_string", str, "FIX.4.4", expect=f"one of {', '.join(BEGIN_STRINGS)}",
                  check=lambda v: v in BEGIN_STRINGS)
    fixt = begin == "FIXT.1.1"
    default_appl_ver_id = s.optional("default_appl_ver_id", str, expect="an ApplVerID value, e.g. '9' for FIX.5.0SP2")
    if fixt and default_appl_ver_id is None:
        raise s.error("default_appl_ver_id", "missing; a FIXT.1.1 session needs it, e.g. '9' for FIX.5.0SP2")
    def positive(v: float) -> bool:
        return v > 0
    validation = s.section("validation")
    options = ValidationOptions(
        check_fields_out_of_order=validation.get("fields_out_of_order", bool, True),
        check_fields_have_values=validation.get("fields_have_values", bool, True),
        check_user_defined_fields=validation.get("user_defined_fields", bool, True),
        allow_unknown_message_fields=validation.get("allow_unknown_msg_fields", bool, False),
    )
    validation.finish()
    data_dictionary = _path(s, "data_dictionary", base_dir)
    config = SessionConfig(
        begin_string=begin,
        sender_comp_id=s.get("sender_comp_id", str, expect="your CompID, e.g. GATEWAY"),
        target_comp_id=s.get("target_comp_id", str, expect="the counterparty's CompID"),
        role=role,
        heartbeat_interval_s=s.get("heartbeat_interval", int, 30, expect="seconds, 1 or more", check=lambda v: v > 0),
        session_qualifier=s.optional("session_qualifier", str),
        qualifier_tag=s.get("session_qualifier_tag", int, DEFAULT_QUALIFIER_TAG, expect="a tag number",
                            check=lambda v: v > 0),
        default_appl_ver_id=default_appl_ver_id,
        reset_on_logon=s.get("reset_on_logon", bool, False),
        reset_on_logout=s.get("reset_on_logout", bool, False),
        reset_on_disconnect=s.get("reset_on_disconnect", bool, False),
        check_latency=s.get("check_latency", bool, True),
        max_latency_s=s.get("max_latency", float, 120.0, expect="seconds > 0", check=positive),
        check_comp_id=s.get("check_comp_id", bool, True),
        logon_timeout_s=s.get("logon_timeout", float, 10.0, expect="seconds > 0", check=positive),
        logout_timeout_s=s.get("logout_timeout", float, 2.0, expect="seconds > 0", check=positive),
        use_data_dictionary=s.get("use_data_dictionary", bool, data_dictionary is not None)
        and data_dictionary is not None,
        validation=options,
        username=s.optional("username", str),
        password=s.optional("password", str),
        send_next_expected_msg_seq_num=s.get("enable_next_expected_msg_seq_num", bool, False),
        resend_request_chunk_size=s.get("resend_request_chunk_size", int, 0,
                                        expect="0 (ask for a whole gap at once) or the most messages per "
                                               "ResendRequest", check=lambda v: v >= 0),
        resend_answer_chunk_size=s.get("resend_answer_chunk_size", int, 1000,
                                       expect="how many stored messages a resend reads and sends at a time, "
                                              "1 or more", check=positive),
        resend_storm_interval_s=s.get("resend_storm_interval", float, 2.0,
                                      expect="seconds >= 0 (0: answer every repeated ResendRequest)",
                                      check=lambda v: v >= 0),
    )
    store = s.section("store")
    store_settings = StoreSpec(
        kind=store.get("type", str, "file", expect="file or memory", check=lambda v: v in ("file", "memory")),
        directory=_resolve(base_dir, store.get("path", str, "var/store", expect="a folder for the session stores")),
        durability=Durability(store.get("durability", str, Durability.BATCH.value,
                                        expect="one of " + ", ".join(d.value for d in Durability),
                                        check=lambda v: v in {d.value for d in Durability})),
        keep_incoming=store.get("keep_incoming", bool, False),
        archive_days=_archive_days(store),
    )
    store.finish()
    sequence = s.section("sequence")
    def non_negative(v: int) -> bool:
        return v >= 0
    policy = SequencePolicy(
        next_sender=sequence.get("next_sender", int, 0, expect="0 (restore) or the next MsgSeqNum", check=non_negative),
        next_target=sequence.get("next_target", int, 0, expect="0 (restore) or the next MsgSeqNum", check=non_negative),
        reset_after_24h=sequence.get("reset_after_24h", bool, False),
        reset_on_new_window=sequence.get("reset_on_new_window", bool, False),
    )
    sequence.finish()
    schedule = _schedule(s.section("schedule"))
    settings = SessionSettings(
        name=name,
        role=role_name,
        config=config,
        host=s.get("host", str, "127.0.0.1"),
        port=s.get("port", int, expect="a TCP port 1-65535", check=lambda v: 0 < v < 65536),
        store=store_settings,
        sequence=policy,
        data_dictionary=data_dictionary,
        transport_dictionary=_path(s, "transport_dictionary", base_dir),
        reconnect_interval_s=s.get("reconnect_interval", float, 5.0, expect="seconds > 0", check=positive),
        reconnect_max_tries=_max_tries(s),
        connect_timeout_s=s.get("connect_timeout", float, 5.0, expect="seconds > 0", check=positive),
        peer=peer,
        schedule=schedule,
        connect_on_start=s.get("connect_on_start", bool, not (role_name == "driven" and peer is not None)),
        enable_message_rejecting=s.get("enable_message_rejecting", bool, False),
        backup=_backup(s.section("backup")),
        auto_switch_to_backup=s.get("auto_switch_to_backup", bool, False),
        cyclic_switch_backup=s.get("cyclic_switch_backup", bool, False),
        keep_connection_state=s.get("keep_connection_state", bool, True),
        message_ttl_s=s.get("message_ttl", float, 0.0, expect="seconds >= 0 (0 = no limit)", check=lambda v: v >= 0),
        logon_waits_for_venue=s.get("logon_waits_for_venue", bool, False),
        credentials=credentials,
        tls=_tls(s, role is Role.ACCEPTOR, base_dir),
        max_pending_connections=_max_pending(s, role is Role.ACCEPTOR),
        admission=_admission(s, role is Role.ACCEPTOR),
        runs_on=s.optional("runs_on", str, expect="the name of a host under hosts:"),
        throttle=_throttle(s.section("throttle"), begin),
    )
    if settings.logon_waits_for_venue and role_name != "handler":
        raise s.error("logon_waits_for_venue", f"only a handler waits for its venue; {name} is a {role_name}")
    if settings.logon_waits_for_venue and peer is None:
        raise s.error("logon_waits_for_venue", "this handler is in no pair, so it has no venue to wait for")
    if settings.config.role is Role.ACCEPTOR and settings.backup is not None:
        raise s.error("backup", "an acceptor has no backup connection; only initiators (driven) connect out")
    if (settings.auto_switch_to_backup or settings.cyclic_switch_backup) and settings.backup is None:
        raise s.error("backup", "missing; auto_switch_to_backup / cyclic_switch_backup need a backup {host, port}")
    if settings.enable_message_rejecting and settings.message_ttl_s <= 0:
        raise s.error("message_ttl", "missing or 0; enable_message_rejecting needs a time-to-live in seconds")
    s.finish()
    return settings


def _throttle(s: _Section, begin_string: str) -> ThrottleSettings | None:
    """``throttle: {inbound: {...}, outbound: {...}}``; absent = no limit (docs/configuration.md, "Throttling")."""
    inbound_section, outbound_section = s.section("inbound"), s.section("outbound")
    s.finish()
    inbound: InboundThrottling | None = None
    if "inbound" in s.data or "inbound" in s.defaults:
        rates = _rates(inbound_section)
        action_name = inbound_section.get("action", str, Action.REJECT.value, expect="reject or delay",
                                          check=lambda v: v in {a.value for a in Action})
        action = Action(action_name)
        if action is Action.REJECT and begin_string in ("FIX.4.0", "FIX.4.1"):
            raise inbound_section.error("action", f"is reject, but {begin_string} has no BusinessMessageReject "
                                                  "(it came with FIX.4.2); use action: delay")
        inbound = InboundThrottling(rates, action, _max_queued(inbound_section, DEFAULT_MAX_DELAYED))
        if action is Action.REJECT and "queue_limit" in inbound_section.data:
            raise inbound_section.error("queue_limit", "only action: delay queues; with reject nothing waits: "
                                                       "remove it, or set action: delay")
        inbound_section.finish()
    else:
        inbound_section.finish()
    outbound: OutboundThrottling | None = None
    if "outbound" in s.data or "outbound" in s.defaults:
        outbound = OutboundThrottling(_rates(outbound_section),
                                      _max_queued(outbound_section, DEFAULT_MAX_QUEUED))
        if "action" in outbound_section.data:
            raise outbound_section.error("action", "outbound messages over the rate always wait in order, never "
                                                   "dropped; remove it (queue_limit bounds the wait)")
        outbound_section.finish()
    else:
        outbound_section.finish()
    if inbound is None and outbound is None:
        return None
    return ThrottleSettings(inbound, outbound)


def _rates(s: _Section) -> Rates:
    """``rate: N, interval: S, by_msg_type: {MSGTYPE: N}`` of one direction of ``throttle``."""
    count = f"a number of messages per interval, 1-{MAX_COUNT}"
    def in_range(v: int) -> bool:
        return 1 <= v <= MAX_COUNT
    rate = s.optional("rate", int, expect=count)
    if rate is not None and not in_range(rate):
        raise s.error("rate", f"is {rate}; expected {count} (for more, shorten the interval)")
    interval_s = s.get("interval", float, 1.0, expect="seconds > 0 (default 1)", check=lambda v: v > 0)
    by_type = s.get("by_msg_type", dict, {}, expect="a mapping of MsgType to messages per interval, e.g. {D: 50}")
    limits: list[tuple[str, Limit]] = []
    for key, value in by_type.items():
        msg_type = str(key)
        where = f"by_msg_type.{msg_type}"
        if msg_type in SESSION_MSG_TYPES:
            raise s.error(where, "is a session-level MsgType, which is never throttled (heartbeats, resends and "
                                 "logouts must get through); remove it")
        if isinstance(value, bool) or not isinstance(value, int) or not in_range(value):
            raise s.error(where, f"is {value!r}; expected {count}")
        limits.append((msg_type, Limit(value, interval_s)))
    if rate is None and not limits:
        raise s.error("rate", "missing; give rate: N (messages per interval, every application message) "
                              "or by_msg_type: {MSGTYPE: N}, or both")
    return Rates(Limit(rate, interval_s) if rate is not None else None, tuple(limits))


def _max_queued(s: _Section, default: int) -> int:
    return s.get("queue_limit", int, default, expect="1 or more messages", check=lambda v: v >= 1)


def _admission(s: _Section, acceptor: bool) -> AdmissionRules | None:
    """``allow_from: [CIDR, ...]`` and ``lockout: {max_failures, window, duration}``: acceptors only."""
    lockout = s.section("lockout")
    if not acceptor:
        for key in ("allow_from", "lockout"):
            if key in s.data:
                raise s.error(key, "only an acceptor (handler) admits connections; remove it from this session")
        s.used.add("allow_from")  # given under defaults: it applies to the acceptors only
        return None
    allow: list[str] = s.get("allow_from", list, [], expect="a list of networks, e.g. [198.18.0.0/15, 127.0.0.1]")
    networks = []
    for entry in allow:
        try:
            networks.append(parse_network(str(entry)))
        except ValueError:
            raise s.error("allow_from", f"{entry!r} is not a network; write an address or a CIDR "
                                        "such as 198.18.0.0/15") from None
    defaults = AdmissionRules()
    rules = AdmissionRules(
        allow=tuple(networks),
        max_failures=lockout.get("max_failures", int, defaults.max_failures, expect="1 or more refused Logons",
                                 check=lambda v: v >= 1),
        window_s=lockout.get("window", float, defaults.window_s, expect="seconds > 0", check=lambda v: v > 0),
        lockout_s=lockout.get("duration", float, defaults.lockout_s, expect="seconds >= 0 (0: never lock out)",
                              check=lambda v: v >= 0),
    )
    lockout.finish()
    return rules


_TLS_FIX = "see docs/security.md, 'FIX over TLS'"


def _tls(s: _Section, acceptor: bool, base_dir: Path) -> TlsSettings | None:
    """``tls: {cert, key, ca, crl, verify_client, server_name, min_version}``; absent = plain TCP.

    Paths are relative to the topology file and must exist; their contents are
    read when the session starts (only its process needs the key).
    """
    present = s.data.get("tls", s.defaults.get("tls")) is not None
    t = s.section("tls")
    if not present:
        t.finish()
        return None
    files = {key: _tls_file(t, key, base_dir) for key in ("cert", "key", "ca", "crl")}
    version = t.get("min_version", object, "1.2")
    min_version = str(version) if isinstance(version, (str, float)) and not isinstance(version, bool) else ""
    if min_version not in MIN_VERSIONS:
        raise t.error("min_version", f"is {version!r}; expected '1.2' or '1.3' (TLS 1.0 and 1.1 are refused: "
                                     "RFC 8996 deprecates them)")
    verify_client = t.get("verify_client", bool, False)
    server_name = t.optional("server_name", str, expect="the name the server's certificate carries")
    t.finish()
    if acceptor:
        for key in ("cert", "key"):
            if files[key] is None:
                raise t.error(key, "missing; an acceptor with tls presents its certificate: give cert: PATH and "
                                   f"key: PATH (PEM files); {_TLS_FIX}")
        if server_name is not None:
            raise t.error("server_name", "only an initiator checks the server's name; remove it from this acceptor")
        if verify_client and files["ca"] is None:
            raise t.error("ca", "missing; verify_client needs ca: PATH, the CA bundle that signs the client "
                                "certificates")
        for key in ("ca", "crl"):
            if files[key] is not None and not verify_client:
                raise t.error(key, f"is used only with verify_client: true (mutual TLS); add it, or remove {key}")
    else:
        if verify_client:
            raise t.error("verify_client", "only an acceptor verifies client certificates; an initiator always "
                                           "verifies the server's (give ca: PATH for a private CA)")
        if (files["cert"] is None) != (files["key"] is None):
            missing = "key" if files["key"] is None else "cert"
            raise t.error(missing, "missing; an initiator's client certificate needs both cert: PATH and key: PATH")
    return TlsSettings(cert=files["cert"], key=files["key"], ca=files["ca"], verify_client=verify_client,
                       server_name=server_name, min_version=min_version, crl=files["crl"])


def _tls_file(t: _Section, key: str, base_dir: Path) -> Path | None:
    value = t.optional(key, str, expect="a file path")
    if value is None:
        return None
    path = _resolve(base_dir, value)
    if not path.is_file():
        what = {"cert": "certificate (chain)", "key": "private key", "ca": "CA bundle",
                "crl": "certificate revocation lists"}[key]
        raise t.error(key, f"file {path} does not exist; give the path of the PEM {what} "
                           "(relative to this topology file)")
    return path


def _max_pending(s: _Section, acceptor: bool) -> int:
    """``max_pending_connections``: an acceptor's limit of connections waiting for their Logon."""
    if not acceptor and "max_pending_connections" in s.data:
        raise s.error("max_pending_connections", "only an acceptor (handler) listens; remove it from this session")
    return s.get("max_pending_connections", int, DEFAULT_MAX_PENDING_CONNECTIONS,
                 expect="1 or more connections waiting for their Logon", check=lambda v: v >= 1)


def _check_tls_ports(file: Path, topology: Topology) -> None:
    """A shared port's listener hands plain connections to the sessions' processes: TLS state cannot follow."""
    for (host, port), names in topology.shared_ports().items():
        for name in names:
            if topology.sessions[name].tls is not None:
                raise ConfigError(
                    f"{file}: sessions.{name}.tls: {host}:{port} is shared by {', '.join(names)}, and the listener "
                    "of a shared port hands over plain TCP connections only; give this session a port of its own "
                    "or remove tls")


def _credentials(s: _Section, base_dir: Path) -> CredentialSource | None:
    """``credentials: {username, password_hash | password_env | password_file}``; absent = no check."""
    if not s.data:
        s.finish()
        return None
    if "password" in s.data:
        raise s.error("password", f"a plain password is never kept in the topology; {_CREDENTIALS_FIX}")
    username = s.get("username", str, expect="the Username(553) the user logs on with", check=lambda v: v != "")
    given = [key for key in PASSWORD_KEYS if key in s.data]
    if len(given) != 1:
        problem = "missing" if not given else f"given together with {', '.join(given[1:])}"
        raise s.error(given[0] if given else "password_hash", f"{problem}; give exactly one of "
                      "password_hash: 'scrypt$...' (printed by `fixmesh credentials hash`), "
                      "password_env: VARIABLE or password_file: PATH")
    key = given[0]
    value = s.get(key, str, expect="text", check=lambda v: v != "")
    s.finish()
    if key == "password_hash":
        try:
            return CredentialSource(username, password_hash=PasswordHash.parse(value))
        except CredentialsError as exc:
            raise s.error(key, f"{exc}") from None
    if key == "password_env":
        return CredentialSource(username, password_env=value)
    return CredentialSource(username, password_file=_resolve(base_dir, value))


def resolve_credentials(topology: Topology, settings: SessionSettings,
                        environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The session's credentials with the secret read and hashed: at start, by the session that checks Logons.

    The plain secret lives only inside this call; what is kept is a hash with a
    fresh random salt. A missing variable or an unreadable file is a ConfigError
    naming the file, the key and the fix.
    """
    source = settings.credentials
    if source is None:
        return None
    if source.password_hash is not None:
        return Credentials(source.username, source.password_hash)
    where = f"{topology.path}: sessions.{settings.name}.credentials"
    if source.password_env is not None:
        variable = source.password_env
        secret = (os.environ if environ is None else environ).get(variable, "")
        if not secret:
            raise ConfigError(
                f"{where}.password_env: the environment variable {variable} is not set or is empty; set it in "
                f"the environment of the session process (supervisord: environment={variable}=\"...\") "
                "or give password_hash instead")
        return Credentials(source.username, PasswordHash.of(secret.encode("utf-8", "surrogateescape")))
    assert source.password_file is not None
    file = source.password_file
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}.password_file: cannot read {file} ({exc.strerror}); check the path and that "
                          "the session's user may read it, or give password_hash instead") from None
    secret_bytes = data.rstrip(b"\r\n")  # the newline an editor or `echo` adds is not part of the password
    if not secret_bytes:
        raise ConfigError(f"{where}.password_file: {file} is empty; write the password in it")
    return Credentials(source.username, PasswordHash.of(secret_bytes))


def _max_tries(s: _Section) -> int | None:
    """``reconnect_max_tries``: a number of tries (1 or more) or ``unlimited`` (None).

    0 is refused rather than read: it meant "for ever" before and "never" to
    some readers; either reading could surprise, so the file must say which.
    """
    fix = (f"expected a number of tries, 1 or more (default {DEFAULT_RECONNECT_MAX_TRIES}), "
           f"or {UNLIMITED!r} to retry for ever")
    value = s.get("reconnect_max_tries", object, DEFAULT_RECONNECT_MAX_TRIES)
    if value == UNLIMITED:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise s.error("reconnect_max_tries", f"is {_kind(value)} {value!r}; {fix}")
    if value == 0:
        raise s.error("reconnect_max_tries", f"is 0, which no longer means unlimited; {fix}")
    if value < 0:
        raise s.error("reconnect_max_tries", f"is {value}; {fix}")
    return value


def _backup(s: _Section) -> tuple[str, int] | None:
    """``backup: {host, port}`` of an initiator; absent = none."""
    if not s.data:
        s.finish()
        return None
    address = (s.get("host", str, "127.0.0.1"),
               s.get("port", int, expect="a TCP port 1-65535", check=lambda v: 0 < v < 65536))
    s.finish()
    return address


def _archive_days(store: _Section) -> int | None:
    """``store: {archive, archive_days}``: None when a reset may delete the ended sequence's messages.

    ``archive: false`` wins over ``archive_days``, so a session may opt out of the defaults' archive."""
    keep = store.get("archive", bool, True, expect="true or false")
    days = store.get("archive_days", int, 0, expect="days to keep an ended sequence's messages, 0 for ever",
                     check=lambda v: v >= 0)
    return days if keep else None


def _schedule(s: _Section) -> Schedule:
    """``schedule: {start_time, end_time, days | start_day+end_day, time_zone}``; absent = non-stop."""
    if not s.data or s.get("non_stop", bool, False):
        s.get("non_stop", bool, True)
        s.finish()
        return Schedule()
    # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020, so the fix to name is the quotes.
    time_text = "a quoted time of day HH:MM or HH:MM:SS, e.g. '17:00' (unquoted, YAML reads 17:00 as 1020)"
    try:
        start_time = parse_time(s.get("start_time", str, expect=time_text))
        end_time = parse_time(s.get("end_time", str, expect=time_text))
        days_raw = s.get("days", list, list(DAYS), expect="a list of days, e.g. [mon, tue, wed, thu, fri]")
        days = frozenset(parse_day(str(d)) for d in days_raw)
        start_day_text = s.optional("start_day", str, expect="a day, e.g. sun")
        end_day_text = s.optional("end_day", str, expect="a day, e.g. fri")
        schedule = Schedule(
            non_stop=False, start_time=start_time, end_time=end_time, days=days,
            start_day=parse_day(start_day_text) if start_day_text else None,
            end_day=parse_day(end_day_text) if end_day_text else None,
            time_zone=s.get("time_zone", str, "UTC", expect="an IANA time zone, e.g. Europe/London"),
        )
    except ScheduleError as exc:
        raise ConfigError(f"{s.path}: {s.where}: {exc}") from None
    s.finish()
    return schedule


def _path(s: _Section, name: str, base_dir: Path) -> Path | None:
    value = s.optional(name, str, expect="a file path")
    if value is None:
        return None
    path = _resolve(base_dir, value)
    if not path.is_file():
        raise s.error(name, f"file {path} does not exist; give the path of a QuickFIX XML data dictionary")
    return path


def _resolve(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _pairs(top: _Section, file: Path) -> list[Pair]:
    top.used.add("pairs")
    raw = top.data.get("pairs") or []
    if not isinstance(raw, list):
        raise ConfigError(f"{file}: pairs: expected a list of {{handler: NAME, driven: NAME}}, got {_kind(raw)}")
    pairs = []
    for i, item in enumerate(raw):
        s = _Section(file, f"pairs[{i}]", item)
        pairs.append(Pair(handler=s.get("handler", str, expect="a session name"),
                          driven=s.get("driven", str, expect="a session name")))
        s.finish()
    return pairs


def _check_pairs(file: Path, pairs: list[Pair], sessions: Mapping[str, SessionSettings]) -> None:
    seen: set[str] = set()
    for i, pair in enumerate(pairs):
        for key, name, role in (("handler", pair.handler, "handler"), ("driven", pair.driven, "driven")):
            if name not in sessions:
                raise ConfigError(f"{file}: pairs[{i}].{key}: no session named {name!r}; "
                                  f"define it under sessions with role: {role}")
            if sessions[name].role != role:
                raise ConfigError(f"{file}: pairs[{i}].{key}: session {name!r} has role "
                                  f"{sessions[name].role}; a pair's {key} needs role: {role}")
            if name in seen:
                raise ConfigError(f"{file}: pairs[{i}].{key}: session {name!r} is already in another pair")
            seen.add(name)


def _check_unique(file: Path, sessions: Mapping[str, SessionSettings]) -> None:
    identities: dict[tuple[str, str, str, str | None], str] = {}
    listeners: dict[tuple[str, int], str] = {}
    for name, s in sessions.items():
        c = s.config
        identity = (c.begin_string, c.sender_comp_id, c.target_comp_id, c.session_qualifier)
        if identity in identities:
            raise ConfigError(
                f"{file}: sessions.{name}: same BeginString, SenderCompID, TargetCompID and session_qualifier "
                f"as sessions.{identities[identity]}; give one of them a session_qualifier")
        identities[identity] = name
        if c.role is Role.ACCEPTOR:
            other = listeners.setdefault((s.host, s.port), name)
            if other != name and (c.session_qualifier is None or sessions[other].config.session_qualifier is None):
                raise ConfigError(
                    f"{file}: sessions.{name}.port: {s.host}:{s.port} is already the port of sessions.{other}; "
                    "acceptor sessions share a port only when each has a session_qualifier")
