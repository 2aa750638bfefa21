"""Where an index lives, chosen by `--store` / $QA_STORE: the one place that reads a store's kind.

Two stores hold the same index: the index folder (FAISS + bm25s, qa/stores/folder.py; the
default) and Milvus (qa/stores/milvus.py; a Milvus Lite `.db` file, or a server by URI).
Both are an `IndexStore` (qa/stores/base.py) and load as an `Index`, which is all the
Retriever asks for; building, reloading and describing an index go through the store,
so nothing outside this package asks which one it holds (docs/stores.md).

Spellings of a store:

    folder                       the index folder (--index DIR)
    milvus:PATH.db               a Milvus Lite file; --index names the collection
    http://HOST:19530 (https://) a Milvus server (Standalone or Distributed); token from $QA_MILVUS_TOKEN
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from .base import Build, Index, IndexStore, Stored

__all__ = ["Build", "Index", "IndexStore", "Stored", "StoreSpec", "collection_name", "open_index", "open_store",
           "parse_store"]


@dataclass(frozen=True)
class StoreSpec:
    """A parsed `--store` value: kind "folder" or "milvus", and for Milvus its URI (a `.db` path or a server URL)."""

    kind: str
    uri: str | None = None

    def __str__(self) -> str:
        if self.kind == "folder":
            return "folder"
        return self.uri if is_server_uri(self.uri) else f"milvus:{self.uri}"


def is_server_uri(uri: str) -> bool:
    """A Milvus server's URI (http(s)://HOST:PORT), not a Milvus Lite file."""
    return uri.startswith(("http://", "https://"))


def parse_store(value: str | StoreSpec | None = None) -> StoreSpec:
    """The store that `value` names (argument → $QA_STORE → "folder").

    Raises:
        ValueError: not one of folder, milvus:PATH.db, http(s)://HOST:PORT.
    """
    if isinstance(value, StoreSpec):
        return value
    raw = settings.store(value)
    if raw == "folder":
        return StoreSpec("folder")
    if raw.startswith("milvus:"):
        path = raw[len("milvus:"):]
        if not path.endswith(".db") or path.endswith("/.db"):
            raise ValueError(f"a Milvus Lite store is milvus:PATH.db (a file ending in .db), got {raw!r}")
        return StoreSpec("milvus", str(Path(path).expanduser().resolve()))
    if re.match(r"https?://[^/\s]+", raw):
        return StoreSpec("milvus", raw)
    raise ValueError(f"store must be folder, milvus:PATH.db or http(s)://HOST:PORT, got {raw!r}")


def collection_name(index_dir: str | os.PathLike) -> str:
    """The Milvus alias an index answers under: "qa_" and the index name (the last part of --index)."""
    name = re.sub(r"\W", "_", Path(index_dir).name or "index", flags=re.ASCII).strip("_") or "index"
    return f"qa_{name}"


def open_store(store: str | StoreSpec | None, index_dir: str | os.PathLike) -> IndexStore:
    """The store holding the index named by `index_dir`: its folder, or for Milvus the collection its last part names.

    Nothing is read or connected until the store is used; Milvus' client loads then.

    Raises:
        ValueError: an unknown store (see `parse_store`).
    """
    spec = parse_store(store)
    if spec.kind == "folder":
        from .folder import FolderStore

        return FolderStore(index_dir)
    from .milvus import MilvusStore

    return MilvusStore(spec.uri, collection_name(index_dir), token=settings.milvus_token())


def milvus_store(spec: str | StoreSpec, index_dir: str | os.PathLike):
    """The MilvusStore for a Milvus `spec` and the index named by `index_dir` (as `open_store`)."""
    return open_store(spec, index_dir)


def open_index(store: str | StoreSpec | None, index_dir: str | os.PathLike, model: str | None = None,
               verify: bool = True) -> Index:
    """Load the index named by `index_dir` from `store` (`open_store(...).open(model, verify)`).

    Raises:
        IndexNotFoundError, IndexMismatchError, IndexCorruptError: with a one-line message.
        MissingExtraError: Milvus asked for without the 'scale' extra.
    """
    return open_store(store, index_dir).open(model=model, verify=verify)
