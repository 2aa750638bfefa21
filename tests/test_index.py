"""The index folder: round trip, staleness, model mismatch, failed builds, and FAISS against brute force."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from qa import Bot
from qa.errors import DocumentError, IndexMismatchError, IndexNotFoundError
from qa.indexing import build_index, is_stale
from qa.stores.folder import make_vector_index
from qa.keys import FIELD_QUESTION
from qa.stores.folder import load_index, manifest_digest, read_manifest

from .conftest import ARTICLE


def test_manifest_records_model_dimension_counts_and_fingerprint(article_index):
    manifest = read_manifest(article_index)
    assert manifest["model"] == "all-MiniLM-L6-v2"
    assert manifest["dimension"] == 384
    assert manifest["passage_count"] == 19
    assert (manifest["paragraph_count"], manifest["faq_count"]) == (15, 4)
    assert len(manifest["fingerprint"]) == 64
    assert manifest["vector_index"] == "IndexFlatIP"
    assert set(manifest["checksums"]) >= {"passages.jsonl", "keys.npy", "vectors.faiss"}
    assert any(name.startswith("bm25/") for name in manifest["checksums"])


def test_save_load_round_trip_keeps_passages_and_vectors(article_index, embedder):
    from qa.documents import load_document

    index = load_index(article_index)
    assert [p.id for p in index.passages] == [p.id for p in load_document(ARTICLE).passages]
    assert index.vectors.ntotal == len(index.keys)
    first_text = index.passages[0].text
    row = int(np.flatnonzero((index.keys[:, 0] == 0) & (index.keys[:, 1] == 0))[0])
    stored = index.vectors.reconstruct(row)
    assert np.allclose(stored, embedder.encode([first_text])[0], atol=1e-5)


def test_faiss_top_k_matches_numpy_brute_force(article_index, embedder):
    index = load_index(article_index)
    vectors = index.vectors.reconstruct_n(0, index.vectors.ntotal)
    for question in ["floral tribute at the monument", "oil company energy cooperation", "warships in Havana"]:
        q = embedder.encode([question])[0]
        scores, ids = index.vectors.search(q.reshape(1, -1), 10)
        brute = np.argsort(-(vectors @ q))[:10]
        assert list(ids[0]) == list(brute)
        assert np.allclose(scores[0], (vectors @ q)[brute], atol=1e-5)


def test_hnsw_index_agrees_with_exact_search_on_real_vectors(article_index):
    vectors = load_index(article_index).vectors.reconstruct_n(0, 37)
    flat, hnsw = make_vector_index(vectors, "flat"), make_vector_index(vectors, "hnsw")
    _, a = flat.search(vectors[:5], 5)
    _, b = hnsw.search(vectors[:5], 5)
    assert (a == b).mean() > 0.9
    with pytest.raises(ValueError, match="vector index kind must be"):
        make_vector_index(vectors, "ivf-magic")


def test_index_is_stale_after_the_corpus_changes(corpus, tmp_path, embedder):
    folder = tmp_path / "index"
    build_index([corpus], folder, embedder)
    assert not is_stale(folder)
    (corpus / "extra.md").write_text("# Extra\n\nA new paragraph about sugar harvests.\n", encoding="utf-8")
    assert is_stale(folder)
    (corpus / "extra.md").unlink()
    assert not is_stale(folder)
    path = corpus / ARTICLE.name
    path.write_text(path.read_text(encoding="utf-8") + "\nOne more paragraph.\n", encoding="utf-8")
    assert is_stale(folder)


def test_rebuild_reuses_embeddings_of_unchanged_text(corpus, tmp_path, embedder):
    folder = tmp_path / "index"
    first = build_index([corpus], folder, embedder)
    assert first["reused"] == 0
    path = corpus / ARTICLE.name
    path.write_text(path.read_text(encoding="utf-8").replace("Alexander Beglov", "Governor Beglov"), encoding="utf-8")
    second = build_index([corpus], folder, embedder)
    assert second["embedded"] == 1  # only the edited one-sentence paragraph
    assert second["reused"] == first["key_count"] - 1
    assert len([p for p in folder.iterdir() if p.is_dir()]) == 1, "the superseded build is cleaned up"


def test_texts_the_model_reads_alike_share_one_vector(tmp_path, embedder):
    """Questions differing only in capitals tie exactly, and the tie goes to the earlier passage on every backend."""
    faq = tmp_path / "faq.jsonl"
    rows = [
        {"question": "Who is at Higher Risk for Serious Illness?", "answer": "Older adults and people with chronic conditions."},
        {"question": "Who is at higher risk for serious illness?", "answer": "People with heart disease, diabetes or lung disease."},
        {"question": "When does the museum open?", "answer": "At nine in the morning."},
    ]
    faq.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    manifest = build_index([faq], tmp_path / "index", embedder)
    assert manifest["deduplicated"] >= 1
    index = load_index(tmp_path / "index")
    question_rows = np.flatnonzero(index.keys[:, 1] == FIELD_QUESTION)
    first, second = (index.vectors.reconstruct(int(r)) for r in question_rows[:2])
    assert np.array_equal(first, second)
    hits = Bot(tmp_path / "index", embedder=embedder).ask("who is at higher risk for serious illness", k=2).passages
    assert [h.passage.question for h in hits] == [rows[0]["question"], rows[1]["question"]]
    assert hits[0].score == hits[1].score


def test_a_rebuild_gives_a_new_text_the_vector_of_an_old_one_the_model_reads_alike(tmp_path, embedder):
    faq = tmp_path / "faq.jsonl"
    first = {"question": "Who is at Higher Risk for Serious Illness?", "answer": "Older adults."}
    second = {"question": "who is at higher risk for serious illness?", "answer": "People with lung disease."}
    faq.write_text(json.dumps(first) + "\n", encoding="utf-8")
    build_index([faq], tmp_path / "index", embedder)
    faq.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n", encoding="utf-8")
    manifest = build_index([faq], tmp_path / "index", embedder)
    # The new answer and the new pair as one text only: the new question reads as the old one.
    assert manifest["embedded"] == 2
    index = load_index(tmp_path / "index")
    a, b = (index.vectors.reconstruct(int(r)) for r in np.flatnonzero(index.keys[:, 1] == FIELD_QUESTION))
    assert np.array_equal(a, b)


def test_loading_with_another_model_is_refused(article_index):
    with pytest.raises(IndexMismatchError, match="built with model 'all-MiniLM-L6-v2', not 'other-model'"):
        load_index(article_index, model="other-model")


def test_loading_another_format_version_is_refused(article_index, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(article_index, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 99
    manifest["manifest_sha256"] = manifest_digest(manifest)  # an intact manifest of another format
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="index format 99"):
        load_index(folder)


def test_no_index_says_how_to_build_one(tmp_path):
    with pytest.raises(IndexNotFoundError, match="qa build"):
        Bot(tmp_path / "nothing").ask("anything?")


def test_a_bad_document_is_skipped_with_its_line_and_the_rest_is_indexed(corpus, tmp_path, embedder):
    """Issue 21, item 1: one bad file never stops a build (it stopped every build before)."""
    folder = tmp_path / "index"
    build_index([corpus], folder, embedder)
    (corpus / "broken.jsonl").write_text('{"question": "ok?", "answer": "yes"}\n{"question": \n', encoding="utf-8")
    manifest = build_index([corpus], folder, embedder)
    assert [(s["key"], s["line"]) for s in manifest["skipped"]] == [("broken.jsonl", 2)]
    assert manifest["skipped"][0]["reason"].startswith("invalid JSON")
    bot = Bot(folder, embedder=embedder)
    assert bot.ask("Who did Díaz-Canel meet in St. Petersburg?").answered


def test_a_build_whose_every_document_is_bad_keeps_the_old_index(corpus, tmp_path, embedder):
    folder = tmp_path / "index"
    build_index([corpus], folder, embedder)
    before = (folder / "manifest.json").read_bytes()
    (corpus / "broken.jsonl").write_text('{"question": "ok?", "answer": "yes"}\n{"question": \n', encoding="utf-8")
    with pytest.raises(DocumentError, match=r"no readable documents .*broken\.jsonl:2: invalid JSON"):
        build_index([corpus / "broken.jsonl"], folder, embedder)
    assert (folder / "manifest.json").read_bytes() == before
    bot = Bot(folder, embedder=embedder)
    assert bot.ask("Who did Díaz-Canel meet in St. Petersburg?").answered


def test_a_build_that_crashes_while_embedding_keeps_the_old_index(corpus, tmp_path, embedder, monkeypatch):
    folder = tmp_path / "index"
    build_index([corpus], folder, embedder)
    before = (folder / "manifest.json").read_bytes()
    (corpus / "more.md").write_text("# More\n\nSugar harvests fell in 2024.\n", encoding="utf-8")

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash while embedding")

    monkeypatch.setattr(embedder, "encode", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_index([corpus], folder, embedder)
    monkeypatch.undo()
    assert (folder / "manifest.json").read_bytes() == before
    assert load_index(folder).manifest["passage_count"] == 19


def test_bm25_postings_are_sorted_rows_that_hold_the_term(article_index):
    from qa.lexical import analyze

    index = load_index(article_index)
    for term in ["beglov", "cuban", "monument", "lay"]:
        rows = index.lexical.postings(term)
        assert list(rows) == sorted(set(rows.tolist())) and len(rows) > 0, term
        holders = [i for i, p in enumerate(index.passages) if term in analyze(p.question or "") + analyze(p.text)]
        assert set(rows.tolist()) == set(holders), term
