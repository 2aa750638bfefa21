"""The store seam (qa/stores/): every store is an IndexStore, builds and reloads alike, and nothing else asks which.

Vectors come from the hash-seeded fake encoder (tests/fakes.py): these tests are about
where an index lives and how a build reaches it, not about what the answers say.
"""

from __future__ import annotations

import ast
import graphlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from qa import Bot
from qa.errors import IndexNotFoundError
from qa.indexing import build_index
from qa.stores import Index, IndexStore, open_store
from qa.types import Manifest

from .conftest import ARTICLE, ROOT
from .rel_support import make_second_corpus

STORES = ["folder", "milvus"]


@pytest.fixture(params=STORES)
def where(request, tmp_path) -> tuple[str, Path]:
    """(store, --index) of an empty index in each store: a folder, or a collection in a Milvus Lite file."""
    if request.param == "milvus":
        pytest.importorskip("pymilvus", reason="the 'scale' extra is not installed")
        return f"milvus:{tmp_path / 'qa.db'}", tmp_path / "kb"
    return "folder", tmp_path / "kb"


def test_every_store_is_an_index_store_that_opens_an_index(where, fake_embedder):
    spec, index_dir = where
    built = build_index([ARTICLE], index_dir, fake_embedder, store=spec)
    store = open_store(spec, index_dir)
    assert isinstance(store, IndexStore)
    index = store.open()
    assert isinstance(index, Index)
    assert isinstance(built, Manifest) and store.manifest() == built == index.manifest
    assert Manifest.from_dict(built.to_dict()) == built and built.to_dict() == dict(built)
    assert (built.model, built.passage_count, built.key_count) == (fake_embedder.model_id, len(index.passages), index.key_count)
    rows = np.arange(index.key_count)
    assert np.allclose(index.key_vectors(rows), fake_embedder.encode([t for p in index.passages for t in _texts(p)]))


def _texts(passage):
    from qa.keys import passage_keys

    return [text for _, _, text in passage_keys(passage)]


def test_the_folder_manifest_is_the_json_on_disk(tmp_path, fake_embedder):
    built = build_index([ARTICLE], tmp_path / "kb", fake_embedder)
    assert json.loads((tmp_path / "kb" / "manifest.json").read_text()) == built.to_dict()
    assert built.sources[0].key == ARTICLE.name and built.sources[0].reader_warnings == ()


def test_the_signature_changes_when_a_build_commits_and_only_then(where, fake_embedder, tmp_path):
    spec, index_dir = where
    store = open_store(spec, index_dir)
    assert store.signature() is None
    build_index([ARTICLE], index_dir, fake_embedder, store=spec)
    first = store.signature()
    assert first is not None and store.signature() == first
    build_index([make_second_corpus(tmp_path / "corpus")], index_dir, fake_embedder, store=spec)
    assert store.signature() not in (None, first)


def test_a_bot_switches_to_a_new_build_on_every_store(where, fake_embedder, tmp_path):
    spec, index_dir = where
    build_index([ARTICLE], index_dir, fake_embedder, store=spec)
    bot = Bot(index_dir, store=spec, embedder=fake_embedder).warm_up()
    before = len(bot.passages)
    rebuilt = Bot.build([make_second_corpus(tmp_path / "corpus")], index_dir, embedder=fake_embedder, store=spec).built
    bot.ask("How do I reset my password?")
    assert bot.index.manifest.build_id == rebuilt.build_id and len(bot.passages) == before + 2


def test_a_rebuild_embeds_only_new_model_inputs_and_full_embeds_all(where, tmp_path):
    from .fakes import HashEncoder, FAKE_MODEL
    from qa.embedding import Embedder

    spec, index_dir = where
    encoder = HashEncoder()
    embedder = Embedder(FAKE_MODEL, encoder=encoder)
    first = build_index([ARTICLE], index_dir, embedder, store=spec)
    assert first.reused == 0 and sum(encoder.calls) == first.embedded > 0
    encoder.calls.clear()
    again = build_index([ARTICLE], index_dir, embedder, store=spec)
    assert again.embedded == 0 and again.reused == again.key_count and sum(encoder.calls) == 0
    full = build_index([ARTICLE], index_dir, embedder, store=spec, update=False)
    assert full.reused == 0 and full.embedded == first.embedded and full.update == {"mode": "full"}
    assert open_store(spec, index_dir).previous("another-model") is None


def test_drop_removes_the_index(where, fake_embedder):
    spec, index_dir = where
    build_index([ARTICLE], index_dir, fake_embedder, store=spec)
    store = open_store(spec, index_dir)
    store.drop()
    with pytest.raises(IndexNotFoundError):
        store.manifest()
    assert store.signature() is None


# --------------------------------------------------------------------------- the shape of the house

QA = ROOT / "qa"
# A comparison with a store's kind, or a test for one store's object, outside qa/stores/.
STORE_BRANCH = re.compile(r'''[!=]=\s*["'](folder|milvus)["']|["'](folder|milvus)["']\s*[!=]=|\bmilvus is (not )?None''')


def test_nothing_outside_qa_stores_asks_which_store_it_holds():
    found = [f"{path.relative_to(ROOT)}:{n}" for path in sorted(QA.rglob("*.py")) if "stores" not in path.parts
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if STORE_BRANCH.search(line)]
    assert found == []


def _imports(path: Path, module: str) -> set[str]:
    """The qa modules `module` (at `path`) imports, at module level or inside functions."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            out |= {f"{target}.{a.name}" for a in node.names} | {target}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_qa_has_no_import_cycles():
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in QA.rglob("*.py")}
    graph = {
        module: {target for target in _imports(path, module) & modules.keys()
                 # A package and its own modules import each other by design (`from .base import ...`).
                 if target != module and not target.startswith(module + ".") and not module.startswith(target + ".")}
        for module, path in modules.items()
    }
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_both_stores_rank_a_question_asked_in_an_faqs_own_words_first(where, fake_embedder, tmp_path):
    spec, index_dir = where
    build_index([make_second_corpus(tmp_path / "corpus")], index_dir, fake_embedder, store=spec)
    bot = Bot(index_dir, store=spec, embedder=fake_embedder)
    faqs = [p for p in bot.passages if p.kind == "faq"]
    for faq in faqs:
        hits = bot.ask(faq.question, k=3).passages
        assert hits[0].passage.id == faq.id  # its question key is the query's own vector, and BM25 agrees
