"""QuickFIX-format XML data dictionaries as immutable lookup tables.

A data dictionary says which tags exist, their types and enumerated values,
which fields make up the standard header and trailer, and for every MsgType
which fields and repeating groups the body may carry. The counterparties we
test against (QuickFIX and its acceptance scripts) load the same XML files
(``spec/FIX40.xml`` .. ``FIX50SP2.xml``, ``FIXT11.xml``), so the loader reads
that format and keeps its semantics:

* components are expanded in place; a field inside a component is required
  only when it and every enclosing component are required;
* a repeating group is keyed by its NumInGroup field; its delimiter is the
  first field of an entry in dictionary order; groups nest;
* FIX 5.x application dictionaries have an empty header and trailer: those
  come from the FIXT.1.1 transport dictionary.

Everything the validator needs per message type (required tags, groups,
dictionary order) is computed once here, at load time, because validation
runs on every inbound message; the set of allowed tags of a level is made
the first time it is asked for, since a process sees few message types.

The XML is read into plain tables (``Tables``: tuples, ints and strings,
``actors.fix.dictionary_xml``) and the lookup tables are built from those,
so a program can keep the plain tables in a cache and skip the XML parse
(``actors.shell.dictionaries``). This module reads no file, which keeps
``actors.fix`` free of I/O.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from types import MappingProxyType
from typing import Any, Final, TypeAlias

from actors.fix import tags as T


class DictionaryError(ValueError):
    """The text is not a usable QuickFIX data dictionary; the message names the source."""


#: Types whose value may contain SOH because it is framed by a length field.
DATA_TYPES = frozenset({"DATA", "XMLDATA"})
#: Types whose value is a space-separated list (FIX "MultipleValueString" family).
MULTI_VALUE_TYPES = frozenset({"MULTIPLEVALUESTRING", "MULTIPLESTRINGVALUE", "MULTIPLECHARVALUE"})

_by_tag = itemgetter(0)


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One ``<field>`` of the ``<fields>`` section.

    ``type`` is the XML type as written. ``syntax`` is the type whose lexical
    rules values must follow: FIX 4.0/4.1 ``CHAR`` fields may hold more than
    one character (QuickFIX treats them as STRING) and ``TIME`` is the old
    name of UTCTimestamp.
    """

    number: int
    name: str
    type: str
    #: The enumerated values in dictionary order; empty when not enumerated.
    enum_values: tuple[str, ...]
    #: Their descriptions, joined by ``DESCRIPTION_SEPARATOR``: one string instead of one per
    #: value, as only a tool reads them (``values``).
    descriptions: str
    syntax: str
    #: The enumerated values as wire bytes, for the per-message check.
    enums: frozenset[bytes] = dataclasses.field(repr=False, compare=False)
    #: DATA / XMLDATA: the value may contain SOH (it is framed by a length field).
    is_data: bool = dataclasses.field(default=False, repr=False, compare=False)
    #: MultipleValueString family: each space-separated value is checked against ``enums``.
    is_multi_value: bool = dataclasses.field(default=False, repr=False, compare=False)

    @property
    def values(self) -> tuple[tuple[str, str], ...]:
        """(enum, description) pairs in dictionary order; empty when not enumerated."""
        if not self.enum_values:
            return ()
        return tuple(zip(self.enum_values, self.descriptions.split(DESCRIPTION_SEPARATOR), strict=True))


@dataclass(frozen=True, slots=True, eq=False)
class Member:
    """A tag at one level (header, trailer, body or group entry), in dictionary order."""

    tag: int
    name: str
    required: bool
    #: Set when ``tag`` is a NumInGroup field that opens a repeating group.
    group: GroupDef | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Layout:
    """The fields of one level with the lookup tables derived from them.

    ``required`` is in ascending tag order: QuickFIX keeps required tags in a
    sorted set, so the first missing one it reports is the lowest (FIX
    session test case 14b expects 371=55 in FIX.4.2, 371=11 in FIX.4.4).
    """

    members: tuple[Member, ...]
    order: tuple[int, ...] = dataclasses.field(repr=False)
    required: tuple[int, ...] = dataclasses.field(repr=False)
    groups: Mapping[int, GroupDef] = dataclasses.field(repr=False)
    _tags: frozenset[int] | None = dataclasses.field(default=None, init=False, repr=False)

    # The tables below are derived from ``order`` when asked for: kept for every
    # level of FIX.4.4 they were two thirds of its memory, and a process only
    # ever asks for those of the few message types it sees.

    @property
    def tags(self) -> frozenset[int]:
        """The tags at this level; made on first use and kept (validation asks once per message)."""
        tags = self._tags
        if tags is None:
            # Copied from a set: a frozenset built from a tuple keeps the slack of every resize on the way.
            tags = frozenset(set(self.order))
            object.__setattr__(self, "_tags", tags)
        return tags

    @property
    def position(self) -> Mapping[int, int]:
        """Each tag's place in dictionary order (made on each call: only ``canonical_body`` asks)."""
        return MappingProxyType({tag: index for index, tag in enumerate(self.order)})

    @property
    def all_tags(self) -> frozenset[int]:
        """Every tag at this level and inside its groups, recursively (made on each call: only
        loading and compiling a validation plan ask)."""
        found = set(self.order)
        for group in self.groups.values():
            found |= group.layout.all_tags
        return frozenset(found)


@dataclass(frozen=True, slots=True, eq=False)
class GroupDef:
    """A repeating group: its NumInGroup tag, delimiter and entry layout."""

    count_tag: int
    name: str
    delimiter: int
    layout: Layout


@dataclass(frozen=True, slots=True, eq=False)
class MessageDef:
    """One ``<message>``: its MsgType (35), name, category and body layout."""

    msg_type: str
    name: str
    #: "admin" (session level) or "app", from the ``msgcat`` attribute.
    category: str
    layout: Layout

    @property
    def is_admin(self) -> bool:
        return self.category == "admin"


#: A parsed body field: (tag, value, entries). ``entries`` is None for a plain
#: field and the list of group entries (each a list of nodes) for a NumInGroup.
Node: TypeAlias = "tuple[int, bytes, list[list[Node]] | None]"


@dataclass(frozen=True, slots=True, eq=False)
class DataDictionary:
    """An immutable, loaded data dictionary. Build it with ``parse_dictionary``."""

    source: str
    #: "FIX" or "FIXT" (the ``type`` attribute of ``<fix>``).
    fix_type: str
    major: int
    minor: int
    servicepack: int
    fields: Mapping[int, FieldDef] = dataclasses.field(repr=False)
    fields_by_name: Mapping[str, FieldDef] = dataclasses.field(repr=False)
    header: Layout = dataclasses.field(repr=False)
    trailer: Layout = dataclasses.field(repr=False)
    messages: Mapping[str, MessageDef] = dataclasses.field(repr=False)
    msg_types: frozenset[str] = dataclasses.field(repr=False)
    #: Tags treated as header / trailer when splitting a message: the
    #: dictionary's own plus the standard ones of every FIX version, as
    #: QuickFIX does (``Message::isHeaderField``).
    header_tags: frozenset[int] = dataclasses.field(repr=False)
    trailer_tags: frozenset[int] = dataclasses.field(repr=False)
    #: Tables that users of the dictionary derive from it once and keep as
    #: long as it lives (the validator's compiled per-MsgType checks), keyed
    #: by whatever the user chooses. Not part of the dictionary's content:
    #: the dictionary never reads it, and a copy made with
    #: ``dataclasses.replace`` starts with an empty one (``init=False``).
    derived: dict[object, Any] = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def begin_string(self) -> str:
        """QuickFIX's version string: "FIX.4.2", "FIXT.1.1", "FIX.5.0".

        FIX 5.x messages travel with BeginString FIXT.1.1; "FIX.5.0" only
        names the application dictionary.
        """
        return f"{self.fix_type}.{self.major}.{self.minor}"

    @property
    def version(self) -> str:
        """The version with its service pack, as in ApplVerID text: "FIX.5.0SP2"."""
        if self.servicepack:
            return f"{self.begin_string}SP{self.servicepack}"
        return self.begin_string

    @property
    def is_fixt(self) -> bool:
        return self.fix_type == "FIXT"

    def field(self, tag: int) -> FieldDef | None:
        return self.fields.get(tag)

    def message(self, msg_type: str) -> MessageDef | None:
        return self.messages.get(msg_type)

    def is_msg_type(self, msg_type: str) -> bool:
        return msg_type in self.msg_types

    def canonical_body(self, msg_type: str, body: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """The body in the order QuickFIX re-serialises it.

        Top-level fields in ascending tag order; each group's entries right
        after its NumInGroup field; inside an entry the fields in the group's
        dictionary order, delimiter first, recursively (FIX session test
        cases 15 and 21: an echoed message comes back in this order).
        Unknown tags, and every field of an unknown MsgType, go in ascending
        tag order. Every input field appears exactly once in the output.
        """
        message = self.messages.get(msg_type)
        if message is None:
            return sorted(body, key=_by_tag)
        nodes, _ = group_fields(message.layout, body)
        out: list[tuple[int, bytes]] = []
        _emit(sorted(nodes, key=_by_tag), message.layout, out)
        return out


def _emit(nodes: Sequence[Node], layout: Layout, out: list[tuple[int, bytes]]) -> None:
    for tag, value, entries in nodes:
        out.append((tag, value))
        if entries is not None:
            group = layout.groups[tag]
            position = group.layout.position
            for entry in entries:
                ordered = sorted(entry, key=lambda node: position.get(node[0], len(position) + node[0]))
                _emit(ordered, group.layout, out)


def group_fields(layout: Layout, fields: Sequence[tuple[int, bytes]]) -> tuple[list[Node], int | None]:
    """Split one section's fields (wire order) into top-level nodes with their groups.

    Returns the nodes and the tag of the first field that breaks group
    structure (an entry that does not start with the delimiter, or a member
    repeated inside one entry: FIX SessionRejectReason 15), or None.

    A field that is not a member of the open group closes it and is read at
    the enclosing level, which is how FIX delimits groups; the offending field
    of a structure error is handled the same way, so every input field ends
    up in exactly one node.
    """
    nodes: list[Node] = []
    problem: int | None = None
    groups = layout.groups
    i = 0
    n = len(fields)
    while i < n:
        tag, value = fields[i]
        i += 1
        group = groups.get(tag)
        if group is None:
            nodes.append((tag, value, None))
            continue
        entries, i, found = _read_entries(group, fields, i)
        if problem is None:
            problem = found
        nodes.append((tag, value, entries))
    return nodes, problem


def _read_entries(
    group: GroupDef, fields: Sequence[tuple[int, bytes]], i: int
) -> tuple[list[list[Node]], int, int | None]:
    """Read the entries of ``group`` from ``fields[i:]``; return them, the next index, any problem."""
    entries: list[list[Node]] = []
    current: list[Node] | None = None
    seen: set[int] = set()
    problem: int | None = None
    members = group.layout.tags
    nested = group.layout.groups
    delimiter = group.delimiter
    n = len(fields)
    while i < n:
        tag, value = fields[i]
        if tag == delimiter:
            current = []
            seen = set()
            entries.append(current)
        elif tag not in members:
            break
        elif current is None or tag in seen:
            problem = tag
            break
        i += 1
        seen.add(tag)
        sub = nested.get(tag)
        if sub is None:
            current.append((tag, value, None))
            continue
        sub_entries, i, found = _read_entries(sub, fields, i)
        if problem is None:
            problem = found
        current.append((tag, value, sub_entries))
    return entries, i, problem


# ---------------------------------------------------------------- plain tables

#: The version of the ``Tables`` layout below; a cache holding another one is rebuilt.
TABLES_FORMAT: Final = 2
#: Joins a field's value descriptions in the tables and in ``FieldDef`` (XML text holds no NUL).
DESCRIPTION_SEPARATOR: Final = "\0"

#: A level's fields: the tags in dictionary order, the required ones in ascending
#: order, and (NumInGroup tag, index in the groups table) for each repeating group.
PlainLayout: TypeAlias = "tuple[tuple[int, ...], tuple[int, ...], tuple[tuple[int, int], ...]]"
#: A field: number, name, XML type (upper case), enumerated values, their descriptions joined
#: by ``DESCRIPTION_SEPARATOR``.
PlainField: TypeAlias = "tuple[int, str, str, tuple[str, ...], str]"
#: A repeating group: its NumInGroup tag and the layout of one entry; a group
#: refers only to groups before it in the table.
PlainGroup: TypeAlias = "tuple[int, PlainLayout]"
#: A message: MsgType, name, category ("admin" or "app"), body layout.
PlainMessage: TypeAlias = "tuple[str, str, str, PlainLayout]"
#: A whole dictionary in builtin containers, ints and strings only (what ``marshal`` keeps):
#: (TABLES_FORMAT, fix type, major, minor, servicepack, fields, groups, header, trailer, messages).
Tables: TypeAlias = (
    "tuple[int, str, int, int, int, tuple[PlainField, ...], tuple[PlainGroup, ...], "
    "PlainLayout, PlainLayout, tuple[PlainMessage, ...]]"
)


def parse_dictionary(xml_text: str, source: str) -> DataDictionary:
    """Load a QuickFIX XML data dictionary from its text.

    ``source`` names the dictionary in error messages (usually the file
    name). Raises DictionaryError for malformed XML, missing sections or
    attributes, and references to undefined fields or components.
    """
    # Imported here: a dictionary built from cached tables needs neither the reader nor the XML parser.
    from actors.fix.dictionary_xml import read_tables

    return from_tables(read_tables(xml_text, source), source)


def from_tables(tables: Tables, source: str) -> DataDictionary:
    """The dictionary the plain tables describe (from ``actors.fix.dictionary_xml.read_tables`` or a cache).

    Equal tag tuples and equal members are kept once, and names are
    interned: one gateway process holds one or two dictionaries for its
    whole life, and FIX.4.4's layouts repeat the same components in dozens
    of messages. Raises DictionaryError when the tables do not have the
    expected shape (a cache written by another version, or damaged).
    """
    if type(tables) is not tuple or len(tables) != 10 or tables[0] != TABLES_FORMAT:
        raise DictionaryError(f"{source}: the dictionary tables are not in format {TABLES_FORMAT}")
    try:
        return _Builder(source).build(tables)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
        raise DictionaryError(f"{source}: the dictionary tables are malformed ({type(exc).__name__}: {exc})") from None


_NO_GROUPS: Final[Mapping[int, GroupDef]] = MappingProxyType({})
_NO_ENUMS: Final[frozenset[bytes]] = frozenset()


class _Builder:
    """One build: the fields and groups so far, and the one copy of each repeated tuple and member."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.fields: dict[int, FieldDef] = {}
        self.groups: list[GroupDef] = []
        self.tuples: dict[tuple[int, ...], tuple[int, ...]] = {}
        self.members: dict[tuple[int, bool, int], Member] = {}
        self.member_tuples: dict[tuple[Member, ...], tuple[Member, ...]] = {}

    def build(self, tables: Tables) -> DataDictionary:
        _, fix_type, major, minor, servicepack, fields, groups, header_plain, trailer_plain, messages_plain = tables
        if fix_type not in ("FIX", "FIXT"):
            raise ValueError(f"fix type {fix_type!r}")
        legacy_char = fix_type == "FIX" and (major, minor) < (4, 2)
        for number, name, xml_type, values, descriptions in fields:
            self.fields[number] = self.field(number, name, xml_type, values, descriptions, legacy_char)
        for count_tag, plain in groups:
            layout = self.layout(plain)
            self.groups.append(GroupDef(count_tag, self.fields[count_tag].name, layout.order[0], layout))
        header = self.layout(header_plain)
        trailer = self.layout(trailer_plain)
        messages = {
            msg_type: MessageDef(sys.intern(msg_type), name, sys.intern(category), self.layout(plain))
            for msg_type, name, category, plain in messages_plain
        }
        if not messages:
            raise ValueError("no message")
        return DataDictionary(
            source=self.source,
            fix_type=sys.intern(fix_type),
            major=major,
            minor=minor,
            servicepack=servicepack,
            fields=MappingProxyType(self.fields),
            fields_by_name=MappingProxyType({definition.name: definition for definition in self.fields.values()}),
            header=header,
            trailer=trailer,
            messages=MappingProxyType(messages),
            msg_types=frozenset(messages),
            header_tags=frozenset(set(header.all_tags | T.HEADER_TAGS)),
            trailer_tags=frozenset(set(trailer.all_tags | T.TRAILER_TAGS)),
        )

    def field(self, number: int, name: str, xml_type: str, values: tuple[str, ...], descriptions: str,
              legacy_char: bool) -> FieldDef:
        if type(number) is not int or type(name) is not str or type(xml_type) is not str:
            raise TypeError(f"field {number!r}")
        if type(descriptions) is not str or descriptions.count(DESCRIPTION_SEPARATOR) != max(0, len(values) - 1):
            raise ValueError(f"field {number}: {len(values)} values and their descriptions do not match")
        values = tuple(sys.intern(enum) for enum in values)
        return FieldDef(
            number=number,
            name=sys.intern(name),
            type=sys.intern(xml_type),
            enum_values=values,
            descriptions=descriptions,
            syntax=sys.intern(_syntax_of(xml_type, legacy_char)),
            enums=frozenset({enum.encode("latin-1") for enum in values}) if values else _NO_ENUMS,
            is_data=xml_type in DATA_TYPES,
            is_multi_value=xml_type in MULTI_VALUE_TYPES,
        )

    def layout(self, plain: PlainLayout) -> Layout:
        order_plain, required_plain, group_refs = plain
        order = self.ints(order_plain)
        required = self.ints(required_plain)
        group_index = dict(group_refs)
        if not all(0 <= index < len(self.groups) for index in group_index.values()):
            raise IndexError("a group that is not defined before its use")
        groups = {tag: self.groups[index] for tag, index in group_index.items()}
        is_required = set(required)
        members = tuple(self.member(tag, tag in is_required, group_index.get(tag, -1)) for tag in order)
        return Layout(
            members=self.member_tuples.setdefault(members, members),
            order=order,
            required=required,
            groups=MappingProxyType(groups) if groups else _NO_GROUPS,
        )

    def member(self, tag: int, required: bool, group_index: int) -> Member:
        key = (tag, required, group_index)
        found = self.members.get(key)
        if found is None:
            group = self.groups[group_index] if group_index >= 0 else None
            found = self.members[key] = Member(tag, self.fields[tag].name, required, group)
        return found

    def ints(self, values: tuple[int, ...]) -> tuple[int, ...]:
        if not all(type(value) is int for value in values):
            raise TypeError("a tag that is not a number")
        values = tuple(values)
        return self.tuples.setdefault(values, values)


def _syntax_of(xml_type: str, legacy_char: bool) -> str:
    if xml_type == "CHAR" and legacy_char:
        return "STRING"
    if xml_type == "TIME":
        return "UTCTIMESTAMP"
    return xml_type
