"""The Milvus store: one index as two Milvus collections behind one alias (an `IndexStore`, qa/stores/base.py).

Each build writes two new collections and then points the index's alias at the
first, so a reader sees the previous build or the new one, never a mix, and a
build killed at any point leaves the previous one answering (the alias is the
commit point, as `manifest.json` is for the folder store):

    <alias>__<build>      key rows: id (= key row), row (passage row), field, sentence, vector (dense, IP)
                          properties: "qa.manifest" = the build's manifest (model, fingerprint, counts)
    <alias>__<build>_p    passages: id (= passage row), pid, kind, source, label, passage (JSON: text,
                          offsets, metadata), terms (our analysed terms, with Milvus' standard analyzer
                          and a BM25 function into `sparse`)

Milvus finds the candidates: dense keys (vector search) and lexical passages
(BM25 full-text search over `terms`). Our analyser writes `terms`, so Milvus'
BM25 sees the tokens bm25s sees; its scores are then recomputed exactly here
from the passages' terms (Milvus Lite keeps BM25 statistics per segment), so the
Retriever's features, and the answers, are those of the folder store.
The passages and their terms are held in memory by the process that asks,
as the folder store does; the vectors stay in Milvus.

Milvus has no build lock: two builds of one index at once each commit whole, the last
one wins. The build the alias pointed at before is kept until the next build, so a
process still answering from it goes on; `signature` (the collection the alias names)
tells it to switch.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from ..errors import DocumentError, IndexCorruptError, IndexMismatchError, IndexNotFoundError, QAError, require
from ..lexical import analyze
from ..types import Manifest, Passage
from . import StoreSpec, is_server_uri
from .base import Build, OnStage, Stored, no_stage

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: FAQ pairs have an entry key (question + answer)
MANIFEST_PROPERTY = "qa.manifest"
MAX_VARCHAR = 65_535  # Milvus' longest VARCHAR, in bytes
INSERT_BATCH = 1_000
READ_BATCH = 4_000
# BM25 candidates fetched from Milvus before our exact rescoring keeps the Retriever's best
# (50 by default): four times as many, so that Lite's per-segment statistics reorder only the tail.
LEXICAL_LIMIT = 200
# The folder store's rule (qa.indexing): exact search up to 20k vectors, HNSW above.
FLAT_MAX_VECTORS = 20_000
HNSW = {"M": 32, "efConstruction": 40}
HNSW_EF_SEARCH = 400
# bm25s' defaults (method "lucene"): Milvus' BM25 then ranks as bm25s does, up to a constant factor.
BM25_K1, BM25_B = 1.5, 0.75
# Key vectors a loaded build keeps after fetching them (about 75 MiB at 384 dimensions): the
# candidates of many questions overlap, and each `get` from Milvus Lite costs ~50 µs a vector.
KEY_VECTOR_CACHE = 50_000
# pymilvus pings an idle connection every 10 s; Milvus Lite's gRPC server allows a ping without calls only
# every 5 minutes, and after a few too many it closes the connection (GOAWAY "too_many_pings"), which
# fails the next Connect to it, even a new connection's, about 40 s into any idle spell. Lite runs on this
# machine: nothing to keep alive.
LITE_GRPC_OPTIONS = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": False}


def _milvus():
    # Milvus Lite serves gRPC on a thread of this process; gRPC's C core would otherwise write its
    # keepalive chatter ("GOAWAY ... too_many_pings") to this process's stderr, between our one-line
    # messages. Read once, when gRPC first loads; a value the user set wins.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    return require("pymilvus", "the Milvus store")


class MilvusStore:
    """One index in a Milvus database: Milvus Lite (a `.db` path) or a server (a URI).

    Args:
        uri: a `.db` file path (Milvus Lite) or http(s)://HOST:PORT.
        alias: the name the index answers under (see qa.stores.collection_name).
        token: for a server: "USER:PASSWORD" or an API key.
    """

    def __init__(self, uri: str, alias: str, token: str | None = None):
        self.uri = uri
        self.alias = alias
        self.token = token
        self._client = None

    @property
    def is_server(self) -> bool:
        """A Milvus server by URI, not a Milvus Lite file."""
        return is_server_uri(self.uri)

    def describe(self) -> str:
        where = StoreSpec("milvus", self.uri)  # as --store names it
        return f"{where} (collection {self.alias})"

    __str__ = describe

    @property
    def client(self):
        """The MilvusClient, connected on first use.

        Raises:
            QAError: Milvus cannot be reached or the Lite file cannot be opened.
        """
        if self._client is None:
            pymilvus = _milvus()
            try:
                # A connection of its own: pymilvus shares one per URI by default, and a shared one left idle
                # by another store (a finished build) can be closed by the server ("too many pings") under it.
                self._client = pymilvus.MilvusClient(uri=self.uri, token=self.token or "", dedicated=True,
                                                     grpc_options={} if self.is_server else LITE_GRPC_OPTIONS)
            except Exception as exc:  # pymilvus raises its own and OS errors alike
                reason = " ".join(str(exc).split())[:300]
                # chained, not hidden: the message is one line for the user, the cause (a gRPC timeout, a
                # refused port) stays in the traceback for whoever debugs a connection that failed
                raise QAError(f"cannot open Milvus at {self.uri}: {reason}") from exc
        return self._client

    def current(self) -> str | None:
        """The key collection the alias points at, or None when the index has never been built."""
        if self.alias not in self.client.list_aliases().get("aliases", []):
            return None
        return self.client.describe_alias(self.alias)["collection_name"]

    def manifest(self) -> Manifest:
        """The manifest of the current build (see `IndexStore.manifest`).

        Raises:
            IndexNotFoundError: no build answers under the alias.
            IndexCorruptError: the collection carries no readable manifest.
        """
        data = self._manifest_data()
        try:
            return Manifest.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorruptError(f"{data.get('collection')} in {self.uri} carries a damaged manifest "
                                    f"({type(exc).__name__}: {exc}); rebuild the index with `qa build`") from None

    def signature(self) -> str | None:
        """The key collection the alias names: a build's commit moves the alias."""
        return self.current()

    def lock(self, wait: float):
        """No lock: Milvus commits a build by moving the alias (see the module's docstring)."""
        return nullcontext()

    def _manifest_data(self) -> dict:
        """The manifest of the current build, as stored.

        Raises:
            IndexNotFoundError: no build answers under the alias.
            IndexCorruptError: the collection carries no readable manifest.
        """
        name = self.current()
        if name is None:
            raise IndexNotFoundError(
                f"no index {self.alias!r} in {self}: build one with `qa build PATH... --store ...`"
            )
        properties = self.client.describe_collection(name).get("properties", {})
        try:
            manifest = json.loads(properties[MANIFEST_PROPERTY])
        except (KeyError, ValueError):
            raise IndexCorruptError(f"{name} in {self.uri} carries no manifest; rebuild the index with `qa build`") from None
        if manifest.get("store_format_version") != FORMAT_VERSION:
            raise IndexMismatchError(
                f"{name}: Milvus index format {manifest.get('store_format_version')!r}, this version of qa reads "
                f"format {FORMAT_VERSION}; rebuild the index with `qa build`"
            )
        return manifest

    def write(self, build: Build, on_stage: OnStage = no_stage) -> Manifest:
        """Write one build into two new collections, then point the alias at them; drop older builds.

        `on_stage` is told "write", "commit" and "cleanup" as each begins. Returns the manifest written.

        Raises:
            DocumentError: a passage too long for a Milvus VARCHAR (64 KiB).
        """
        return Manifest.from_dict(self.write_arrays(
            {**build.fields, "vector_index": "milvus", "vector_index_params": {}},
            build.passages, build.keys, build.vectors, on_stage, build.tokens,
        ))

    def write_arrays(
        self,
        manifest: dict,
        passages: list[Passage],
        keys: np.ndarray,
        vectors: np.ndarray,
        on_stage: OnStage | None = None,
        tokens: list[list[str]] | None = None,
    ) -> dict:
        """`write` of a build given as its parts (the scale benchmark writes one without planning it).

        Args:
            tokens: each passage's analysed terms; None analyses them here.
        """
        stage = on_stage or no_stage
        build_id = time.strftime("%Y%m%dT%H%M%S") + "_" + uuid.uuid4().hex[:8]
        name = f"{self.alias}__{build_id}"
        records = [_passage_record(row, p, None if tokens is None else tokens[row]) for row, p in enumerate(passages)]
        manifest = {**manifest, "store": "milvus", "store_format_version": FORMAT_VERSION, "build_id": build_id,
                    "collection": name, "dense_index": "FLAT" if len(keys) <= FLAT_MAX_VECTORS else "HNSW",
                    # kept after the alias moves, for the processes still answering from it
                    "previous_collection": self.current()}
        self.clean_leftovers()
        stage("write")
        client = self.client
        self._create_keys(name, vectors.shape[1], manifest["dense_index"])
        for start in range(0, len(keys), INSERT_BATCH):
            client.insert(name, [
                {"id": start + i, "row": int(r[0]), "field": int(r[1]), "sentence": int(r[2]), "vector": v}
                for i, (r, v) in enumerate(zip(keys[start : start + INSERT_BATCH], vectors[start : start + INSERT_BATCH]))
            ])
        self._create_passages(name + "_p")
        for start in range(0, len(records), INSERT_BATCH):
            client.insert(name + "_p", records[start : start + INSERT_BATCH])
        client.flush(name)
        client.flush(name + "_p")
        client.alter_collection_properties(name, properties={MANIFEST_PROPERTY: json.dumps(manifest, ensure_ascii=False)})
        stage("commit")
        if self.current() is None:
            client.create_alias(name, self.alias)
        else:
            client.alter_alias(name, self.alias)
        stage("cleanup")
        self.clean_leftovers()
        return manifest

    def clean_leftovers(self) -> None:
        """Drop this index's collections of aborted builds and of builds older than the previous one.

        The build the alias pointed at before the current one is kept: a process that loaded
        it (a web chat started before the rebuild) keeps answering from it until the next build.
        """
        current = self.current()
        keep: set[str | None] = set()
        if current:
            properties = self.client.describe_collection(current).get("properties", {})
            try:
                previous = json.loads(properties[MANIFEST_PROPERTY]).get("previous_collection")
            except (KeyError, ValueError):
                previous = None
            keep = {current, f"{current}_p", previous, f"{previous}_p"}
        for name in self.client.list_collections():
            if name.startswith(f"{self.alias}__") and name not in keep:
                log.info("dropping %s (neither the current nor the previous build of %s)", name, self.alias)
                self.client.drop_collection(name)

    def drop(self) -> None:
        """Remove this index from Milvus: its alias and every collection of its builds (e.g. a temporary index)."""
        if self.current() is not None:
            self.client.drop_alias(self.alias)
        for name in self.client.list_collections():
            if name.startswith(f"{self.alias}__"):
                self.client.drop_collection(name)

    def _create_keys(self, name: str, dimension: int, kind: str) -> None:
        DataType = _milvus().DataType
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("row", DataType.INT64)
        schema.add_field("field", DataType.INT32)
        schema.add_field("sentence", DataType.INT32)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dimension))
        index = self.client.prepare_index_params()
        if kind == "FLAT":
            index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        else:
            index.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params=HNSW)
        self.client.create_collection(name, schema=schema, index_params=index)

    def _create_passages(self, name: str) -> None:
        pymilvus = _milvus()
        DataType = pymilvus.DataType
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("pid", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("kind", DataType.VARCHAR, max_length=16)
        schema.add_field("source", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("label", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("passage", DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("terms", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
                         analyzer_params={"tokenizer": "standard"})
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(pymilvus.Function(name="bm25", function_type=pymilvus.FunctionType.BM25,
                                              input_field_names=["terms"], output_field_names=["sparse"]))
        index = self.client.prepare_index_params()
        index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                        params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
        self.client.create_collection(name, schema=schema, index_params=index)

    def previous(self, model: str) -> Stored | None:
        """The current build with every key vector read, for a rebuild to reuse (see `IndexStore.previous`).

        None when there is no current build, it was made by another model, or it cannot be read whole
        (a rebuild then embeds every text, as after a damaged folder index). Milvus keeps no
        model-input digests: the build computes them from the passages.
        """
        try:
            if self.manifest().model != model:
                return None
            index = self.open(model)
            key_rows = _read_all(self.client, index.collection, ["id", "vector"], index.key_count)
        except QAError:
            return None
        except Exception as exc:  # pymilvus raises its own errors for a collection that is gone or unloaded
            log.warning("cannot read the current build of %s (%s): embedding every text", self.alias, exc)
            return None
        if [r["id"] for r in key_rows] != list(range(index.key_count)):
            return None
        index.all_vectors = np.asarray([r["vector"] for r in key_rows], dtype=np.float32).reshape(len(key_rows), -1)
        return Stored(index, digests=None, tokens=index.lexical.terms)

    def open(self, model: str | None = None, verify: bool = True) -> "MilvusIndex":
        """Load the current build (see `load`); Milvus checks its own data, so `verify` changes nothing."""
        return self.load(model)

    def load(self, model: str | None = None) -> "MilvusIndex":
        """Load the current build: its manifest, passages and key rows; vectors stay in Milvus.

        Args:
            model: the model the caller will embed questions with; None accepts the index's own.

        Raises:
            IndexNotFoundError, IndexMismatchError, IndexCorruptError: with a one-line message.
        """
        manifest = self._manifest_data()
        if model is not None and model != manifest["model"]:
            raise IndexMismatchError(
                f"the index {self.alias!r} in {self.uri} was built with model {manifest['model']!r}, not {model!r}; "
                f"rebuild it with `qa build --model {model}` or drop --model"
            )
        name = manifest["collection"]
        client = self.client
        client.load_collection(name)
        client.load_collection(name + "_p")
        rows = _read_all(client, name + "_p", ["id", "passage", "terms"], manifest["passage_count"])
        passages = [Passage.from_dict(json.loads(r["passage"])) for r in rows]
        terms = [r["terms"].split() for r in rows]
        key_rows = _read_all(client, name, ["id", "row", "field", "sentence"], manifest["key_count"])
        keys = np.array([(r["row"], r["field"], r["sentence"]) for r in key_rows], dtype=np.int32).reshape(-1, 3)
        if (
            len(passages) != manifest["passage_count"]
            or len(keys) != manifest["key_count"]
            or [r["id"] for r in rows] != list(range(len(rows)))
            or [r["id"] for r in key_rows] != list(range(len(key_rows)))
        ):
            raise IndexCorruptError(f"{name} in {self.uri} disagrees with its manifest; rebuild the index with `qa build`")
        search = {"metric_type": "IP", "params": {"ef": HNSW_EF_SEARCH} if manifest["dense_index"] == "HNSW" else {}}
        lexical = MilvusLexical(client, name + "_p", terms)
        return MilvusIndex(manifest=Manifest.from_dict(manifest), passages=passages, keys=keys, lexical=lexical,
                           client=client, collection=name, search_params=search)


def _passage_record(row: int, passage: Passage, terms: list[str] | None = None) -> dict:
    """The passages collection's row for one passage (`terms`: its analysed terms, None to analyse them here).

    Raises:
        DocumentError: a field longer than Milvus' VARCHAR limit.
    """
    from ..keys import lexical_text

    terms = analyze(lexical_text(passage)) if terms is None else terms
    record = {
        "id": row, "pid": passage.id, "kind": passage.kind, "source": passage.path, "label": passage.title,
        "passage": json.dumps(passage.to_dict(), ensure_ascii=False), "terms": " ".join(terms),
    }
    for key, value in record.items():
        if isinstance(value, str) and len(value.encode("utf-8")) > MAX_VARCHAR:
            raise DocumentError(
                f"passage {passage.id!r} is too long for the Milvus store ({key} takes "
                f"{len(value.encode('utf-8')):,} bytes; Milvus holds at most {MAX_VARCHAR:,}); split the document"
            )
    return record


def _read_all(client, name: str, fields: list[str], count: int) -> list[dict]:
    """Rows 0..count-1 of a collection (the chosen fields), in id order.

    Paged by id range, within the server's limit on one query; not `query_iterator`,
    which Milvus Lite answers only with errors in its log.
    """
    rows: list[dict] = []
    for start in range(0, count, READ_BATCH):
        page = client.query(name, filter=f"id >= {start} and id < {start + READ_BATCH}", output_fields=fields,
                            limit=READ_BATCH)
        rows.extend(sorted(page, key=lambda r: r["id"]))
    return rows


@contextmanager
def _answering(collection: str) -> Iterator[None]:
    """Milvus' errors while answering, as one-line QAErrors: a build this process loaded and Milvus dropped since, or any other."""
    try:
        yield
    except QAError:
        raise
    except Exception as exc:  # pymilvus' MilvusException and gRPC errors alike
        reason = " ".join(str(exc).split())[:300]
        if "not exist" in reason or "not found" in reason:
            raise IndexNotFoundError(
                f"the build this process loaded ({collection}) is gone: the index was rebuilt twice since; "
                "restart to answer from the current build"
            ) from None
        raise QAError(f"Milvus failed while answering from {collection}: {reason}") from None


class KeyVectorCache:
    """Key vectors already fetched from one build, by key row: at most `capacity`, the oldest dropped first.

    A build's collections are never changed after its commit (a rebuild writes new ones), so
    a vector cached for a build never goes stale. Safe to share between threads.
    """

    def __init__(self, capacity: int = KEY_VECTOR_CACHE):
        self.capacity = capacity
        self._vectors: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._vectors)

    def take(self, rows: list[int]) -> tuple[dict[int, np.ndarray], list[int]]:
        """The cached vectors among `rows`, and the rows not cached."""
        with self._lock:
            found = {r: v for r in rows if (v := self._vectors.get(r)) is not None}
            self.hits += len(found)
            self.misses += len(rows) - len(found)
        return found, [r for r in rows if r not in found]

    def put(self, vectors: dict[int, np.ndarray]) -> None:
        if not self.capacity:
            return
        with self._lock:
            self._vectors.update(vectors)
            excess = len(self._vectors) - self.capacity
            if excess > 0:
                for row in list(itertools.islice(self._vectors, excess)):
                    del self._vectors[row]


@dataclass
class MilvusIndex:
    """A Milvus build, loaded: passages and key rows in memory, vectors and candidate search in Milvus (an `Index`).

    The vectors of the keys a question's search finds, and of the candidates' keys fetched
    for rescoring, are kept in `cache` (see KEY_VECTOR_CACHE): the next question whose
    candidates share them fetches only the others.
    """

    manifest: Manifest
    passages: list[Passage]
    keys: np.ndarray  # (n_keys, 3) int32: passage row, field, sentence index
    lexical: "MilvusLexical"
    client: object
    collection: str
    search_params: dict = field(default_factory=dict)
    cache: KeyVectorCache = field(default_factory=KeyVectorCache)
    # Every key vector, when a rebuild read them whole to reuse them (MilvusStore.previous).
    all_vectors: np.ndarray | None = None

    @property
    def model(self) -> str:
        return self.manifest.model

    @property
    def key_count(self) -> int:
        return int(len(self.keys))

    @property
    def dimension(self) -> int:
        return self.manifest.dimension

    def nearest_keys(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Rows of the `k` keys nearest each query vector, best first; -1 pads (see `Index`).

        The hits' vectors come back with them (Milvus reads each hit's row anyway) and go to the cache.
        """
        data = [q.astype(np.float32).tolist() for q in np.atleast_2d(queries)]
        with _answering(self.collection):
            found = self.client.search(self.collection, data=data, anns_field="vector", limit=int(k),
                                       search_params=self.search_params, output_fields=["vector"])
        out = np.full((len(data), int(k)), -1, dtype=np.int64)
        for i, hits in enumerate(found):
            ids = [int(h["id"]) for h in hits][: int(k)]
            out[i, : len(ids)] = ids
            self.cache.put({int(h["id"]): np.asarray(h["entity"]["vector"], dtype=np.float32) for h in hits})
        return out

    def key_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of the given key rows, in the order asked (see `Index`): from the cache, the rest in one `get`."""
        if self.all_vectors is not None:
            return self.all_vectors[np.asarray(rows, dtype=np.int64)]
        by_id, wanted = self.cache.take([int(r) for r in np.unique(rows)])
        if wanted:
            with _answering(self.collection):
                got = self.client.get(self.collection, ids=wanted, output_fields=["vector"])
            fetched = {int(r["id"]): np.asarray(r["vector"], dtype=np.float32) for r in got}
            if len(fetched) != len(wanted):
                raise IndexCorruptError(
                    f"{self.collection}: {len(wanted) - len(fetched)} key vectors are missing; rebuild the index")
            self.cache.put(fetched)
            by_id.update(fetched)
        out = np.empty((len(rows), self.dimension), dtype=np.float32)
        for i, r in enumerate(rows):
            out[i] = by_id[int(r)]
        return out


class MilvusLexical:
    """The lexical side of a Milvus index: candidates from Milvus' BM25, scores recomputed as bm25s computes them.

    Args:
        client: a MilvusClient.
        collection: the passages collection.
        terms: each passage's analysed terms, by passage row.
    """

    def __init__(self, client, collection: str, terms: list[list[str]]):
        self.client = client
        self.collection = collection
        self._terms = terms
        self._lengths = np.array([len(t) for t in terms], dtype=np.float64)
        self._avgdl = float(self._lengths.mean()) if len(terms) and self._lengths.sum() else 1.0
        postings: dict[str, list[int]] = {}
        for row, ts in enumerate(terms):
            for t in dict.fromkeys(ts):
                postings.setdefault(t, []).append(row)
        self._postings = {t: np.asarray(rows, dtype=np.int64) for t, rows in postings.items()}
        n = len(terms)
        self._idf = {t: math.log1p((n - len(rows) + 0.5) / (len(rows) + 0.5)) for t, rows in self._postings.items()}

    @property
    def size(self) -> int:
        return len(self._terms)

    @property
    def terms(self) -> list[list[str]]:
        """Each passage's analysed terms, by passage row."""
        return self._terms

    def idf(self) -> dict[str, float]:
        """Inverse document frequency of every indexed term (as LexicalIndex.idf)."""
        return dict(self._idf)

    def postings(self, term: str) -> np.ndarray:
        """Rows of the passages that contain an (analysed) term, sorted; empty when it is not indexed."""
        return self._postings.get(term, np.zeros(0, dtype=np.int64))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for `query`: Milvus' best LEXICAL_LIMIT passages scored exactly, zero elsewhere."""
        out = np.zeros(self.size, dtype=np.float32)
        tokens = [t for t in analyze(query) if t in self._postings]
        if not tokens:
            return out
        with _answering(self.collection):
            found = self.client.search(self.collection, data=[" ".join(tokens)], anns_field="sparse",
                                       limit=min(self.size, LEXICAL_LIMIT), search_params={"metric_type": "BM25"},
                                       output_fields=["id"])
        rows = np.array([int(h["id"]) for h in found[0]], dtype=np.int64)
        if rows.size:
            out[rows] = self.exact(tokens, rows)
        return out

    def exact(self, tokens: list[str], rows: np.ndarray) -> np.ndarray:
        """bm25s' score (method "lucene", k1 1.5, b 0.75) of `rows` for the query `tokens`, float32 as bm25s sums it."""
        total = np.zeros(len(rows), dtype=np.float32)
        norm = BM25_K1 * ((1 - BM25_B) + BM25_B * self._lengths[rows] / self._avgdl)
        counts = [Counter(self._terms[int(r)]) for r in rows]
        for t in tokens:
            tf = np.array([c.get(t, 0) for c in counts], dtype=np.float64)
            total += (self._idf[t] * tf / (norm + tf)).astype(np.float32)
        return total
