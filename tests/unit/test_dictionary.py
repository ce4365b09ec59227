"""The QuickFIX XML data-dictionary loader and the re-serialisation order it gives.

The real dictionaries come from the shared QuickFIX conformance data
(``$FIXMESH_CONFORMANCE_DIR`` or ``<repo>/../shared/conformance/quickfix``).
A missing copy fails these tests: a green run must mean they were checked.
"""

from __future__ import annotations

import dataclasses
import os
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.fix.codec import encode, parse
from actors.fix.dictionary import DataDictionary, DictionaryError, parse_dictionary

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR_ENV = "FIXMESH_CONFORMANCE_DIR"
SPEC_FILES = (
    "FIX40.xml", "FIX41.xml", "FIX42.xml", "FIX43.xml", "FIX44.xml",
    "FIX50.xml", "FIX50SP1.xml", "FIX50SP2.xml", "FIXT11.xml",
)


def spec_dir() -> Path:
    """The folder of QuickFIX dictionaries; fails the test when it is not there."""
    configured = os.environ.get(CONFORMANCE_DIR_ENV, "").strip()
    base = Path(configured) if configured else REPO_ROOT.parent / "shared" / "conformance" / "quickfix"
    spec = base / "spec"
    if not spec.is_dir():
        pytest.fail(f"QuickFIX dictionaries not found in {spec}; set {CONFORMANCE_DIR_ENV} to the folder holding spec/")
    return spec


@cache
def _load(name: str) -> DataDictionary:
    path = spec_dir() / name
    if not path.is_file():
        pytest.fail(f"{path} is missing from the QuickFIX conformance data")
    return parse_dictionary(path.read_text(encoding="utf-8"), name)


def load(name: str) -> DataDictionary:
    return _load(name if name.endswith(".xml") else name + ".xml")


def fields_of(text: str) -> list[tuple[int, bytes]]:
    """``"11=A|21=1"`` as (tag, value) pairs."""
    pairs = []
    for item in text.split("|"):
        tag, _, value = item.partition("=")
        pairs.append((int(tag), value.encode("latin-1")))
    return pairs


def text_of(fields: list[tuple[int, bytes]]) -> str:
    return "|".join(f"{tag}={value.decode('latin-1')}" for tag, value in fields)


# ---------------------------------------------------------------- real files


@pytest.mark.parametrize("name", SPEC_FILES)
def test_every_quickfix_dictionary_loads(name: str) -> None:
    dd = load(name)
    assert dd.source == name
    assert dd.messages and dd.fields
    assert dd.msg_types == frozenset(dd.messages)


def test_the_spec_folder_holds_nothing_the_loader_cannot_read() -> None:
    found = sorted(path.name for path in spec_dir().glob("*.xml"))
    assert set(SPEC_FILES) <= set(found)
    for name in found:
        assert load(name).messages


@pytest.mark.parametrize(
    ("name", "fix_type", "begin_string", "version", "is_fixt"),
    [
        ("FIX40", "FIX", "FIX.4.0", "FIX.4.0", False),
        ("FIX42", "FIX", "FIX.4.2", "FIX.4.2", False),
        ("FIX44", "FIX", "FIX.4.4", "FIX.4.4", False),
        ("FIX50", "FIX", "FIX.5.0", "FIX.5.0", False),
        ("FIX50SP2", "FIX", "FIX.5.0", "FIX.5.0SP2", False),
        ("FIXT11", "FIXT", "FIXT.1.1", "FIXT.1.1", True),
    ],
)
def test_version(name: str, fix_type: str, begin_string: str, version: str, is_fixt: bool) -> None:
    dd = load(name)
    assert (dd.fix_type, dd.begin_string, dd.version, dd.is_fixt) == (fix_type, begin_string, version, is_fixt)


def test_fields_know_number_name_type_and_enums() -> None:
    dd = load("FIX42")
    qty = dd.fields[38]
    assert (qty.number, qty.name, qty.type, qty.syntax) == (38, "OrderQty", "QTY", "QTY")
    assert dd.fields_by_name["OrderQty"] is qty
    handl_inst = dd.field(21)
    assert handl_inst is not None
    assert [enum for enum, _ in handl_inst.values] == ["1", "2", "3"]
    assert handl_inst.enums == frozenset({b"1", b"2", b"3"})
    assert dd.fields[18].is_multi_value and not dd.fields[21].is_multi_value
    assert dd.fields[96].is_data and not dd.fields[58].is_data
    assert dd.field(999) is None


def test_old_char_fields_follow_string_syntax() -> None:
    """FIX 4.0/4.1 CHAR fields may hold several characters; TIME is UTCTimestamp."""
    assert load("FIX40").fields[21].syntax == "STRING"
    assert load("FIX42").fields[21].syntax == "CHAR"
    assert load("FIX40").fields[52].syntax == "UTCTIMESTAMP"


def test_header_and_trailer_in_dictionary_order_with_required_flags() -> None:
    dd = load("FIX44")
    assert dd.header.order[:5] == (8, 9, 35, 49, 56)
    assert dd.header.required == (8, 9, 34, 35, 49, 52, 56)
    assert {m.tag: m.required for m in dd.header.members}[115] is False
    hops = dd.header.groups[627]
    assert (hops.delimiter, hops.layout.order) == (628, (628, 629, 630))
    assert dd.trailer.order == (93, 89, 10)
    assert dd.trailer.required == (10,)
    assert {628, 629, 630, 1128} <= dd.header_tags
    assert {93, 89, 10} <= dd.trailer_tags


def test_fix5_application_dictionaries_leave_header_and_trailer_to_fixt() -> None:
    app, transport = load("FIX50SP2"), load("FIXT11")
    assert app.header.members == () and app.trailer.members == ()
    assert transport.header.order[:4] == (8, 9, 35, 1128)
    assert transport.messages["A"].layout.required == (98, 108, 1137)


def test_messages_know_type_name_category_and_required_fields() -> None:
    dd = load("FIX42")
    order = dd.messages["D"]
    assert (order.msg_type, order.name, order.category, order.is_admin) == ("D", "NewOrderSingle", "app", False)
    assert dd.messages["0"].is_admin and dd.messages["A"].category == "admin"
    assert order.layout.order[:3] == (11, 109, 76)
    assert order.layout.required == (11, 21, 40, 54, 55, 60)
    assert {"0", "A", "D", "d"} <= dd.msg_types and dd.is_msg_type("D") and not dd.is_msg_type("*")
    assert dd.message("*") is None


def test_components_are_expanded_with_their_required_flags() -> None:
    """FIX.4.4 NewOrderSingle: Instrument (required) brings Symbol; Parties brings a nested group."""
    layout = load("FIX44").messages["D"].layout
    assert 55 in layout.tags and 453 in layout.groups
    assert layout.required == (11, 40, 54, 60)
    parties = layout.groups[453]
    assert (parties.count_tag, parties.name, parties.delimiter) == (453, "NoPartyIDs", 448)
    assert parties.layout.order == (448, 447, 452, 802)
    sub_ids = parties.layout.groups[802]
    assert (sub_ids.delimiter, sub_ids.layout.order) == (523, (523, 803))
    assert {448, 523, 803} <= layout.all_tags and 523 not in layout.tags


def test_group_members_required_inside_an_entry() -> None:
    orders = load("FIX44").messages["E"].layout.groups[73]
    assert orders.delimiter == 11
    assert orders.layout.required == (11, 54, 67)


def test_the_dictionary_is_immutable() -> None:
    dd = load("FIX42")
    with pytest.raises(dataclasses.FrozenInstanceError):
        dd.source = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        dd.fields[1] = dd.fields[38]  # type: ignore[index]
    with pytest.raises(TypeError):
        dd.messages["D"].layout.groups[386] = dd.messages["D"].layout.groups[386]  # type: ignore[index]


# ---------------------------------------------------------------- errors

_MINIMAL = """<fix type='FIX' major='4' minor='2' servicepack='0'>
 <header><field name='BeginString' required='Y'/></header>
 <trailer><field name='CheckSum' required='Y'/></trailer>
 <messages>{messages}</messages>
 <components>{components}</components>
 <fields>
  <field number='8' name='BeginString' type='STRING'/>
  <field number='10' name='CheckSum' type='STRING'/>
  <field number='11' name='ClOrdID' type='STRING'/>
  <field number='73' name='NoOrders' type='NUMINGROUP'/>
  {fields}
 </fields>
</fix>"""


def minimal(messages: str = "<message name='X' msgtype='X' msgcat='app'><field name='ClOrdID' required='Y'/></message>",
            components: str = "", fields: str = "") -> str:
    return _MINIMAL.format(messages=messages, components=components, fields=fields)


def test_a_minimal_dictionary_loads() -> None:
    dd = parse_dictionary(minimal(), "mini.xml")
    assert dd.messages["X"].layout.required == (11,)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<fix major='4'", "not well-formed XML"),
        ("<notfix/>", "expected <fix>"),
        (minimal().replace("type='FIX'", "type='FAX'"), "must be FIX or FIXT"),
        (minimal().replace(" major='4'", ""), "'major'"),
        (minimal(messages="<message name='X' msgtype='X'><field name='Nope'/></message>"),
         "refers to field 'Nope'"),
        (minimal(messages="<message name='X' msgtype='X'><component name='Gone'/></message>"),
         "refers to component 'Gone'"),
        (minimal(messages="<message name='X' msgtype='X'>"
                          "<group name='NoOrders'><field name='Nope'/></group></message>"),
         "refers to field 'Nope'"),
        (minimal(messages="<message name='X' msgtype='X'><group name='NoOrders'/></message>"), "has no fields"),
        (minimal(messages="<message name='X' msgtype='X'><component name='Loop'/></message>",
                 components="<component name='Loop'><component name='Loop'/></component>"),
         "contains itself"),
        (minimal(fields="<field number='11' name='Again' type='STRING'/>"), "number 11 is defined twice"),
        (minimal(fields="<field number='12' name='ClOrdID' type='STRING'/>"), "'ClOrdID' is defined twice"),
        (minimal(fields="<field number='x' name='Bad' type='STRING'/>"), "is not a number"),
        (minimal(fields="<field number='12' name='Untyped'/>"), "'type'"),
        (minimal(messages=""), "defines no message"),
        (minimal().replace("<fields>", "<fieldz>").replace("</fields>", "</fieldz>"), "<fields> section not found"),
    ],
)
def test_bad_dictionaries_are_refused_with_the_source_named(text: str, problem: str) -> None:
    with pytest.raises(DictionaryError) as raised:
        parse_dictionary(text, "broken.xml")
    assert str(raised.value).startswith("broken.xml: ")
    assert problem in str(raised.value)


# ---------------------------------------------------------------- canonical_body


@pytest.mark.parametrize(
    ("dictionary", "msg_type", "body", "expected"),
    [
        # 15_HeaderAndBodyFieldsOrderedDifferently: the echo comes back in ascending tag order.
        ("FIX42", "D", "40=1|55=MSFT|60=20240102-03:04:05|54=1|21=3|11=id",
         "11=id|21=3|40=1|54=1|55=MSFT|60=20240102-03:04:05"),
        # 21_RepeatingGroupSpecifierWithValueOfZero (fix42): the expected echo order.
        ("FIX42", "d", "320=JCD1091-20021011|322=1034356488676|323=6|55=TBS|22=8|167=OPT|336=ONE_MAIN|"
                       "58=No Products found for this Class Symbol|393=0|146=0",
         "22=8|55=TBS|58=No Products found for this Class Symbol|146=0|167=OPT|320=JCD1091-20021011|"
         "322=1034356488676|323=6|336=ONE_MAIN|393=0"),
        # Entries stay right after their NumInGroup, fields in group order.
        ("FIX44", "D", "60=T|386=2|336=A|625=S1|336=B|11=X",
         "11=X|60=T|386=2|336=A|625=S1|336=B"),
        # An entry not starting with its delimiter closes the group; nothing is lost.
        ("FIX44", "D", "386=1|625=S1|336=A|11=X", "11=X|336=A|386=1|625=S1"),
        # A nested group: Parties (453) entries each with PartySubIDs (802).
        ("FIX44", "D",
         "55=IBM|453=2|448=P1|452=3|447=D|802=2|523=S1|803=1|523=S2|803=2|448=P2|447=C|11=X",
         "11=X|55=IBM|453=2|448=P1|447=D|452=3|802=2|523=S1|803=1|523=S2|803=2|448=P2|447=C"),
        # Unknown tags go in ascending order with the rest.
        ("FIX44", "D", "9999=u|11=X|5000=v", "11=X|5000=v|9999=u"),
        # An unknown MsgType: plain ascending order.
        ("FIX44", "ZZ", "3=c|1=a|2=b", "1=a|2=b|3=c"),
    ],
)
def test_canonical_body(dictionary: str, msg_type: str, body: str, expected: str) -> None:
    assert text_of(load(dictionary).canonical_body(msg_type, fields_of(body))) == expected


def test_canonical_body_of_a_parsed_message() -> None:
    """The fields come from the codec exactly as the session would hand them over."""
    raw = encode(b"FIX.4.4", b"D", [(34, b"2"), (49, b"TW"), (52, b"20240102-03:04:05"), (56, b"ISLD")],
                 fields_of("55=IBM|453=1|448=P|802=1|523=X|803=4|447=D|11=Z"))
    body = parse(raw).body_fields()
    assert text_of(load("FIX44").canonical_body("D", body)) == "11=Z|55=IBM|453=1|448=P|447=D|802=1|523=X|803=4"


_D_TAGS = (11, 21, 38, 40, 54, 55, 60, 386, 336, 625, 453, 448, 447, 452, 802, 523, 803, 9999)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_D_TAGS), st.binary(max_size=3)), max_size=25))
def test_canonical_body_is_a_permutation(body: list[tuple[int, bytes]]) -> None:
    ordered = load("FIX44").canonical_body("D", body)
    assert sorted(ordered) == sorted(body)
