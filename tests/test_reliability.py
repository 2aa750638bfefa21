"""Reliability in one process: concurrent asks, damaged and planted index files, bad FAQ files, limits.

Crash (SIGKILL) and no-network tests run builds in subprocesses: see test_rel_crash.py.
"""

from __future__ import annotations

import json
import logging
import re
import threading

import numpy as np
import pytest

from qa import Bot, DocumentError, IndexBusyError, IndexCorruptError, QAError
from qa.stores import folder as store
from qa.cli import main as cli_main
from qa.documents import load_document
from qa.indexing import build_index, collect_documents
from qa.stores.folder import MANIFEST, build_lock, load_index, manifest_digest, read_manifest, sha256_file

from .conftest import ARTICLE
from .rel_support import QUESTIONS, copy_index, folder_state, make_second_corpus, snapshot, without_id


@pytest.fixture(scope="module")
def sequential(bot) -> list[dict]:
    """The session bot's answers to QUESTIONS, asked one at a time."""
    return snapshot(bot)


@pytest.fixture
def index_copy(tmp_path, article_index):
    return copy_index(article_index, tmp_path / "index")


def build_dir(folder):
    return folder / read_manifest(folder)["build_id"]


# --------------------------------------------------------------------------- load


def test_eight_threads_asking_at_once_get_the_answers_one_thread_gets(bot, sequential):
    rounds = 3
    barrier = threading.Barrier(8)
    results: dict[int, list[tuple[int, dict]]] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            order = [(n + i) % len(QUESTIONS) for i in range(len(QUESTIONS))] * rounds
            results[n] = [(i, without_id(bot.ask(QUESTIONS[i]).to_dict())) for i in order]
        except BaseException as exc:  # noqa: BLE001 - reported below with the thread's number
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(results) == list(range(8))
    for n, answers in results.items():
        assert len(answers) == rounds * len(QUESTIONS)
        for i, answer in answers:
            assert answer == sequential[i], f"thread {n}, question {QUESTIONS[i]!r}"


def test_first_asks_from_many_threads_load_the_index_once(article_index, embedder, sequential, monkeypatch):
    loads = []
    real_load = store.load_index

    def counting_load(*args, **kwargs):
        loads.append(threading.get_ident())
        return real_load(*args, **kwargs)

    monkeypatch.setattr("qa.stores.folder.load_index", counting_load)
    cold = Bot(article_index, embedder=embedder)
    barrier = threading.Barrier(8)
    answers: list[dict] = []

    def worker() -> None:
        barrier.wait(timeout=30)
        answers.append(without_id(cold.ask(QUESTIONS[0]).to_dict()))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(loads) == 1
    assert answers == [sequential[0]] * 8


# --------------------------------------------------------------------------- builds that meet


def test_a_second_build_fails_with_a_clear_message_while_another_holds_the_folder(index_copy, embedder, tmp_path):
    before = folder_state(index_copy)
    with build_lock(index_copy, wait=0):  # what a running build holds
        with pytest.raises(IndexBusyError, match=r"another build is writing the index in .*; try again when it has finished"):
            build_index([make_second_corpus(tmp_path / "corpus2")], index_copy, embedder, lock_wait=0.5)
    assert folder_state(index_copy) == before


def test_a_waiting_build_says_that_it_waits(index_copy, embedder, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="qa.stores.folder")
    with build_lock(index_copy, wait=0):
        with pytest.raises(IndexBusyError):
            build_index([make_second_corpus(tmp_path / "corpus2")], index_copy, embedder, lock_wait=0.5)
    assert any("waiting up to" in r.getMessage() for r in caplog.records)


def test_a_load_that_races_a_committing_build_gets_the_new_index_not_an_error(index_copy, embedder, tmp_path, monkeypatch):
    """A reader reads the manifest; a build commits and deletes the old build; the reader goes on."""
    corpus2 = make_second_corpus(tmp_path / "corpus2")
    old_id = read_manifest(index_copy)["build_id"]
    real_read = store.read_manifest
    raced = []

    def read_then_race(folder):
        manifest = real_read(folder)
        if not raced:
            raced.append(manifest["build_id"])
            build_index([corpus2], index_copy, embedder)
            assert not (index_copy / old_id).exists()
        return manifest

    monkeypatch.setattr(store, "read_manifest", read_then_race)
    index = load_index(index_copy)
    assert raced == [old_id]
    assert index.manifest["build_id"] != old_id
    assert any(p.id == "support:password" for p in index.passages)


# --------------------------------------------------------------------------- damaged files


def _truncate_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncate_empty(path):
    path.write_bytes(b"")


def _garble_at(fraction):
    def garble(path):
        data = bytearray(path.read_bytes())
        i = min(int(len(data) * fraction), len(data) - 1)
        data[i] ^= 0x5A
        path.write_bytes(bytes(data))

    return garble


def _delete(path):
    path.unlink()


DAMAGE = {
    "truncated-half": _truncate_half,
    "emptied": _truncate_empty,
    "garbled-first-byte": _garble_at(0.0),
    "garbled-middle": _garble_at(0.5),
    "garbled-last-byte": _garble_at(1.0),
    "deleted": _delete,
}


def _assert_refused(folder, name: str, embedder, *, parse: bool = False) -> None:
    """Loading, and asking through a Bot, both fail with one line that names `name` and says rebuild.

    With `parse`, the file passed its checksum and the parser refused it: a BM25
    file is then named by its folder, since bm25s reads the folder as a whole.
    """
    with pytest.raises(IndexCorruptError) as info:
        load_index(folder)
    message = str(info.value)
    named = name.split("/")[0] + " cannot be read" if parse and name.startswith("bm25/") else name
    assert "\n" not in message
    assert named in message and "rebuild the index" in message, message
    with pytest.raises(IndexCorruptError, match="rebuild the index"):
        Bot(folder, embedder=embedder).ask(QUESTIONS[0])


def test_every_file_of_a_build_is_covered_by_a_checksum(article_index):
    data = build_dir(article_index)
    on_disk = {p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()}
    assert on_disk == set(read_manifest(article_index)["checksums"])
    assert {"passages.jsonl", "keys.npy", "vectors.faiss", "bm25/vocab.index.json"} <= on_disk


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_build_file_is_refused_naming_the_file(index_copy, embedder, damage):
    data = build_dir(index_copy)
    names = sorted(read_manifest(index_copy)["checksums"])
    for name in names:
        original = (data / name).read_bytes()
        DAMAGE[damage](data / name)
        _assert_refused(index_copy, name, embedder)
        (data / name).write_bytes(original)
    load_index(index_copy)  # restored, it loads again: the refusals were the damage, not the test


def test_any_changed_byte_of_the_manifest_is_refused(index_copy, embedder):
    path = index_copy / MANIFEST
    original = path.read_bytes()
    for i in range(len(original)):
        data = bytearray(original)
        data[i] = ord("#") if data[i] != ord("#") else ord("%")
        path.write_bytes(bytes(data))
        with pytest.raises(IndexCorruptError) as info:
            read_manifest(index_copy)
        message = str(info.value)
        assert "\n" not in message and MANIFEST in message and "rebuild the index" in message, (i, message)
    for damage in ("truncated-half", "emptied"):
        path.write_bytes(original)
        DAMAGE[damage](path)
        _assert_refused(index_copy, MANIFEST, embedder)


def test_the_cli_reports_a_damaged_index_in_one_line(index_copy, capsys):
    _garble_at(0.5)(build_dir(index_copy) / "vectors.faiss")
    assert cli_main(["ask", QUESTIONS[0], "--index", str(index_copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: ") and "vectors.faiss" in err and "rebuild the index" in err


@pytest.mark.parametrize("name", ["passages.jsonl", "vectors.faiss", "bm25/vocab.index.json", MANIFEST, "old-format manifest"])
def test_the_advice_works_qa_build_repairs_a_damaged_index(index_copy, tmp_path, embedder, sequential, name):
    if name == MANIFEST:
        _garble_at(0.5)(index_copy / MANIFEST)
    elif name == "old-format manifest":  # as the previous qa wrote it: format 1, no manifest checksum
        manifest = read_manifest(index_copy)
        del manifest["manifest_sha256"]
        (index_copy / MANIFEST).write_text(json.dumps({**manifest, "format_version": 1}), encoding="utf-8")
    else:
        _truncate_half(build_dir(index_copy) / name)
    with pytest.raises(QAError):
        load_index(index_copy)
    build_index([ARTICLE], index_copy, embedder)
    assert snapshot(Bot(index_copy, embedder=embedder)) == sequential
    assert {p.name for p in index_copy.iterdir()} == {MANIFEST, ".lock", read_manifest(index_copy)["build_id"]}


# --------------------------------------------------------------------------- a damaged model


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_invalid_vectors_from_the_model_never_answer_and_never_enter_an_index(index_copy, embedder, monkeypatch, bad, tmp_path):
    """A damaged model file can make NaN vectors (seen with a garbled ONNX export): refuse them, loudly."""
    encoder = embedder.warm_up()
    real_encode = encoder.encode

    def damaged_encode(texts, **kwargs):
        vectors = real_encode(texts, **kwargs).copy()
        vectors[:, 7] = bad
        return vectors

    monkeypatch.setattr(encoder, "encode", damaged_encode)
    with pytest.raises(QAError, match=r"returned invalid vectors \(NaN or infinite\)"):
        Bot(index_copy, embedder=embedder).ask(QUESTIONS[0])
    before = folder_state(index_copy)
    with pytest.raises(QAError, match=r"returned invalid vectors .*The index is unchanged"):
        build_index([make_second_corpus(tmp_path / "corpus2")], index_copy, embedder)
    assert folder_state(index_copy) == before


# --------------------------------------------------------------------------- no pickle


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _reseal(folder, name: str) -> None:
    """Update the manifest's checksums after planting a file, as an attacker with write access would."""
    manifest = read_manifest(folder)
    manifest["checksums"][name] = sha256_file(folder / manifest["build_id"] / name)
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize("name", ["keys.npy", "bm25/data.csc.index.npy", "bm25/indices.csc.index.npy", "bm25/indptr.csc.index.npy"])
def test_a_planted_pickle_is_refused_and_runs_nothing(index_copy, tmp_path, name, embedder):
    marker = tmp_path / "payload-ran"
    planted = build_dir(index_copy) / name
    np.save(planted, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    _reseal(index_copy, name)
    read_manifest(index_copy)  # the checksums pass: only the loader stands in the way

    _assert_refused(index_copy, name, embedder, parse=True)
    assert not marker.exists()
    np.load(planted, allow_pickle=True)  # what a pickle-allowing loader would have done
    assert marker.exists()


# --------------------------------------------------------------------------- bad FAQ files


BAD_FAQ_FILES = [
    ("faq.csv", "question,answer\nq1,a1\nq2,a2,extra\n", r"faq\.csv:3: expected 2 fields, got 3"),
    ("faq.csv", "title,body\nx,y\n", r"faq\.csv:1: the CSV header must name 'question' and 'answer'"),
    ("faq.csv", "question,answer\nq1,\n", r"faq\.csv:2: missing or empty 'answer'"),
    ("faq.json", '[\n {"question": "q", "answer": "a"},\n {"question": "q2" "answer": "b"}\n]\n', r"faq\.json:3: invalid JSON"),
    ("faq.json", '[{"question": "q"}]', r"faq\.json:1: missing or empty 'answer'"),
    ("faq.json", '{"faqs": 3}', r"faq\.json:1: expected a list of FAQ objects"),
    ("faq.json", "[" * 100_000, r"faq\.json:1: invalid JSON: nested too deeply"),
    ("faq.json", '[{"question": "q", "answer": "a \\ud800 b"}]', r"faq\.json:1: 'answer' holds invalid Unicode"),
    ("faq.json", '[{"question": "q", "answer": ' + "9" * 5000 + "}]", r"faq\.json:1: invalid JSON: Exceeds the limit"),
    ("faq.jsonl", '{"question": "q", "answer": "a"}\n{"question": "q2", "answer": }\n', r"faq\.jsonl:2: invalid JSON"),
    ("faq.jsonl", '{"question": "q", "answer": "a"}\n["not", "an", "object"]\n', r"faq\.jsonl:2: expected an object"),
    ("faq.jsonl", '{"id": 1, "question": "q", "answer": "a"}\n{"id": 1, "question": "r", "answer": "b"}\n', r"faq\.jsonl:2: duplicate id '1'"),
]


@pytest.mark.parametrize("name,content,error", BAD_FAQ_FILES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD_FAQ_FILES)])
def test_a_malformed_faq_file_is_skipped_with_its_line_and_the_rest_is_read(tmp_path, name, content, error):
    """Issue 21, item 1: a malformed file is skipped with its file:line reason; it stopped the whole build before."""
    corpus = make_second_corpus(tmp_path / "corpus")
    (corpus / name).write_text(content, encoding="utf-8")
    documents, sources, skipped = collect_documents([corpus])
    assert [s.key for s in sources] == [ARTICLE.name, "support.json"]
    assert len(skipped) == 1 and re.match(error, str(skipped[0]))


def test_a_jsonl_answer_holding_a_raw_line_separator_is_one_record(tmp_path):
    """JSON strings may hold U+2028 unescaped; only a newline ends a JSON Lines record."""
    path = tmp_path / "faq.jsonl"
    records = [{"question": "Which lines?", "answer": "One\u2028and the same."}, {"question": "Next?", "answer": "Yes."}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    assert "\u2028" in path.read_text(encoding="utf-8")
    passages = load_document(path).passages
    assert [(p.question, p.text, p.line) for p in passages] == [("Which lines?", "One\u2028and the same.", 1), ("Next?", "Yes.", 2)]


def test_a_corpus_without_a_single_word_is_refused_clearly(index_copy, tmp_path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "symbols.md").write_text("🎉 🎉\n\n!!! ...\n\nThe of and.\n", encoding="utf-8")
    before = folder_state(index_copy)
    with pytest.raises(DocumentError, match="hold no words to index"):
        build_index([corpus], index_copy, embedder)
    assert folder_state(index_copy) == before


def test_the_cli_names_a_skipped_malformed_faq_file_and_builds_the_rest(index_copy, tmp_path, capsys):
    corpus = make_second_corpus(tmp_path / "corpus")
    (corpus / "faq.csv").write_text("question,answer\nq1,a1\nq2,a2,extra\n", encoding="utf-8")
    assert cli_main(["build", str(corpus), "--index", str(index_copy), "-q"]) == 0
    out = capsys.readouterr().out
    assert "indexed 2 files; skipped 1: faq.csv:3: expected 2 fields, got 3" in out
    assert [s["key"] for s in read_manifest(index_copy)["sources"]] == [ARTICLE.name, "support.json"]


# --------------------------------------------------------------------------- limits


def test_questions_over_the_limit_are_refused_with_the_numbers(bot):
    assert bot.max_question_chars == 2000
    bot.ask("x" * 2000)
    with pytest.raises(ValueError, match=r"question is 2,001 characters long; the limit is 2,000"):
        bot.ask("x" * 2001)
    with pytest.raises(ValueError, match=r"question is 100,000 characters long; the limit is 2,000"):
        bot.ask("why?" * 25_000)


def test_the_question_limit_comes_from_the_environment(article_index, embedder, monkeypatch):
    monkeypatch.setenv("QA_MAX_QUESTION_CHARS", "50")
    small = Bot(article_index, embedder=embedder)
    small.ask("y" * 50)
    with pytest.raises(ValueError, match="the limit is 50"):
        small.ask("y" * 51)
    assert Bot(article_index, embedder=embedder, max_question_chars=70).max_question_chars == 70


@pytest.mark.parametrize("value", ["lots", "2k", "0", "-5"])
def test_a_bad_question_limit_in_the_environment_is_named(article_index, monkeypatch, value):
    monkeypatch.setenv("QA_MAX_QUESTION_CHARS", value)
    with pytest.raises(ValueError, match=r"QA_MAX_QUESTION_CHARS|max_question_chars must be"):
        Bot(article_index)


def test_documents_over_the_size_limit_are_skipped_and_named(index_copy, tmp_path, embedder, monkeypatch):
    size = ARTICLE.stat().st_size
    corpus = make_second_corpus(tmp_path / "corpus")
    monkeypatch.setenv("QA_MAX_DOC_BYTES", str(size - 1))
    manifest = build_index([corpus], index_copy, embedder)
    assert [s.key for s in manifest.sources] == ["support.json"]
    assert re.match(rf"{ARTICLE.name}: {size:,} bytes is over the {size - 1:,}-byte limit .*--max-doc-bytes or QA_MAX_DOC_BYTES",
                    str(manifest.skipped[0]))
    monkeypatch.setenv("QA_MAX_DOC_BYTES", str(size))
    build_index([corpus], index_copy, embedder)
    assert read_manifest(index_copy)["passage_count"] > 19


def test_the_cli_takes_a_document_size_limit(index_copy, tmp_path, capsys, monkeypatch):
    corpus = make_second_corpus(tmp_path / "corpus")
    before = folder_state(index_copy)
    assert cli_main(["build", str(corpus), "--index", str(index_copy), "--max-doc-bytes", "100", "-q"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("error: no readable documents") and "is over the 100-byte limit for one document" in err
    monkeypatch.setenv("QA_MAX_DOC_BYTES", "20KB")
    assert cli_main(["build", str(corpus), "--index", str(index_copy), "-q"]) == 2
    assert "QA_MAX_DOC_BYTES must be a whole number of bytes, got '20KB'" in capsys.readouterr().err
    assert folder_state(index_copy) == before
