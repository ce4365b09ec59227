"""A topology's YAML from the cache is the document PyYAML gives; a warm start does not load PyYAML.

``actors.gateway.yaml_document`` keeps each topology file's document in the
cache folder so that a session actor does not import PyYAML to read its
settings. These tests use real files and a real cache folder.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from actors.gateway.topology import ConfigError, load_topology
from actors.gateway.yaml_document import DocumentError, load_document, yaml_cache
from actors.shell.plain_cache import CACHE_DIR_ENV, PlainCache
from tests.unit.test_lean_imports import loaded_by
from tests.unit.test_settings import MINIMAL

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "deploy" / "topology.yaml"

#: YAML with what a topology may hold: anchors and aliases, flow and block styles, every scalar type.
RICH = """
defaults: &defaults {heartbeat_interval: 30, reset_on_logon: yes, ratio: 0.25, nothing: ~, big: 123456789012345678901}
sessions:
  client: {<<: *defaults, role: handler, port: 9876, text: "quoted: value", octal: 0o17}
  venue:
    <<: *defaults
    role: driven
    days: [mon, tue, 3]
    map: {1: one, 2.5: two and a half, no: false key}
pairs:
  - {handler: client, driven: venue}
"""


def cache_in(tmp_path: Path) -> PlainCache:
    cache = yaml_cache(tmp_path / "cache")
    assert cache is not None
    return cache


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 == True == 1.0 would hide a change)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(type(ka) is type(kb) and ka == kb and same(va, vb)
                                        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("text", [RICH, DEMO.read_text(encoding="utf-8")], ids=["rich", "demo"])
def test_the_cached_document_is_the_parsed_one(text: str, tmp_path: Path) -> None:
    file = tmp_path / "topology.yaml"
    file.write_text(text, encoding="utf-8")
    cache = cache_in(tmp_path)
    expected = yaml.safe_load(text)
    first = load_document(file, text, cache)
    assert cache.get(file, text.encode("utf-8")) is not None
    second = load_document(file, text, cache)
    assert same(first, expected) and same(second, expected)
    assert second is not first


def test_aliases_stay_shared(tmp_path: Path) -> None:
    text = "a: &x [1, 2]\nb: *x\n"
    file = tmp_path / "t.yaml"
    cache = cache_in(tmp_path)
    load_document(file, text, cache)
    cached = load_document(file, text, cache)
    assert cached["a"] is cached["b"]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("when: 2026-11-30\n", id="timestamp"),
        pytest.param("value: .nan\n", id="nan"),
        pytest.param("", id="empty"),
    ],
)
def test_what_marshal_does_not_keep_exactly_is_not_cached(text: str, tmp_path: Path) -> None:
    file = tmp_path / "t.yaml"
    cache = cache_in(tmp_path)
    first = load_document(file, text, cache)
    assert not cache.entry_path(file).exists()
    assert repr(load_document(file, text, cache)) == repr(first)


def test_invalid_yaml_is_reported_at_every_start_and_never_cached(tmp_path: Path) -> None:
    text = "sessions:\n  a: [1, 2\nb: c\n"
    file = tmp_path / "t.yaml"
    cache = cache_in(tmp_path)
    for _ in range(2):
        with pytest.raises(DocumentError, match=r"^line 3, column 2: not valid YAML \("):
            load_document(file, text, cache)
    assert not cache.entry_path(file).exists()


def test_a_damaged_entry_is_parsed_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "t.yaml"
    cache = cache_in(tmp_path)
    load_document(file, RICH, cache)
    entry = cache.entry_path(file)
    entry.write_bytes(entry.read_bytes()[:-3])
    with caplog.at_level(logging.WARNING, logger="fixmesh.cache"):
        assert same(load_document(file, RICH, cache), yaml.safe_load(RICH))
    assert any("damaged" in r.getMessage() for r in caplog.records)


def test_an_edited_topology_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    file = tmp_path / "topology.yaml"
    file.write_text(MINIMAL)
    assert load_topology(file).session("client").port == 9876
    assert load_topology(file).session("client").port == 9876  # from the cache
    file.write_text(MINIMAL.replace("port: 9876", "port: 1"))
    assert load_topology(file).session("client").port == 1
    file.write_text("sessions: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_topology(file)


def test_a_warm_start_reads_the_topology_without_pyyaml(tmp_path: Path) -> None:
    code = ("from actors.gateway.topology import load_topology\n"
            f"topology = load_topology({str(DEMO)!r})\n"
            "assert topology.session('client').peer == 'venue'")
    env = {**os.environ, CACHE_DIR_ENV: str(tmp_path)}
    assert loaded_by(code, ("yaml",), env) == ["yaml"]  # cold: parsed, and cached
    assert loaded_by(code, ("yaml",), env) == []  # warm
