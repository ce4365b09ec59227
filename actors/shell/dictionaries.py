"""Reading data dictionary files (the pure parser lives in actors.fix.dictionary)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from actors.fix.dictionary import DataDictionary, parse_dictionary


class DictionaryFileError(RuntimeError):
    """A data dictionary file is missing or unreadable."""


@lru_cache(maxsize=32)
def load_dictionary(path: str) -> DataDictionary:
    """Load (once per process) a QuickFIX-format XML data dictionary."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise DictionaryFileError(f"data dictionary {file}: cannot read it ({exc.strerror}); check the path") from None
    return parse_dictionary(text, str(file))
