"""The store seam: where an index lives, chosen by `--store` / $QA_STORE.

Two stores hold the same index: the index folder (FAISS + bm25s, qa/store.py; the
default) and Milvus (qa/milvus_store.py; a Milvus Lite `.db` file, or a server by
URI). Either one loads as a `StoredIndex`-shaped object, which is all the Retriever
asks for: passages, key rows, `nearest_keys`, `key_vectors`, `key_count`, and a
lexical side with `scores`, `postings`, `idf` and `size`. Rescoring, answering and
citations are the same code on both.

Spellings of a store:

    folder                       the index folder (--index DIR)
    milvus:PATH.db               a Milvus Lite file; --index names the collection
    http://HOST:19530 (https://) a Milvus server (Standalone or Distributed); token from $QA_MILVUS_TOKEN
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .errors import MissingExtraError

SCALE_HINT = "pip install -e '.[scale]'"


@dataclass(frozen=True)
class StoreSpec:
    """A parsed `--store` value: kind "folder" or "milvus", and for Milvus its URI (a `.db` path or a server URL)."""

    kind: str
    uri: str | None = None

    def __str__(self) -> str:
        if self.kind == "folder":
            return "folder"
        return self.uri if self.uri.startswith(("http://", "https://")) else f"milvus:{self.uri}"


def parse_store(value: str | None = None) -> StoreSpec:
    """The store that `value` names (argument → $QA_STORE → "folder").

    Raises:
        ValueError: not one of folder, milvus:PATH.db, http(s)://HOST:PORT.
    """
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


def require(module: str, feature: str):
    """Import an optional dependency of the 'scale' extra, or raise a one-line error naming the extra.

    Raises:
        MissingExtraError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{feature} needs the 'scale' extra ({module} is not installed): {SCALE_HINT}") from None


def collection_name(index_dir: str | os.PathLike) -> str:
    """The Milvus alias an index answers under: "qa_" and the index name (the last part of --index)."""
    name = re.sub(r"\W", "_", Path(index_dir).name or "index", flags=re.ASCII).strip("_") or "index"
    return f"qa_{name}"


def milvus_store(spec: StoreSpec, index_dir: str | os.PathLike):
    """The MilvusStore for `spec` and the index named by `index_dir`."""
    from .milvus_store import MilvusStore

    return MilvusStore(spec.uri, collection_name(index_dir), token=settings.milvus_token())


def open_index(store: str | StoreSpec | None, index_dir: str | os.PathLike, model: str | None = None, verify: bool = True):
    """Load the index named by `index_dir` from `store`.

    Raises:
        IndexNotFoundError, IndexMismatchError, IndexCorruptError: with a one-line message.
        MissingExtraError: Milvus asked for without the 'scale' extra.
    """
    spec = store if isinstance(store, StoreSpec) else parse_store(store)
    if spec.kind == "folder":
        from .store import load_index

        return load_index(Path(index_dir), model=model, verify=verify)
    return milvus_store(spec, index_dir).load(model=model)


def read_store_manifest(store: str | StoreSpec | None, index_dir: str | os.PathLike) -> dict:
    """The manifest of the index named by `index_dir` in `store`, without loading the index."""
    spec = store if isinstance(store, StoreSpec) else parse_store(store)
    if spec.kind == "folder":
        from .store import read_manifest

        return read_manifest(Path(index_dir))
    return milvus_store(spec, index_dir).read_manifest()
