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

Everything the validator needs per message type (allowed tags, required tags,
groups, dictionary order) is computed once here, at load time, because
validation runs on every inbound message.

This module parses text only; reading the file is the caller's job, which
keeps ``actors.fix`` free of I/O.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from types import MappingProxyType
from typing import Any, TypeAlias

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
    #: (enum, description) pairs in dictionary order; empty when not enumerated.
    values: tuple[tuple[str, str], ...]
    syntax: str
    #: The enumerated values as wire bytes, for the per-message check.
    enums: frozenset[bytes] = dataclasses.field(repr=False, compare=False)
    #: DATA / XMLDATA: the value may contain SOH (it is framed by a length field).
    is_data: bool = dataclasses.field(default=False, repr=False, compare=False)
    #: MultipleValueString family: each space-separated value is checked against ``enums``.
    is_multi_value: bool = dataclasses.field(default=False, repr=False, compare=False)


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
    tags: frozenset[int] = dataclasses.field(repr=False)
    required: tuple[int, ...] = dataclasses.field(repr=False)
    groups: Mapping[int, GroupDef] = dataclasses.field(repr=False)
    position: Mapping[int, int] = dataclasses.field(repr=False)
    #: Every tag at this level and inside its groups, recursively.
    all_tags: frozenset[int] = dataclasses.field(repr=False)


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


# ---------------------------------------------------------------- loading


def parse_dictionary(xml_text: str, source: str) -> DataDictionary:
    """Load a QuickFIX XML data dictionary from its text.

    ``source`` names the dictionary in error messages (usually the file
    name). Raises DictionaryError for malformed XML, missing sections or
    attributes, and references to undefined fields or components.
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise DictionaryError(f"{source}: not well-formed XML: {exc}") from None
    return _Loader(root, source).load()


class _Loader:
    """One load: the XML tree, the fields and components found so far."""

    def __init__(self, root: ET.Element, source: str) -> None:
        self.root = root
        self.source = source
        self.fields: dict[int, FieldDef] = {}
        self.by_name: dict[str, FieldDef] = {}
        self.components: dict[str, ET.Element] = {}
        self.groups: dict[int, GroupDef] = {}

    def fail(self, problem: str) -> DictionaryError:
        return DictionaryError(f"{self.source}: {problem}")

    def load(self) -> DataDictionary:
        root = self.root
        if root.tag != "fix":
            raise self.fail(f"the root element is <{root.tag}>, expected <fix>")
        fix_type = root.get("type", "FIX")
        if fix_type not in ("FIX", "FIXT"):
            raise self.fail(f"<fix type={fix_type!r}> must be FIX or FIXT")
        major = self.number_attr(root, "major", "<fix>")
        minor = self.number_attr(root, "minor", "<fix>")
        servicepack = self.number_attr(root, "servicepack", "<fix>", default=0)
        legacy_char = fix_type == "FIX" and (major, minor) < (4, 2)
        self.read_fields(self.section("fields"), legacy_char)
        self.read_components()
        header = self.layout_of(self.optional_section("header"), "<header>")
        trailer = self.layout_of(self.optional_section("trailer"), "<trailer>")
        messages = self.read_messages(self.section("messages"))
        return DataDictionary(
            source=self.source,
            fix_type=fix_type,
            major=major,
            minor=minor,
            servicepack=servicepack,
            fields=MappingProxyType(dict(self.fields)),
            fields_by_name=MappingProxyType(dict(self.by_name)),
            header=header,
            trailer=trailer,
            messages=MappingProxyType(messages),
            msg_types=frozenset(messages),
            header_tags=header.all_tags | T.HEADER_TAGS,
            trailer_tags=trailer.all_tags | T.TRAILER_TAGS,
        )

    # -- sections and attributes

    def section(self, name: str) -> ET.Element:
        found = self.root.find(name)
        if found is None:
            raise self.fail(f"<{name}> section not found")
        return found

    def optional_section(self, name: str) -> ET.Element | None:
        return self.root.find(name)

    def attr(self, element: ET.Element, name: str, where: str) -> str:
        value = element.get(name)
        if value is None:
            raise self.fail(f"{where} has no {name!r} attribute")
        return value

    def number_attr(self, element: ET.Element, name: str, where: str, default: int | None = None) -> int:
        value = element.get(name)
        if value is None:
            if default is not None:
                return default
            raise self.fail(f"{where} has no {name!r} attribute")
        if not value.isdigit():
            raise self.fail(f"{where} {name}={value!r} is not a number")
        return int(value)

    # -- fields

    def read_fields(self, section: ET.Element, legacy_char: bool) -> None:
        for element in section:
            if element.tag != "field":
                continue
            name = self.attr(element, "name", "<field>")
            number = self.number_attr(element, "number", f"<field name={name!r}>")
            xml_type = self.attr(element, "type", f"<field name={name!r}>").upper()
            if name in self.by_name:
                raise self.fail(f"field name {name!r} is defined twice")
            if number in self.fields:
                raise self.fail(f"field number {number} is defined twice ({self.fields[number].name}, {name})")
            values = tuple(self.read_values(element, name))
            definition = FieldDef(
                number=number,
                name=name,
                type=xml_type,
                values=values,
                syntax=_syntax_of(xml_type, legacy_char),
                enums=frozenset(enum.encode("latin-1") for enum, _ in values),
                is_data=xml_type in DATA_TYPES,
                is_multi_value=xml_type in MULTI_VALUE_TYPES,
            )
            self.fields[number] = definition
            self.by_name[name] = definition

    def read_values(self, element: ET.Element, field_name: str) -> Iterator[tuple[str, str]]:
        for value in element:
            if value.tag == "value":
                enum = self.attr(value, "enum", f"<value> of field {field_name!r}")
                yield enum, value.get("description", "")

    def lookup(self, name: str, where: str) -> FieldDef:
        definition = self.by_name.get(name)
        if definition is None:
            raise self.fail(f"{where} refers to field {name!r}, which <fields> does not define")
        return definition

    # -- components, groups and layouts

    def read_components(self) -> None:
        section = self.optional_section("components")
        if section is None:
            return
        for element in section:
            if element.tag != "component":
                continue
            name = self.attr(element, "name", "<component>")
            if name in self.components:
                raise self.fail(f"component {name!r} is defined twice")
            self.components[name] = element

    def layout_of(self, element: ET.Element | None, where: str) -> Layout:
        members: list[Member] = []
        if element is not None:
            self.collect(element, where, True, (), members, set())
        return _make_layout(members)

    def collect(
        self,
        element: ET.Element,
        where: str,
        chain_required: bool,
        stack: tuple[str, ...],
        out: list[Member],
        seen: set[int],
    ) -> None:
        """Append the members of ``element`` to ``out``, expanding components in place.

        A tag reached twice at one level (two components sharing a field)
        keeps its first place.
        """
        for child in element:
            kind = child.tag
            if kind not in ("field", "group", "component"):
                continue
            name = self.attr(child, "name", f"<{kind}> in {where}")
            required = chain_required and child.get("required", "N") in ("Y", "y")
            if kind == "component":
                self.expand_component(name, where, required, stack, out, seen)
                continue
            definition = self.lookup(name, where)
            group = self.group_of(child, definition, where, stack) if kind == "group" else None
            if definition.number in seen:
                continue
            seen.add(definition.number)
            out.append(Member(definition.number, name, required, group))

    def expand_component(
        self,
        name: str,
        where: str,
        required: bool,
        stack: tuple[str, ...],
        out: list[Member],
        seen: set[int],
    ) -> None:
        component = self.components.get(name)
        if component is None:
            raise self.fail(f"{where} refers to component {name!r}, which <components> does not define")
        if name in stack:
            raise self.fail(f"component {name!r} contains itself ({' -> '.join((*stack, name))})")
        self.collect(component, f"component {name!r}", required, (*stack, name), out, seen)

    def group_of(self, element: ET.Element, count: FieldDef, where: str, stack: tuple[str, ...]) -> GroupDef:
        """The group an element defines; built once per element, since components repeat them."""
        cached = self.groups.get(id(element))
        if cached is not None:
            return cached
        members: list[Member] = []
        self.collect(element, f"group {count.name!r} in {where}", True, stack, members, set())
        if not members:
            raise self.fail(f"group {count.name!r} in {where} has no fields")
        group = GroupDef(count.number, count.name, members[0].tag, _make_layout(members))
        self.groups[id(element)] = group
        return group

    # -- messages

    def read_messages(self, section: ET.Element) -> dict[str, MessageDef]:
        messages: dict[str, MessageDef] = {}
        for element in section:
            if element.tag != "message":
                continue
            msg_type = self.attr(element, "msgtype", "<message>")
            name = element.get("name", msg_type)
            if msg_type in messages:
                raise self.fail(f"MsgType {msg_type!r} is defined twice")
            category = element.get("msgcat") or ("admin" if msg_type in T.ADMIN_MSG_TYPES else "app")
            where = f"message {name!r} (35={msg_type})"
            messages[msg_type] = MessageDef(msg_type, name, category, self.layout_of(element, where))
        if not messages:
            raise self.fail("<messages> defines no message")
        return messages


def _syntax_of(xml_type: str, legacy_char: bool) -> str:
    if xml_type == "CHAR" and legacy_char:
        return "STRING"
    if xml_type == "TIME":
        return "UTCTIMESTAMP"
    return xml_type


def _make_layout(members: list[Member]) -> Layout:
    order = tuple(member.tag for member in members)
    groups = {member.tag: member.group for member in members if member.group is not None}
    all_tags = set(order)
    for group in groups.values():
        all_tags |= group.layout.all_tags
    return Layout(
        members=tuple(members),
        order=order,
        tags=frozenset(order),
        required=tuple(sorted(member.tag for member in members if member.required)),
        groups=MappingProxyType(groups),
        position=MappingProxyType({tag: index for index, tag in enumerate(order)}),
        all_tags=frozenset(all_tags),
    )
