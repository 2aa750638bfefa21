"""Incremental builds (qa/incremental.py): an update of a changed corpus answers as a full build of it does."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import qa.indexing
from bench.textgen import TextGenerator
from qa import Bot
from qa.indexing import build_index
from qa.stores.folder import load_index

from .conftest import ARTICLE
from .rel_support import QUESTIONS

FAQ = [
    {"question": "How do I reset my password?", "answer": "Open Settings, choose Security and press Reset password."},
    {"question": "Can I get a refund after 30 days?", "answer": "Refunds are possible within 60 days of purchase."},
    {"question": "When does the museum open?", "answer": "At nine in the morning, every day but Monday."},
]
MORE_QUESTIONS = [
    "When was the university founded?", "Which river flows through the city?", "Who won the election?",
    "What did the government build after the war?", "How many people live in the region?",
]


def _write_corpus(folder, files: int = 8) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    gen = TextGenerator(seed=3)
    for i in range(files):
        (folder / f"article-{i}.md").write_text(gen.document(6), encoding="utf-8")
    (folder / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
    (folder / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in FAQ), encoding="utf-8")


def _change(folder) -> None:
    """One paragraph edited and one added in one file, an FAQ answer changed, a file removed, a file added."""
    gen = TextGenerator(seed=7)
    path = folder / "article-2.md"
    paragraphs = path.read_text(encoding="utf-8").split("\n\n")
    paragraphs[2] = gen.paragraph()
    path.write_text("\n\n".join(paragraphs) + "\n\n" + gen.paragraph() + "\n", encoding="utf-8")
    rows = [dict(r) for r in FAQ]
    rows[1]["answer"] = "Refunds are possible within 90 days when the receipt is shown."
    (folder / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "article-5.md").unlink()
    (folder / "article-new.md").write_text(gen.document(4), encoding="utf-8")


def _top10(folder, embedder) -> list[list[tuple[str, float]]]:
    bot = Bot(folder, embedder=embedder)
    return [[(h.passage.id, h.score) for h in bot.ask(q, k=10).passages] for q in QUESTIONS + MORE_QUESTIONS]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, embedder):
    """The corpus before and after the change, each with a full build of its own."""
    root = tmp_path_factory.mktemp("incremental")
    before, after = root / "before", root / "after"
    _write_corpus(before)
    shutil.copytree(before, after)
    _change(after)
    built = {}
    for kind in ("flat", "hnsw"):
        for name, corpus in (("before", before), ("after", after)):
            build_index([corpus], root / f"{name}-{kind}", embedder, vector_index=kind)
            built[name, kind] = root / f"{name}-{kind}"
    return before, after, built


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_an_update_answers_as_a_full_build_of_the_new_corpus(corpora, embedder, tmp_path, kind):
    _, after, built = corpora
    folder = tmp_path / "index"
    shutil.copytree(built["before", kind], folder)
    manifest = build_index([after], folder, embedder, vector_index=kind)

    assert manifest["update"]["mode"] == "incremental"
    assert manifest["update"]["vector_index"] == ("updated" if kind == "hnsw" else "copied")
    assert manifest["files"] == {"added": 1, "changed": 2, "removed": 1, "unchanged": 7}
    full = load_index(built["after", kind])
    updated = load_index(folder)
    assert updated.passages == full.passages
    assert np.array_equal(updated.keys, full.keys)
    assert updated.lexical.idf() == full.lexical.idf()
    for question in QUESTIONS + MORE_QUESTIONS:
        assert np.array_equal(updated.lexical.scores(question), full.lexical.scores(question))
    assert manifest["embedded"] < 40 < manifest["reused"]

    incremental, fresh = _top10(folder, embedder), _top10(built["after", kind], embedder)
    for got, want in zip(incremental, fresh):
        assert [pid for pid, _ in got] == [pid for pid, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


def test_an_update_reads_only_the_changed_files(corpora, embedder, tmp_path, monkeypatch):
    _, after, built = corpora
    folder = tmp_path / "index"
    shutil.copytree(built["before", "flat"], folder)
    read = []
    real = qa.indexing.load_document
    monkeypatch.setattr(qa.indexing, "load_document", lambda path, *a: read.append(path.name) or real(path, *a))
    build_index([after], folder, embedder, vector_index="flat")
    assert sorted(read) == ["article-2.md", "article-new.md", "faq.jsonl"]


def test_removed_vectors_of_an_updated_hnsw_index_never_come_back(corpora, embedder, tmp_path):
    before, _, built = corpora
    folder, corpus = tmp_path / "index", tmp_path / "corpus"
    shutil.copytree(built["before", "hnsw"], folder)
    shutil.copytree(before, corpus)
    gone = {p.id for p in load_index(folder).passages if p.path == "article-1.md"}
    (corpus / "article-1.md").write_text(TextGenerator(seed=11).document(6), encoding="utf-8")
    manifest = build_index([corpus], folder, embedder, vector_index="hnsw")
    assert manifest["update"]["vector_index"] == "updated" and manifest["update"]["removed_vectors"] > 0
    index = load_index(folder)
    assert index.slots is not None and index.vectors.ntotal > index.key_count
    rows = index.nearest_keys(index.all_key_vectors()[:50], 200)
    assert rows.max() < index.key_count
    assert not {index.passages[r].id for r in index.keys[rows[rows >= 0], 0]} & gone
    bot = Bot(folder, embedder=embedder)
    assert not {h.passage.id for q in MORE_QUESTIONS for h in bot.ask(q, k=10).passages} & gone

    # Replacing most of the corpus leaves most of the graph unused: the index is rebuilt whole.
    for i in range(8):
        (corpus / f"article-{i}.md").write_text(TextGenerator(seed=20 + i).document(6), encoding="utf-8")
    manifest = build_index([corpus], folder, embedder, vector_index="hnsw")
    assert manifest["update"]["vector_index"] == "rebuilt" and manifest["update"]["removed_vectors"] == 0
    assert load_index(folder).slots is None


def test_an_index_changes_type_when_the_request_changes(corpora, embedder, tmp_path):
    _, after, built = corpora
    folder = tmp_path / "index"
    shutil.copytree(built["before", "flat"], folder)
    manifest = build_index([after], folder, embedder, vector_index="hnsw")
    assert manifest["update"]["mode"] == "incremental" and manifest["update"]["vector_index"] == "rebuilt"
    assert manifest["vector_index"] == "IndexHNSWFlat"


@pytest.mark.parametrize("change", ["no digests", "other readers"])
def test_an_index_without_digests_or_read_by_other_code_is_built_in_full(corpora, embedder, tmp_path, change):
    from qa.stores.folder import manifest_digest

    _, after, built = corpora
    folder = tmp_path / "index"
    shutil.copytree(built["before", "flat"], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    if change == "no digests":
        (folder / manifest["build_id"] / "digests.npy").unlink()
        del manifest["checksums"]["digests.npy"]
    else:
        manifest["readers"] = "0" * 64  # an index from another version of the readers or the analyser
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    rebuilt = build_index([after], folder, embedder, vector_index="flat")
    assert rebuilt["update"] == {"mode": "full"}
    assert rebuilt["files"] == {"added": 1, "changed": 2, "removed": 1, "unchanged": 7}
    assert rebuilt["reused"] > 0  # the vectors of unchanged text are still reused
    assert load_index(folder).passages == load_index(built["after", "flat"]).passages


def test_another_model_is_never_updated(corpora, embedder, tmp_path):
    from qa.incremental import load_previous

    _, _, built = corpora
    assert load_previous(built["before", "flat"], "another-model") is None
    assert load_previous(built["before", "flat"], embedder.model_id) is not None
