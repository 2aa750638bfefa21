"""Readers: one module per file format, each turning one file's bytes into a Document.

A reader module defines `SUFFIXES` (the file name endings it reads), `KIND`
(a short name shown in `qa info` and the Documents tab) and
`read(path: str, data: bytes) -> Document`. Every module of this package that
does is found by `readers()`: adding a format is adding one file. Readers
import their parsing library inside `read`, so importing `qa` stays light.

A reader raises `DocumentError` for a malformed file (the build stops, naming
file and line) and `UnreadableDocumentError` for a file that is not a readable
document at all (the build skips it with the reason).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from types import ModuleType

from .base import Document

__all__ = ["Document", "readers", "reader_for", "supported_suffixes"]


@lru_cache(maxsize=1)
def readers() -> dict[str, ModuleType]:
    """Suffix (lower case, with the dot) → reader module, for every reader module in this package."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "SUFFIXES") and callable(getattr(module, "read", None)):
            for suffix in module.SUFFIXES:
                if suffix in found:
                    raise RuntimeError(f"{suffix} is read by both {found[suffix].__name__} and {module.__name__}")
                found[suffix] = module
    return found


def reader_for(suffix: str) -> ModuleType | None:
    """The reader module for a file name ending (any case), or None."""
    return readers().get(suffix.lower())


def supported_suffixes() -> frozenset[str]:
    """Every file name ending some reader reads."""
    return frozenset(readers())
