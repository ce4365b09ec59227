"""Reading data dictionary files (the pure parser lives in actors.fix.dictionary).

A dictionary's plain tables (``actors.fix.dictionary.Tables``) are kept in
the cache folder (``actors.shell.plain_cache``), keyed by the XML's bytes:
a process that finds them there builds the dictionary from them and never
parses the XML, which spares it the parse's high-water mark for its whole
life (an idle session actor is about 1.5 MB smaller with FIX.4.4) and the
import of the XML parser. The result is the same dictionary either way
(``tests/unit/test_dictionary_cache.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import cast

from actors.fix.dictionary import TABLES_FORMAT, DataDictionary, DictionaryError, Tables, from_tables
from actors.shell.plain_cache import PlainCache, default_cache_dir

#: The cache's subfolder and the name of what it holds, in its log lines.
CACHE_KIND = "dictionary tables"
CACHE_SUBDIR = "dictionaries"


class DictionaryFileError(RuntimeError):
    """A data dictionary file is missing or unreadable."""


@lru_cache(maxsize=32)
def load_dictionary(path: str) -> DataDictionary:
    """Load (once per process) a QuickFIX-format XML data dictionary, through the default cache folder."""
    return read_dictionary(Path(path), dictionary_cache(default_cache_dir()))


def dictionary_cache(cache_dir: Path | None) -> PlainCache | None:
    """The cache of dictionary tables under ``cache_dir`` (None: no cache)."""
    return None if cache_dir is None else PlainCache(cache_dir / CACHE_SUBDIR, CACHE_KIND, TABLES_FORMAT)


def read_dictionary(file: Path, cache: PlainCache | None) -> DataDictionary:
    """The dictionary in ``file``: built from its cached tables, or parsed (and its tables then cached)."""
    source = str(file)
    if cache is not None:
        # Only the key is taken from the file here: its whole text is read on a miss only.
        cached = cache.lookup(file, _read(file, cache.file_key))
        if cached is not None:
            try:
                return from_tables(cast(Tables, cached), source)  # from_tables checks the shape
            except DictionaryError as exc:
                cache.damaged(file, cache.entry_path(file), str(exc))
    data = _read(file, Path.read_bytes)
    # Imported here: a process whose tables are cached never loads the XML reader.
    from actors.fix.dictionary_xml import read_tables

    tables: Tables = read_tables(data.decode("utf-8"), source)
    dictionary = from_tables(tables, source)
    if cache is not None:
        cache.put(file, data, tables)
    return dictionary


def _read(file: Path, read: Callable[[Path], bytes]) -> bytes:
    try:
        return read(file)
    except OSError as exc:
        raise DictionaryFileError(f"data dictionary {file}: cannot read it ({exc.strerror}); check the path") from None
