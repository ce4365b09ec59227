"""Reading a QuickFIX XML data dictionary into its plain tables (``actors.fix.dictionary.Tables``).

This is the only module that parses the XML. It is imported when a
dictionary is parsed, not when one is built from tables kept in a cache:
an actor that finds its dictionary's tables in the cache loads neither this
code nor the XML parser (``actors.shell.dictionaries``).

The semantics are QuickFIX's (see ``actors.fix.dictionary``): components are
expanded in place, a field inside a component is required only when it and
every enclosing component are required, a repeating group's delimiter is its
first field, a tag reached twice at one level keeps its first place.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

from actors.fix import tags as T
from actors.fix.dictionary import (
    DESCRIPTION_SEPARATOR,
    TABLES_FORMAT,
    DictionaryError,
    PlainField,
    PlainGroup,
    PlainLayout,
    PlainMessage,
    Tables,
)

#: One member of a level while it is read: (tag, required, index of its group or -1).
_Member = tuple[int, bool, int]


def read_tables(xml_text: str, source: str) -> Tables:
    """The plain tables of a QuickFIX XML data dictionary.

    ``source`` names the dictionary in error messages (usually the file
    name). Raises DictionaryError for malformed XML, missing sections or
    attributes, and references to undefined fields or components.
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise DictionaryError(f"{source}: not well-formed XML: {exc}") from None
    return _Reader(root, source).read()


class _Reader:
    """One read: the XML tree, the fields, components and groups found so far."""

    def __init__(self, root: ET.Element, source: str) -> None:
        self.root = root
        self.source = source
        self.fields: list[PlainField] = []
        self.numbers: set[int] = set()
        #: Field number by name, and the first name of each number (for the "defined twice" error).
        self.by_name: dict[str, int] = {}
        self.name_of: dict[int, str] = {}
        self.components: dict[str, ET.Element] = {}
        self.groups: list[PlainGroup] = []
        #: Index in ``groups`` by the id of the <group> element that defines it: components repeat them.
        self.group_index: dict[int, int] = {}

    def fail(self, problem: str) -> DictionaryError:
        return DictionaryError(f"{self.source}: {problem}")

    def read(self) -> Tables:
        root = self.root
        if root.tag != "fix":
            raise self.fail(f"the root element is <{root.tag}>, expected <fix>")
        fix_type = root.get("type", "FIX")
        if fix_type not in ("FIX", "FIXT"):
            raise self.fail(f"<fix type={fix_type!r}> must be FIX or FIXT")
        major = self.number_attr(root, "major", "<fix>")
        minor = self.number_attr(root, "minor", "<fix>")
        servicepack = self.number_attr(root, "servicepack", "<fix>", default=0)
        self.read_fields(self.section("fields"))
        self.read_components()
        header = self.layout_of(self.root.find("header"), "<header>")
        trailer = self.layout_of(self.root.find("trailer"), "<trailer>")
        messages = self.read_messages(self.section("messages"))
        return (TABLES_FORMAT, fix_type, major, minor, servicepack, tuple(self.fields), tuple(self.groups),
                header, trailer, messages)

    # -- sections and attributes

    def section(self, name: str) -> ET.Element:
        found = self.root.find(name)
        if found is None:
            raise self.fail(f"<{name}> section not found")
        return found

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

    def read_fields(self, section: ET.Element) -> None:
        for element in section:
            if element.tag != "field":
                continue
            name = self.attr(element, "name", "<field>")
            number = self.number_attr(element, "number", f"<field name={name!r}>")
            xml_type = self.attr(element, "type", f"<field name={name!r}>").upper()
            if name in self.by_name:
                raise self.fail(f"field name {name!r} is defined twice")
            if number in self.numbers:
                raise self.fail(f"field number {number} is defined twice ({self.name_of[number]}, {name})")
            self.numbers.add(number)
            self.by_name[name] = number
            self.name_of[number] = name
            values = tuple(self.read_values(element, name))
            self.fields.append((number, name, xml_type, tuple(enum for enum, _ in values),
                                DESCRIPTION_SEPARATOR.join(description for _, description in values)))

    def read_values(self, element: ET.Element, field_name: str) -> Iterator[tuple[str, str]]:
        for value in element:
            if value.tag == "value":
                enum = self.attr(value, "enum", f"<value> of field {field_name!r}")
                yield enum, value.get("description", "")

    def lookup(self, name: str, where: str) -> int:
        number = self.by_name.get(name)
        if number is None:
            raise self.fail(f"{where} refers to field {name!r}, which <fields> does not define")
        return number

    # -- components, groups and layouts

    def read_components(self) -> None:
        section = self.root.find("components")
        if section is None:
            return
        for element in section:
            if element.tag != "component":
                continue
            name = self.attr(element, "name", "<component>")
            if name in self.components:
                raise self.fail(f"component {name!r} is defined twice")
            self.components[name] = element

    def layout_of(self, element: ET.Element | None, where: str) -> PlainLayout:
        members: list[_Member] = []
        if element is not None:
            self.collect(element, where, True, (), members, set())
        return _plain_layout(members)

    def collect(
        self,
        element: ET.Element,
        where: str,
        chain_required: bool,
        stack: tuple[str, ...],
        out: list[_Member],
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
            number = self.lookup(name, where)
            group = self.group_of(child, number, name, where, stack) if kind == "group" else -1
            if number in seen:
                continue
            seen.add(number)
            out.append((number, required, group))

    def expand_component(
        self,
        name: str,
        where: str,
        required: bool,
        stack: tuple[str, ...],
        out: list[_Member],
        seen: set[int],
    ) -> None:
        component = self.components.get(name)
        if component is None:
            raise self.fail(f"{where} refers to component {name!r}, which <components> does not define")
        if name in stack:
            raise self.fail(f"component {name!r} contains itself ({' -> '.join((*stack, name))})")
        self.collect(component, f"component {name!r}", required, (*stack, name), out, seen)

    def group_of(self, element: ET.Element, count: int, name: str, where: str, stack: tuple[str, ...]) -> int:
        """The index of the group an element defines; read once per element, since components repeat them.

        Its nested groups are read first, so a group only refers to groups
        before it in the table.
        """
        cached = self.group_index.get(id(element))
        if cached is not None:
            return cached
        members: list[_Member] = []
        self.collect(element, f"group {name!r} in {where}", True, stack, members, set())
        if not members:
            raise self.fail(f"group {name!r} in {where} has no fields")
        self.groups.append((count, _plain_layout(members)))
        index = len(self.groups) - 1
        self.group_index[id(element)] = index
        return index

    # -- messages

    def read_messages(self, section: ET.Element) -> tuple[PlainMessage, ...]:
        messages: dict[str, PlainMessage] = {}
        for element in section:
            if element.tag != "message":
                continue
            msg_type = self.attr(element, "msgtype", "<message>")
            name = element.get("name", msg_type)
            if msg_type in messages:
                raise self.fail(f"MsgType {msg_type!r} is defined twice")
            category = element.get("msgcat") or ("admin" if msg_type in T.ADMIN_MSG_TYPES else "app")
            where = f"message {name!r} (35={msg_type})"
            messages[msg_type] = (msg_type, name, category, self.layout_of(element, where))
        if not messages:
            raise self.fail("<messages> defines no message")
        return tuple(messages.values())


def _plain_layout(members: list[_Member]) -> PlainLayout:
    order = tuple(tag for tag, _, _ in members)
    required = tuple(sorted(tag for tag, is_required, _ in members if is_required))
    groups = tuple((tag, group) for tag, _, group in members if group >= 0)
    return order, required, groups
