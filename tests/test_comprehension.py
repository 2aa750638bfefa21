"""The reader (qa/comprehension): windows, its shipped weights, what it reads, and how answers use it."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

import pytest

from qa.comprehension import (INT8_RECIPE, WEIGHTS_DIR, Comprehension, ReaderError, installed_base_dir,
                              verify_weights)
from qa.comprehension.windows import Windower, load_tokenizer

from .conftest import ROOT

GOVERNOR = ("Upon his arrival in St. Petersburg, Díaz-Canel also held a meeting with the local governor, "
            "Alexander Beglov, reaffirming the historical ties between the two nations.")


@pytest.fixture(scope="module")
def windower():
    return Windower(load_tokenizer(installed_base_dir()), max_tokens=64, overlap=16)


def test_a_long_passage_is_read_in_overlapping_windows_whose_offsets_are_its_own_text(windower):
    passage = " ".join(f"Sentence {i} names the town of Place{i}." for i in range(40))
    windows = windower("Which town?", passage)
    assert len(windows) > 2
    for window in windows:
        assert len(window.input_ids) <= 64
        inside = window.offsets[window.offsets[:, 0] >= 0]
        assert all(passage[a:b].strip() for a, b in inside)  # every passage token maps to passage text
    first_end = windows[0].offsets[:, 1].max()
    assert windows[1].first_char < first_end  # neighbours overlap, so no answer is cut in two
    at = passage.index("Place25")
    holding = [w for w in windows if w.token_span(at, at + len("Place25"))]
    assert holding
    start, end = holding[0].token_span(at, at + len("Place25"))
    assert passage[holding[0].offsets[start, 0]:holding[0].offsets[end, 1]] == "Place25"


def test_the_shipped_weights_are_small_and_match_their_card():
    card = verify_weights(WEIGHTS_DIR)
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.iterdir())
    assert total <= 10 * 1024 * 1024
    assert set(card["files"]) == {p.name for p in WEIGHTS_DIR.iterdir()} - {"reader.json"}
    assert card["base_weights_sha256"] == __import__("hashlib").sha256(
        (installed_base_dir() / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["missing", "altered"])
def test_a_missing_or_damaged_weights_file_is_one_line_naming_it(tmp_path, damage):
    weights = tmp_path / "model"
    shutil.copytree(WEIGHTS_DIR, weights)
    target = weights / "heads.safetensors"
    if damage == "missing":
        target.unlink()
    else:
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
    with pytest.raises(ReaderError, match=r"heads\.safetensors is (missing|damaged)"):
        Comprehension(weights, cache_dir=tmp_path / "cache").warm_up()


def test_qa_ask_with_damaged_weights_prints_one_line_naming_the_file(tmp_path, article_index):
    weights = tmp_path / "model"
    shutil.copytree(WEIGHTS_DIR, weights)
    (weights / "reader.json").write_text("{not json", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "qa.cli", "ask", "Who is the governor?", "--index", str(article_index)],
                         capture_output=True, text=True, env={**__import__("os").environ, "QA_READER": str(weights)},
                         timeout=300, cwd=ROOT)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0, run.stderr
    assert "reader.json" in run.stderr and run.stderr.startswith("error: reader weights:")


@pytest.fixture(scope="module")
def reader():
    return Comprehension().warm_up()


OTHER = "In June 2024, Russian warships, including a frigate and a submarine, docked at the port of Havana."


@pytest.mark.parametrize("question", [
    "Who did Díaz-Canel meet in St. Petersburg?",
    pytest.param("Who is the governor of St. Petersburg?", marks=pytest.mark.xfail(
        strict=True, reason="measured miss of the shipped reader: its span is 'Díaz-Canel' (docs/reader.md)")),
])
def test_the_reader_finds_the_answer_words(reader, question):
    holding = reader.read(question, [GOVERNOR])[0]
    assert GOVERNOR[holding.start:holding.end] == "Alexander Beglov"


def test_the_reader_prefers_the_passage_that_holds_the_answer(reader):
    holding, other = reader.read("Who is the governor of St. Petersburg?", [GOVERNOR, OTHER])
    assert holding.answerable >= 0.5 > other.answerable


def test_the_reader_reads_a_pair_the_same_alone_and_in_a_batch(reader):
    pairs = [("Who is the governor?", GOVERNOR), ("When did the warships dock?", "Warships docked in June 2024."),
             ("hi", "")]
    together = reader.read_pairs(pairs)
    alone = [reader.read_pairs([p])[0] for p in pairs]
    for a, b in zip(together, alone):
        assert (a.start, a.end) == (b.start, b.end)
        assert a.answerable == pytest.approx(b.answerable, abs=1e-4)


def test_windows_are_batched_by_length_and_read_as_in_one_padded_batch(reader, monkeypatch):
    """A long passage's short last window is not padded to its first's length; the readings are the same."""
    import qa.comprehension as comprehension

    long = " ".join([GOVERNOR] * 6)  # two windows, the second shorter
    pairs = [("Who is the governor?", long), ("When did the warships dock?", "Warships docked in June 2024."),
             ("Who is the governor of St. Petersburg?", GOVERNOR)]
    windows = [w for q, text in pairs for w in reader._windower(q, text, limit=2)]
    lengths = [[len(windows[i].input_ids) for i in batch] for batch in comprehension._batches(windows)]
    assert len(lengths) > 1 and sorted(n for b in lengths for n in b) == sorted(len(w.input_ids) for w in windows)
    assert all(max(b) <= comprehension.PADDING * min(b) and len(b) <= comprehension.BATCH for b in lengths)
    grouped = reader.read_pairs(pairs)
    monkeypatch.setattr(comprehension, "PADDING", float("inf"))  # one batch, padded to the longest window
    assert len(comprehension._batches(windows)) == 1
    for a, b in zip(grouped, reader.read_pairs(pairs)):
        assert (a.start, a.end) == (b.start, b.end)
        assert a.answerable == pytest.approx(b.answerable, abs=1e-5)


def test_no_session_of_ours_spins_its_idle_threads(reader, embedder):
    """ask() runs the embedder's session and then the reader's on the same cores; a spinning pool would hold them."""
    from qa.onnx_runtime import NO_SPINNING

    encoder = embedder.warm_up()
    assert embedder.active_backend == "onnx"  # the premise: the tests' embedder runs ONNX Runtime too
    for session in (reader._session, encoder.session(2)):
        assert session.get_session_options().get_session_config_entry(NO_SPINNING[0]) == NO_SPINNING[1]


def test_every_answer_span_lies_inside_its_quote_and_the_quote_in_its_source(bot):
    for question in ("Who did Díaz-Canel meet in St. Petersburg?", "How many mass graves are at the memorial cemetery?",
                     "In what year did Fidel Castro visit Leningrad?"):
        answer = bot.ask(question)
        assert answer.answered, (question, answer.outcome, answer.confidence)
        c = answer.citations[0]
        passage = next(h.passage for h in answer.passages if h.passage.id == c.passage_id)
        assert passage.text[c.start - passage.start:c.end - passage.start] == c.quote == answer.text
        assert c.answer_span and 0 <= c.answer_start < c.answer_end <= len(c.quote)
        assert c.quote[c.answer_start:c.answer_end] == c.answer_span
        assert answer.to_dict()["citations"][0]["answer_start"] == c.answer_start


def _squad_folder(tmp_path, paragraphs: list[str], questions: list[tuple[str, list[str]]]):
    """A tiny SQuAD-style training folder: one document, every question about its first paragraph."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "docs.jsonl").write_text(json.dumps({"doc_id": "d", "title": "T", "paragraphs": paragraphs}) + "\n", encoding="utf-8")
    rows = [{"qid": str(i), "question": q, "doc_id": "d", "paragraph_index": 0, "answers": a, "unanswerable": not a}
            for i, (q, a) in enumerate(questions)]
    (data / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return data


def test_the_cli_trains_the_reader_from_a_folder_and_writes_a_checked_card(tmp_path):
    """A few training steps on a tiny SQuAD-style folder: the recipe runs and its card lists every file."""
    data = _squad_folder(tmp_path, [GOVERNOR, "Cuba is an island."],
                         [("Who is the governor?", ["Alexander Beglov"]), ("Where did he arrive?", ["St. Petersburg"]),
                          ("Who is the mayor of Moscow?", [])] * 8)
    out = tmp_path / "weights"
    run = subprocess.run([sys.executable, "-m", "qa.cli", "train", "--data", str(data), "--out", str(out), "--threads", "1"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    card = verify_weights(out)
    assert card["steps"] == card["of_steps"] >= 2 and card["pairs"]["positives"] == 16
    assert card["pairs"]["negatives_unanswerable"] == 8 and card["data"]["questions.jsonl"]
    assert {"adapter_model.safetensors", "adapter_config.json", "heads.safetensors"} <= set(card["files"])
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["target_modules"] == sorted(config["target_modules"]), "set order would change the file's hash run to run"
    assert str(ROOT) not in json.dumps(config) and ".venv" not in json.dumps(config), "no path of this machine"


def test_a_reader_trained_with_another_adapter_rank_records_it_and_reads(tmp_path):
    """`qa train --lora-rank` (the capacity experiment of docs/reader.md): the card and peft's config say the
    rank, alpha stays twice the rank, and the weights merge, export and read like the shipped ones."""
    data = _squad_folder(tmp_path, [GOVERNOR], [("Who is the governor?", ["Alexander Beglov"])] * 4)
    out = tmp_path / "weights"
    run = subprocess.run([sys.executable, "-m", "qa.cli", "train", "--data", str(data), "--out", str(out), "--threads", "1",
                          "--lora-rank", "4"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    card = verify_weights(out)
    assert (card["recipe"]["lora_rank"], card["recipe"]["lora_alpha"]) == (4, 8)
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert (config["r"], config["lora_alpha"]) == (4, 8)
    reading = Comprehension(out, cache_dir=tmp_path / "cache").read("Who is the governor?", [GOVERNOR])[0]
    assert 0.0 <= reading.answerable <= 1.0 and 0 <= reading.start <= reading.end <= len(GOVERNOR)


@pytest.fixture
def int8_cache(tmp_path, reader):
    """A cache holding a copy of the fp32 export (so no test exports again), where int8 files get made."""
    shutil.copytree(reader.folder, tmp_path / "reader" / reader.folder.name)
    return tmp_path


def test_the_int8_reader_is_quantised_once_from_the_export_and_finds_the_same_words(int8_cache, reader):
    quick = Comprehension(cache_dir=int8_cache, precision="int8").warm_up()
    # int8 weights take a quarter of fp32's bytes; the per-channel scales and what stays fp32 add a little
    assert (quick.folder / "model.int8.onnx").stat().st_size < 0.4 * (quick.folder / "model.onnx").stat().st_size
    holding, other = quick.read("Who did Díaz-Canel meet in St. Petersburg?", [GOVERNOR, OTHER])
    assert GOVERNOR[holding.start:holding.end] == "Alexander Beglov"
    fp32 = reader.read("Who did Díaz-Canel meet in St. Petersburg?", [GOVERNOR])[0]
    assert holding.answerable == pytest.approx(fp32.answerable, abs=0.1) and holding.answerable > other.answerable
    made = (quick.folder / "model.int8.onnx").stat().st_mtime_ns
    Comprehension(cache_dir=int8_cache, precision="int8").warm_up()  # a second load uses the file made
    assert (quick.folder / "model.int8.onnx").stat().st_mtime_ns == made


def test_a_damaged_int8_file_is_quantised_again(int8_cache, caplog):
    first = Comprehension(cache_dir=int8_cache, precision="int8").warm_up()
    (first.folder / "model.int8.onnx").write_bytes(b"not a model")
    again = Comprehension(cache_dir=int8_cache, precision="int8").warm_up()
    assert "quantising it again" in caplog.text
    assert again.read("Who is the governor?", [GOVERNOR])[0].end > 0


def test_an_int8_file_made_by_an_earlier_recipe_is_quantised_again(int8_cache, caplog):
    """An int8 file in a cache from before per-channel scales (its int8.json names no recipe) is not used: its
    decisions are not the ones `python -m bench.reader_int8` measured."""
    first = Comprehension(cache_dir=int8_cache, precision="int8").warm_up()
    record = json.loads((first.folder / "int8.json").read_text(encoding="utf-8"))
    assert record["recipe"] == INT8_RECIPE
    del record["recipe"]
    (first.folder / "int8.json").write_text(json.dumps(record), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="qa.comprehension"):
        again = Comprehension(cache_dir=int8_cache, precision="int8").warm_up()
    assert "made another way; quantising it again" in caplog.text
    assert json.loads((again.folder / "int8.json").read_text(encoding="utf-8"))["recipe"] == INT8_RECIPE


def test_an_unknown_reader_precision_is_refused(monkeypatch, article_index):
    from qa import Bot

    with pytest.raises(ValueError, match="precision"):
        Comprehension(precision="fp16")
    monkeypatch.setenv("QA_READER_PRECISION", "int4")
    with pytest.raises(ValueError, match="int4"):
        Bot(article_index)


def test_a_swapped_question_names_what_its_paragraph_does_not_hold():
    """Training's look-answerable negatives: one name or number of the question that its paragraph holds is
    swapped for one of the same shape from elsewhere in the article (a year for a year, a name for a name)."""
    import random

    from qa.comprehension.training import swapped_question

    own = "In 1905 the mayor of Leeds opened the library on Park Row."
    article = [own, "The council met in 1911 and again in York.", "It moved in 19 days, said the mayor of Bristol."]
    seen = {swapped_question("When did the mayor of Leeds open the library?", own, article, random.Random(seed))
            for seed in range(20)}
    assert seen == {"When did the mayor of York open the library?", "When did the mayor of Bristol open the library?"}
    years = {swapped_question("What did the mayor open in 1905?", own, article, random.Random(seed)) for seed in range(20)}
    assert years == {"What did the mayor open in 1911?"}  # "19" is not written like a year
    assert swapped_question("What did the mayor open?", own, article, random.Random(0)) is None  # nothing to swap


def test_fp32_runs_the_fused_export_which_reads_like_the_plain_one(reader):
    """The export keeps ONNX Runtime's fusion of its graph only when it gives torch's logits too; fp32 sessions
    run it (bench.reader_latency measures the time it saves). It must read every pair as the plain graph does."""
    from qa.comprehension.export import FUSED

    record = json.loads((reader.folder / "export.json").read_text(encoding="utf-8"))
    assert record["fused"] and (reader.folder / FUSED).exists()
    assert reader._session._model_path.endswith(FUSED)
    plain = Comprehension(cache_dir=reader.folder.parent.parent, fused=False).warm_up()
    assert plain._session._model_path.endswith("model.onnx")
    question = "Who did Díaz-Canel meet in St. Petersburg?"
    for fused_reading, plain_reading in zip(reader.read(question, [GOVERNOR, OTHER]), plain.read(question, [GOVERNOR, OTHER])):
        assert (fused_reading.start, fused_reading.end) == (plain_reading.start, plain_reading.end)
        assert fused_reading.answerable == pytest.approx(plain_reading.answerable, abs=1e-4)


def test_a_damaged_fused_export_is_exported_again(int8_cache, caplog):
    from qa.comprehension.export import FUSED

    first = Comprehension(cache_dir=int8_cache)
    first.warm_up()
    (first.folder / FUSED).write_bytes(b"not a model")
    again = Comprehension(cache_dir=int8_cache).warm_up()
    assert "exporting it again" in caplog.text
    reading = again.read("Who did Díaz-Canel meet in St. Petersburg?", [GOVERNOR])[0]
    assert GOVERNOR[reading.start:reading.end] == "Alexander Beglov"
