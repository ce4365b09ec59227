"""What every program of a topology does first: its arguments, its logging, its topology.

The session actor, the coordinator and the listener each start from the
same three things: ``--config`` (the topology YAML), ``--log-level``, and the
topology read once, or one clear error naming the file, the key and the fix
(exit status 2, which supervisord shows as a failed start).

Their options are read by ``Options``, not ``argparse``: building an
``argparse`` parser imports ``shutil`` (and through it ``bz2`` and ``lzma``,
mapping their libraries) and ``gettext``, about 1 MB resident in each of a
host's long-lived actor processes, for a handful of ``--name value`` words read
once. ``Options`` reads what these programs take and answers as ``argparse``
did: ``--option value`` or ``--option=value``; ``-h``/``--help`` prints the
usage and every option's help (exit 0); an unknown option, a missing value or
required option, or a value its type refuses prints the usage and one error
line to stderr (exit 2). Options are spelt in full (no abbreviations).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, NoReturn

from actors.gateway.topology import ConfigError, Topology, load_topology
from actors.shell.process import configure_logging

#: The exit status of a program started with arguments it cannot use (``argparse``'s too).
USAGE_EXIT = 2
_HELP = ("-h", "--help")


@dataclass(frozen=True)
class Option:
    """One ``--name VALUE`` option."""

    name: str
    help: str
    required: bool
    default: Any
    convert: Callable[[str], Any]

    @property
    def dest(self) -> str:
        """Its attribute in the parsed arguments: ``--driven-grace-s`` -> ``driven_grace_s``."""
        return self.name.lstrip("-").replace("-", "_")

    @property
    def metavar(self) -> str:
        return self.dest.upper()

    def usage(self) -> str:
        words = f"{self.name} {self.metavar}"
        return words if self.required else f"[{words}]"


class Options:
    """The ``--name VALUE`` options of one program (see the module's docstring)."""

    def __init__(self, prog: str, description: str = "") -> None:
        self.prog = prog
        self.description = description
        self.options: dict[str, Option] = {}

    def add_argument(self, name: str, *, help: str = "", required: bool = False,  # noqa: A002 (argparse's word)
                     default: Any = None, type: Callable[[str], Any] = str) -> None:  # noqa: A002
        """Add ``--name VALUE``; ``type`` converts its text (a ValueError is the user's error)."""
        if not name.startswith("--") or name in _HELP:
            raise ValueError(f"an option is --<name>, not {name!r}")
        self.options[name] = Option(name, help, required, default, type)

    def usage(self) -> str:
        return " ".join(["usage:", self.prog, "[-h]", *(o.usage() for o in self.options.values())])

    def help(self) -> str:
        rows = [("-h, --help", "show this help message and exit")]
        for o in self.options.values():
            extra = (" (required)" if o.required else "" if o.default is None or "default" in o.help
                     else f" (default {o.default})")
            rows.append((f"{o.name} {o.metavar}", o.help + extra))
        width = max(len(left) for left, _ in rows)
        lines = [self.usage(), ""]
        if self.description:
            lines += [self.description.strip(), ""]
        lines.append("options:")
        lines += [f"  {left.ljust(width)}  {text}".rstrip() for left, text in rows]
        return "\n".join(lines)

    def error(self, message: str) -> NoReturn:
        """The usage and one error line on stderr; exit status 2."""
        print(f"{self.usage()}\n{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(USAGE_EXIT)

    def parse_args(self, argv: Sequence[str] | None = None) -> Any:
        """The options' values as attributes (``--log-level`` -> ``.log_level``); exits on an error or ``--help``."""
        words = list(sys.argv[1:] if argv is None else argv)
        given: dict[str, str] = {}
        n = 0
        while n < len(words):
            word = words[n]
            n += 1
            if word in _HELP:
                print(self.help())
                raise SystemExit(0)
            name, equals, value = word.partition("=")
            option = self.options.get(name) if name.startswith("--") else None
            if option is None:
                what = "option" if word.startswith("-") else "argument"
                self.error(f"unrecognized {what}: {word!r}")
            if not equals:
                if n == len(words) or _is_option(words[n]):
                    self.error(f"argument {name}: expected one value")
                value = words[n]
                n += 1
            given[name] = value  # given twice: the last one counts
        missing = [o.name for o in self.options.values() if o.required and o.name not in given]
        if missing:
            self.error(f"the following arguments are required: {', '.join(missing)}")
        values: dict[str, Any] = {}
        for o in self.options.values():
            values[o.dest] = self._convert(o, given[o.name]) if o.name in given else o.default
        return SimpleNamespace(**values)

    def _convert(self, option: Option, text: str) -> Any:
        try:
            return option.convert(text)
        except (ValueError, TypeError):
            kind = getattr(option.convert, "__name__", "")  # float -> "invalid float value"
            self.error(f"argument {option.name}: invalid {kind + ' ' if kind else ''}value: {text!r}")


def _is_option(word: str) -> bool:
    """Whether ``word`` is an option rather than a value (``-1.5`` and ``-`` are values, as for argparse)."""
    if not word.startswith("-") or word == "-":
        return False
    try:
        float(word)
    except ValueError:
        return True
    return False


def topology_parser(prog: str, doc: str | None) -> Options:
    """Options with ``--config`` and ``--log-level``; ``doc``'s first paragraph is its description."""
    parser = Options(prog, (doc or "").split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the topology YAML file")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    return parser


def start(parser: Options, argv: list[str] | None) -> tuple[Any, Topology] | None:
    """Parse, set up logging and read the topology; None after its one error was printed (exit 2)."""
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    topology = load_topology_or_report(args.config, parser.prog)
    return None if topology is None else (args, topology)


def load_topology_or_report(path: str, prog: str) -> Topology | None:
    """The topology, or None after printing its one clear error (the caller exits 2)."""
    try:
        return load_topology(path)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
