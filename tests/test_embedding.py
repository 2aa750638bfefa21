"""The embedding backends: ONNX Runtime must give torch's vectors, rankings and fallbacks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from qa import settings
from qa.embedding import Embedder
from qa.encoders import DEFAULT_MODEL, model_location
from qa.onnx_cache import load_onnx
from qa.onnx_runtime import CHECK_TEXTS, ExportError, OnnxEncoder
from qa.errors import QAError

from .conftest import EVAL, ROOT

LONG = " ".join(["The quick brown fox jumps over the lazy dog near the riverbank."] * 40)  # > 256 tokens


def _xquad(docs: int = 3) -> tuple[list[str], list[str]]:
    """(paragraphs of the first `docs` XQuAD articles, their questions)."""
    with open(EVAL / "xquad_en_test" / "docs.jsonl", encoding="utf-8") as fh:
        chosen = [json.loads(line) for line in fh][:docs]
    ids = {d["doc_id"] for d in chosen}
    with open(EVAL / "xquad_en_test" / "questions.jsonl", encoding="utf-8") as fh:
        questions = [q["question"] for q in map(json.loads, fh) if q["doc_id"] in ids]
    return [p for d in chosen for p in d["paragraphs"]], questions


@pytest.fixture(scope="module")
def torch_embedder():
    e = Embedder(backend="torch")
    e.warm_up()
    return e


@pytest.fixture(scope="module")
def onnx_embedder(embedder):
    """The session's model: with the default backend ("auto") it is the ONNX export."""
    embedder.warm_up()
    assert embedder.backend == "auto"
    assert embedder.active_backend == "onnx", "auto should use the exact ONNX export when onnxruntime is installed"
    return embedder


def test_backend_resolution(monkeypatch):
    monkeypatch.delenv("QA_BACKEND", raising=False)
    assert settings.backend(None) == "auto"
    monkeypatch.setenv("QA_BACKEND", "torch")
    assert settings.backend(None) == "torch"
    assert Embedder().backend == "torch"
    assert settings.backend("onnx") == "onnx"  # the argument wins over the environment
    with pytest.raises(ValueError, match="embedding backend must be one of auto, torch, onnx, got 'tensorflow'"):
        Embedder(backend="tensorflow")


def test_onnx_vectors_equal_torch(onnx_embedder, torch_embedder):
    paragraphs, questions = _xquad(1)
    texts = [*CHECK_TEXTS, LONG, "Díaz-Canel 🇨🇺 laid a wreath.", *questions[:20], *paragraphs[:5]]
    a = onnx_embedder.encode(texts, batch_size=8)
    b = torch_embedder.encode(texts, batch_size=8)
    assert a.shape == b.shape == (len(texts), 384) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(a * b, axis=1))) >= 0.9999
    assert float(np.max(np.abs(a - b))) < 1e-4


def test_input_digests_are_what_the_model_reads_on_both_backends(onnx_embedder, torch_embedder):
    """Equal keys for texts the uncased model reads alike (capitals, outer spaces, words past the cut), else distinct."""
    texts = [
        "Who is at Higher Risk for Serious Illness from COVID-19?",
        "  who is at higher risk for serious illness from covid-19? ",
        "Who is at higher risk for serious illness?",
        LONG,
        LONG + " These closing words lie past the model's 256 tokens.",
    ]
    keys = onnx_embedder.input_digests(texts)
    assert keys == torch_embedder.input_digests(texts)
    assert keys[0] == keys[1] and keys[3] == keys[4]
    assert len({keys[0], keys[2], keys[3]}) == 3
    # Equal keys are equal inputs: torch embeds them alike.
    a, b = torch_embedder.encode(texts[:2])
    assert float(a @ b) > 0.99999


def test_onnx_truncates_where_torch_does(onnx_embedder, torch_embedder):
    """Past 256 tokens the text no longer matters (sentence-transformers' limit, not the tokenizer file's 128)."""
    a, b = onnx_embedder.encode([LONG, LONG + " Completely different ending about volcanoes."])
    assert float(a @ b) > 0.99999
    middle = " ".join(LONG.split()[:150])  # ~170 tokens: cut at 128 it would embed like a shorter text
    c, d = onnx_embedder.encode([middle, " ".join(middle.split()[:100])])
    assert float(c @ d) < 0.9999


def test_onnx_keeps_input_order_across_batches_and_threads(onnx_embedder):
    texts = [f"question number {i} about {'long ' * (i % 7)}topics" for i in range(37)]
    together = onnx_embedder.encode(texts, batch_size=4)
    alone = np.vstack([onnx_embedder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert onnx_embedder.encode([]).shape == (0, 384)


@pytest.mark.slow
def test_same_top10_as_torch_on_xquad(onnx_embedder, torch_embedder):
    """Oracle test: brute-force top-10 paragraphs for real questions, ONNX against torch."""
    paragraphs, questions = _xquad(3)
    p_onnx, q_onnx = onnx_embedder.encode(paragraphs), onnx_embedder.encode(questions)
    p_torch, q_torch = torch_embedder.encode(paragraphs), torch_embedder.encode(questions)
    top_onnx = np.argsort(-(q_onnx @ p_onnx.T), axis=1, kind="stable")[:, :10]
    top_torch = np.argsort(-(q_torch @ p_torch.T), axis=1, kind="stable")[:, :10]
    assert len(questions) >= 50
    assert (top_onnx == top_torch).all(axis=1).mean() == 1.0


def test_export_record(onnx_embedder):
    record = onnx_embedder.warm_up().record
    assert record["ok"] is True and record["max_seq_length"] == 256 and record["pooling"] == "mean"
    assert record["min_cosine"] >= 0.9999 and isinstance(record["fused"], bool)


def test_cached_export_loads_without_torch(onnx_embedder):
    """A serving process with a cached export never imports torch or sentence-transformers."""
    code = (
        "import sys; from qa.embedding import Embedder; "
        f"e = Embedder(backend='onnx', cache_dir={str(onnx_embedder.cache_dir)!r}); v = e.encode(['hello']); "
        "assert e.active_backend == 'onnx' and v.shape == (1, 384); "
        "bad = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_failed_export_falls_back_to_torch_and_is_remembered(tmp_path, monkeypatch, caplog):
    calls = []

    def broken(model_dir, target):
        calls.append(target)
        raise ExportError("the exported model's vectors differ from torch's (worst cosine 0.5 < 0.9999)")

    monkeypatch.setattr("qa.onnx_export.export_onnx", broken)
    with caplog.at_level(logging.WARNING, logger="qa"):
        e = Embedder(backend="auto", cache_dir=tmp_path)
        vectors = e.encode(["hello"])
    assert e.active_backend == "torch" and vectors.shape == (1, 384)
    assert "using torch" in caplog.text and "worst cosine 0.5" in caplog.text
    records = list(tmp_path.glob("onnx/*/export.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["ok"] is False
    assert not list(tmp_path.glob("onnx/*/model.onnx"))
    # The failure is remembered: no second export attempt, and backend="onnx" says why it cannot run.
    with pytest.raises(QAError, match="cannot use the ONNX backend.*failed its check"):
        Embedder(backend="onnx", cache_dir=tmp_path).warm_up()
    assert len(calls) == 1


@pytest.mark.slow
def test_export_check_rejects_a_wrong_graph(tmp_path, monkeypatch):
    """The real export, with the ONNX side made wrong: the check against torch must refuse it."""
    real_encode = OnnxEncoder.encode

    def wrong(self, texts, batch_size=32, progress=False):
        v = real_encode(self, texts, batch_size, progress)
        v[:, :8] = 0.0
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    monkeypatch.setattr(OnnxEncoder, "encode", wrong)
    with pytest.raises(ExportError, match="differ from torch's"):
        load_onnx(model_location(DEFAULT_MODEL), tmp_path)
    record = json.loads(next(tmp_path.glob("onnx/*/export.json")).read_text())
    assert record["ok"] is False and "worst cosine" in record["error"]


def test_onnx_backend_refuses_a_model_it_cannot_export(tmp_path):
    with pytest.raises(QAError, match="cannot use the ONNX backend"):
        Embedder(str(tmp_path / "no-such-model"), backend="onnx", cache_dir=tmp_path).warm_up()


def _copy_export(embedder, cache):
    """A copy of the session's cached export in another cache folder (same key: it depends on the model only)."""
    import shutil

    source = embedder.warm_up().folder
    target = cache / "onnx" / source.name
    shutil.copytree(source, target)
    return source, target


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_damaged_cached_export_is_detected(onnx_embedder, tmp_path, damage):
    _, target = _copy_export(onnx_embedder, tmp_path)
    location = model_location(DEFAULT_MODEL)
    assert load_onnx(location, tmp_path, allow_export=False).folder == target  # the copy itself is fine
    model = target / "model.onnx"
    data = bytearray(model.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:  # same size, weights overwritten: it loads, but embeds wrongly
        middle = len(data) // 2
        data[middle : middle + 4_000_000] = bytes(4_000_000)
    model.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="is damaged"):
        load_onnx(location, tmp_path, allow_export=False)


def test_damaged_cached_export_is_exported_again(onnx_embedder, tmp_path, monkeypatch, caplog):
    import shutil

    source, target = _copy_export(onnx_embedder, tmp_path)
    (target / "tokenizer.json").write_text("{ not json", encoding="utf-8")

    def reexport(model_dir, staging):
        shutil.copytree(source, staging, dirs_exist_ok=True)
        return {k: v for k, v in json.loads((source / "export.json").read_text()).items() if k != "ok"}

    monkeypatch.setattr("qa.onnx_export.export_onnx", reexport)
    with caplog.at_level(logging.WARNING, logger="qa"):
        e = Embedder(backend="auto", cache_dir=tmp_path)
        v = e.encode(["Who did Díaz-Canel meet in St. Petersburg?"])
    assert e.active_backend == "onnx" and "is damaged" in caplog.text
    np.testing.assert_allclose(v, onnx_embedder.encode(["Who did Díaz-Canel meet in St. Petersburg?"]), atol=1e-6)


def test_concurrent_queries_get_the_same_vectors(onnx_embedder):
    """Queries encoded at once from several threads (each then runs on one thread) equal those encoded alone."""
    from concurrent.futures import ThreadPoolExecutor

    _, questions = _xquad(1)
    questions = questions[:24]
    alone = np.vstack([onnx_embedder.encode([q]) for q in questions])
    with ThreadPoolExecutor(4) as pool:
        together = np.vstack(list(pool.map(lambda q: onnx_embedder.encode([q]), questions)))
    np.testing.assert_allclose(together, alone, atol=1e-5)
