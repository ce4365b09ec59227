"""A topology file's YAML as plain data, kept in the cache folder between starts.

Every program of a gateway reads the same topology file at start, a session
actor only to find its own settings. PyYAML's loader is about 1 MB of code
and tables in each process that imports it, for a file read once; the plain
data it gives (maps, lists, text, numbers, booleans) is what ``marshal``
keeps. So the document is kept in the cache folder (``actors.shell.plain_cache``:
keyed by the file's bytes, checked by its digest, written atomically), and a
process that finds it there does not import PyYAML at all. The document is
the same either way (``tests/unit/test_yaml_document.py``); a file that is
not valid YAML is never cached, so its error is reported at every start, as
before.

A document holding what ``marshal`` does not keep exactly (a YAML timestamp
or set, a float NaN) is not cached: it is parsed at each start.
"""

from __future__ import annotations

import marshal
from pathlib import Path
from typing import Any

from actors.shell.plain_cache import PlainCache, default_cache_dir

#: The cache's subfolder and the name of what it holds, in its log lines.
CACHE_KIND = "YAML document"
CACHE_SUBDIR = "yaml"
#: The version of what is cached (the document as ``yaml.safe_load`` gives it).
DOCUMENT_FORMAT = 1


class DocumentError(ValueError):
    """The text is not valid YAML; the message says where (line and column) and what is wrong."""


def yaml_cache(cache_dir: Path | None) -> PlainCache | None:
    """The cache of YAML documents under ``cache_dir`` (None: no cache)."""
    return None if cache_dir is None else PlainCache(cache_dir / CACHE_SUBDIR, CACHE_KIND, DOCUMENT_FORMAT)


def read_document(file: Path, text: str) -> Any:
    """The document ``yaml.safe_load`` gives for ``text`` (the content of ``file``), through the default cache folder.

    Raises DocumentError for text that is not valid YAML.
    """
    return load_document(file, text, yaml_cache(default_cache_dir()))


def load_document(file: Path, text: str, cache: PlainCache | None) -> Any:
    """``read_document`` with the cache given (None: none)."""
    data = text.encode("utf-8")
    if cache is not None:
        cached = cache.get(file, data)
        if cached is not None:
            return cached
    document = _parse(text)
    if cache is not None and document is not None and _keeps_exactly(document):
        cache.put(file, data, document)
    return document


def _parse(text: str) -> Any:
    # Imported here: a process that finds the document in the cache never loads PyYAML.
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise DocumentError(f"{where}not valid YAML ({getattr(exc, 'problem', exc)})") from None


def _keeps_exactly(document: Any) -> bool:
    """Whether ``marshal`` gives back an equal document with the same types.

    Only maps, lists, text, whole numbers, floats, booleans and None pass;
    a float that is not equal to itself (NaN) fails the comparison.
    """
    try:
        return _same(document, marshal.loads(marshal.dumps(document)))
    except (ValueError, RecursionError):  # a type marshal does not write, or a document that contains itself
        return False


_PLAIN = (str, int, float, bool, type(None))


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            type(ka) is type(kb) and ka == kb and _same(a[ka], b[kb]) for ka, kb in zip(a, b, strict=True))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) in _PLAIN and bool(a == b)
