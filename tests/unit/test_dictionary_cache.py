"""Data dictionaries built from cached tables are the parsed ones; a cache is never trusted blindly.

``actors.shell.dictionaries`` keeps each dictionary's plain tables in a cache
folder (``actors.shell.plain_cache``) so that a session actor does not parse
the XML at each start. These tests read real files through a real cache
folder: the dictionary from the cache must equal the parsed one in every
table validation and re-serialisation use, a damaged or stale entry must be
derived again (and say so in the log), and a warm start must not load the
XML reader at all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from actors.fix.dictionary import (
    TABLES_FORMAT,
    DataDictionary,
    DictionaryError,
    GroupDef,
    Layout,
    from_tables,
    parse_dictionary,
)
from actors.fix.dictionary_xml import read_tables
from actors.shell import plain_cache
from actors.shell.dictionaries import dictionary_cache, read_dictionary
from actors.shell.plain_cache import MAGIC, PlainCache
from tests.unit.test_dictionary import SPEC_FILES, spec_dir
from tests.unit.test_lean_imports import loaded_by

# ---------------------------------------------------------------- a dictionary as plain data


def describe_layout(layout: Layout, seen: dict[int, tuple[Any, ...]]) -> tuple[Any, ...]:
    """Everything validation and re-serialisation read from a layout, recursively."""
    return (
        tuple((m.tag, m.name, m.required, None if m.group is None else describe_group(m.group, seen))
              for m in layout.members),
        layout.order,
        layout.tags,
        layout.required,
        tuple((tag, describe_group(group, seen)) for tag, group in layout.groups.items()),
        tuple(layout.position.items()),
        layout.all_tags,
    )


def describe_group(group: GroupDef, seen: dict[int, tuple[Any, ...]]) -> tuple[Any, ...]:
    """Each group object once: a layout reaches its groups both as members and by count tag, so without
    ``seen`` the work doubles at every level of nesting (FIX 5.0 SP2 nests deep enough to take seconds)."""
    key = id(group)
    if key not in seen:
        seen[key] = (group.count_tag, group.name, group.delimiter, describe_layout(group.layout, seen))
    return seen[key]


def describe(dd: DataDictionary) -> tuple[Any, ...]:
    """A dictionary's whole content as comparable plain data (its classes compare by identity)."""
    seen: dict[int, tuple[Any, ...]] = {}
    fields = tuple((tag, f.number, f.name, f.type, f.values, f.syntax, f.enums, f.is_data, f.is_multi_value)
                   for tag, f in dd.fields.items())
    return (
        dd.source, dd.fix_type, dd.major, dd.minor, dd.servicepack, dd.begin_string, dd.version, dd.is_fixt,
        fields,
        tuple((name, f.number) for name, f in dd.fields_by_name.items()),
        describe_layout(dd.header, seen),
        describe_layout(dd.trailer, seen),
        tuple((t, m.msg_type, m.name, m.category, m.is_admin, describe_layout(m.layout, seen))
              for t, m in dd.messages.items()),
        dd.msg_types, dd.header_tags, dd.trailer_tags,
    )


def spec(name: str) -> Path:
    path = spec_dir() / name
    if not path.is_file():
        pytest.fail(f"{path} is missing from the QuickFIX conformance data")
    return path


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("name", SPEC_FILES)
def test_the_cached_dictionary_is_the_parsed_one(name: str, tmp_path: Path) -> None:
    path = spec(name)
    parsed = parse_dictionary(path.read_text(encoding="utf-8"), str(path))
    cache = dictionary_cache(tmp_path)
    assert cache is not None
    first = read_dictionary(path, cache)  # a miss: parsed, then cached
    assert cache.get(path, path.read_bytes()) is not None
    second = read_dictionary(path, cache)  # a hit: built from the cached tables
    assert first is not second
    assert describe(first) == describe(parsed)
    assert describe(second) == describe(parsed)


def test_the_cached_dictionary_validates_and_reorders_as_the_parsed_one(tmp_path: Path) -> None:
    from actors.fix.codec import parse
    from actors.fix.validation import ValidationOptions, validate

    path = spec("FIX44.xml")
    cache = dictionary_cache(tmp_path)
    parsed = read_dictionary(path, cache)
    cached = read_dictionary(path, cache)
    body = [(11, b"ORD1"), (453, b"1"), (448, b"P"), (447, b"D"), (452, b"1"), (21, b"9"), (55, b"X"),
            (54, b"1"), (60, b"20260101-00:00:00"), (40, b"2"), (38, b"x")]
    assert cached.canonical_body("D", body) == parsed.canonical_body("D", body)
    raw = (b"8=FIX.4.4\x019=0\x0135=D\x0149=A\x0156=B\x0134=2\x0152=20260101-00:00:00\x01"
           + b"".join(b"%d=%s\x01" % (tag, value) for tag, value in body) + b"10=000\x01")
    message = parse(raw)
    options = ValidationOptions()
    verdict = validate(message, cached, cached, options)
    assert verdict is not None  # 21=9 is not an enumerated HandlInst, 38=x not a quantity
    assert verdict == validate(message, parsed, parsed, options)


# ---------------------------------------------------------------- a cache is never trusted blindly


def entry_of(tmp_path: Path, path: Path) -> Path:
    cache = dictionary_cache(tmp_path)
    assert cache is not None
    return cache.entry_path(path)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: data[:-10] + bytes(b ^ 0x55 for b in data[-10:]), id="payload-flipped"),
        pytest.param(lambda data: b"not a cache entry at all" * 10, id="garbage"),
    ],
)
def test_a_damaged_entry_is_derived_again_with_a_warning(damage: Any, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    path = spec("FIX42.xml")
    cache = dictionary_cache(tmp_path)
    assert cache is not None
    expected = describe(read_dictionary(path, cache))
    entry = entry_of(tmp_path, path)
    entry.write_bytes(damage(entry.read_bytes()))
    with caplog.at_level(logging.INFO, logger="fixmesh.cache"):
        again = read_dictionary(path, cache)
    assert describe(again) == expected
    damaged = [r for r in caplog.records if r.levelno == logging.WARNING and "damaged" in r.getMessage()]
    assert damaged, [r.getMessage() for r in caplog.records]
    assert cache.get(path, path.read_bytes()) is not None, "the damaged entry was not replaced"


@pytest.mark.parametrize("fields, header", [
    (((38, "OrderQty", "QTY", (), ""),), "bad"),  # a header that is not a layout
    (((40, "OrdType", "CHAR", ("1", "2"), "MARKET"),), ((), (), ())),  # two values, one description
], ids=["header", "descriptions"])
def test_an_entry_that_checks_out_but_does_not_build_is_derived_again(tmp_path: Path, fields: object,
                                                                      header: object,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Tables in the wrong shape under a valid digest (a writer's bug): refused by from_tables, derived again."""
    path = spec("FIX42.xml")
    data = path.read_bytes()
    cache = dictionary_cache(tmp_path)
    assert cache is not None
    heartbeat = ("0", "Heartbeat", "admin", ((), (), ()))
    cache.put(path, data, (TABLES_FORMAT, "FIX", 4, 2, 0, fields, (), header, ((), (), ()), (heartbeat,)))
    with caplog.at_level(logging.WARNING, logger="fixmesh.cache"):
        dd = read_dictionary(path, cache)
    assert describe(dd) == describe(parse_dictionary(data.decode("utf-8"), str(path)))
    assert any("damaged" in r.getMessage() and "malformed" in r.getMessage() for r in caplog.records)


def test_a_stale_entry_is_derived_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = spec("FIX42.xml").read_text(encoding="utf-8")
    path = tmp_path / "edited.xml"
    path.write_text(source, encoding="utf-8")
    cache = dictionary_cache(tmp_path / "cache")
    assert read_dictionary(path, cache).messages["D"].name == "NewOrderSingle"
    path.write_text(source.replace("name='NewOrderSingle'", "name='NewOrder'")
                    .replace('name="NewOrderSingle"', 'name="NewOrder"'), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="fixmesh.cache"):
        edited = read_dictionary(path, cache)
    assert edited.messages["D"].name == "NewOrder"
    assert any("stale" in r.getMessage() for r in caplog.records)
    assert read_dictionary(path, cache).messages["D"].name == "NewOrder"  # and the new tables were kept


def test_a_cache_that_cannot_be_written_costs_a_log_line_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    path = spec("FIX42.xml")
    with caplog.at_level(logging.INFO, logger="fixmesh.cache"):
        dd = read_dictionary(path, dictionary_cache(blocker))
    assert dd.messages["D"].layout.required == (11, 21, 40, 54, 55, 60)
    assert any("cannot keep" in r.getMessage() for r in caplog.records)


def test_an_entry_carries_its_own_digest(tmp_path: Path) -> None:
    path = spec("FIX42.xml")
    read_dictionary(path, dictionary_cache(tmp_path))
    entry = entry_of(tmp_path, path).read_bytes()
    assert entry.startswith(MAGIC)
    assert entry_of(tmp_path, path).parent.stat().st_mode & 0o777 == 0o700


def test_the_oldest_entries_beyond_the_limit_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plain_cache, "MAX_ENTRIES", 2)
    cache = PlainCache(tmp_path, "numbers", 1)
    sources = [tmp_path / f"source{i}" for i in range(3)]
    for i, source in enumerate(sources):
        cache.put(source, b"%d" % i, [i])
        os.utime(cache.entry_path(source), ns=(i * 10**9, i * 10**9))
    cache.put(sources[2], b"2", [2])  # the next write prunes
    assert cache.get(sources[0], b"0") is None
    assert cache.get(sources[1], b"1") == [1]
    assert cache.get(sources[2], b"2") == [2]


# ---------------------------------------------------------------- the tables themselves


@pytest.mark.parametrize(
    "tables",
    [
        pytest.param(None, id="not-a-tuple"),
        pytest.param((TABLES_FORMAT + 1,) + (None,) * 9, id="other-format"),
        pytest.param((TABLES_FORMAT, "FAX", 4, 2, 0, (), (), ((), (), ()), ((), (), ()), ()), id="bad-type"),
        pytest.param((TABLES_FORMAT, "FIX", 4, 2, 0, (), (), ((8,), (), ()), ((), (), ()),
                      (("D", "X", "app", ((), (), ())),)), id="unknown-tag"),
        pytest.param((TABLES_FORMAT, "FIX", 4, 2, 0, ((73, "NoOrders", "NUMINGROUP", ()),), (),
                      ((73,), (), ((73, 0),)), ((), (), ()), (("D", "X", "app", ((), (), ())),)),
                     id="group-not-defined"),
        pytest.param((TABLES_FORMAT, "FIX", 4, 2, 0, (), (), ((), (), ()), ((), (), ()), ()), id="no-message"),
    ],
)
def test_tables_in_the_wrong_shape_are_refused(tables: Any, tmp_path: Path) -> None:
    with pytest.raises(DictionaryError) as raised:
        from_tables(tables, "cached.xml")
    assert str(raised.value).startswith("cached.xml: ")


def test_the_tables_hold_only_what_marshal_keeps() -> None:
    import marshal

    tables = read_tables(spec("FIX44.xml").read_text(encoding="utf-8"), "FIX44.xml")
    assert marshal.loads(marshal.dumps(tables)) == tables


# ---------------------------------------------------------------- a warm start


def test_a_warm_start_loads_neither_the_xml_reader_nor_the_xml_parser(tmp_path: Path) -> None:
    path = spec("FIX44.xml")
    code = ("from actors.shell.dictionaries import load_dictionary\n"
            f"dd = load_dictionary({str(path)!r})\n"
            "assert dd.messages['D'].layout.required == (11, 40, 54, 60)")
    env = {**os.environ, plain_cache.CACHE_DIR_ENV: str(tmp_path)}
    xml = ("actors.fix.dictionary_xml", "pyexpat", "xml.etree.ElementTree")
    assert loaded_by(code, xml, env) == list(xml)  # cold: parsed, and cached
    assert loaded_by(code, xml, env) == []  # warm
