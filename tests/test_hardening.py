"""The hardening pass (issue 12): each test failed on the code before it (commit 76fef74).

Items 2, 4 and 5 (control characters, symlinks, binary files) live with qa/documents.py's tests.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa import Answer, Bot, Citation, Hit, Passage
from qa.cli import main as cli_main
from qa.indexing import build_index
from qa.stores.folder import read_manifest

from .conftest import ARTICLE, FIXTURES, ROOT, free_port
from .rel_support import QUESTIONS, qa_env, snapshot, without_id


from .test_reliability import index_copy, sequential  # noqa: E402,F401  (shared fixtures)


def _vectors_file(folder):
    return folder / read_manifest(folder)["build_id"] / "vectors.faiss"


def _all_vectors(folder) -> np.ndarray:
    import faiss

    index = faiss.read_index(str(_vectors_file(folder)))
    return index.reconstruct_n(0, index.ntotal)


def _random_unit_vectors(path) -> None:
    """Replace a vector file by a valid IndexFlatIP of random unit vectors, as the hostile trial did."""
    import faiss

    old = faiss.read_index(str(path))
    rng = np.random.default_rng(12)
    vectors = rng.normal(size=(old.ntotal, old.d)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(old.d)
    index.add(vectors)
    faiss.write_index(index, str(path))


def _flip_one_bit(path) -> None:
    """Flip the lowest exponent bit of the last float of the last vector: a valid file, one row changed."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE = {"random-vectors": _random_unit_vectors, "one-flipped-bit": _flip_one_bit}


# --------------------------------------------------------------------------- 1. damaged-index repair


@pytest.mark.parametrize("damage", DAMAGE)
def test_1_a_rebuild_after_damage_reuses_nothing_and_answers_as_before(index_copy, article_index, embedder, sequential, damage):
    original = _all_vectors(article_index)
    DAMAGE[damage](_vectors_file(index_copy))
    assert not np.array_equal(_all_vectors(index_copy), original)  # the damage took

    build_index([ARTICLE], index_copy, embedder)

    assert read_manifest(index_copy)["reused"] == 0
    assert np.array_equal(_all_vectors(index_copy), original)
    assert snapshot(Bot(index_copy, embedder=embedder)) == sequential


@pytest.mark.parametrize("damage", DAMAGE)
def test_1_if_stale_and_info_call_a_damaged_index_damaged(index_copy, capsys, damage):
    assert cli_main(["info", "--index", str(index_copy)]) == 0
    assert "(fresh)" in capsys.readouterr().out
    assert cli_main(["build", str(ARTICLE), "--index", str(index_copy), "--if-stale", "-q"]) == 0
    assert "is up to date" in capsys.readouterr().out

    DAMAGE[damage](_vectors_file(index_copy))
    assert cli_main(["info", "--index", str(index_copy)]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED:" in out and "vectors.faiss is damaged" in out and "(fresh)" not in out
    assert cli_main(["info", "--index", str(index_copy), "--json"]) == 1
    info = json.loads(capsys.readouterr().out)
    assert info["fresh"] is False and "vectors.faiss" in info["damaged"]

    assert cli_main(["build", str(ARTICLE), "--index", str(index_copy), "--if-stale", "-q"]) == 0
    captured = capsys.readouterr()
    assert "up to date" not in captured.out
    assert "rebuilding:" in captured.err and "vectors.faiss is damaged" in captured.err
    assert "reused 0" in captured.out
    assert cli_main(["info", "--index", str(index_copy)]) == 0
    assert "(fresh)" in capsys.readouterr().out


# --------------------------------------------------------------------------- 3. history limits


def test_3_a_history_entry_over_the_question_limit_is_refused_at_once(bot):
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"history entry 2 is 5,000,000 characters long; the limit is 2,000"):
        bot.ask("And when?", history=["Who did Díaz-Canel meet?", "x" * 5_000_000])
    assert time.perf_counter() - started < 1.0
    bot.ask("And when?", history=["y" * 2000 + "   "])  # at the limit (stripped, as a question is) it is read


def test_3_only_the_history_the_follow_up_rule_reads_counts_and_is_kept(bot):
    from qa import remember
    from qa.bot import HISTORY_READ

    last = QUESTIONS[0]
    earlier = [f"Question number {i} about something else?" for i in range(500)]
    assert without_id(bot.ask("And when?", history=[*earlier, last, "  "]).to_dict()) == without_id(bot.ask("And when?", history=[last]).to_dict())
    kept: list[str] = []
    for question in [*earlier, last]:
        kept = remember(kept, question)
    assert kept == [last] and len(kept) == HISTORY_READ


def test_3_the_chat_endpoint_refuses_a_huge_history_entry(chat_url):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(chat_url, verbose=False)
    with pytest.raises(AppError, match=r"history entry 1 is 200,000 characters long; the limit is 2,000"):
        client.predict("And when?", ["z" * 200_000], api_name="/ask")


# --------------------------------------------------------------------------- shared: a small hostile corpus

HOSTILE_FAQ = [
    {"id": "motto", "question": "What is the office motto?",
     "answer": "Be kind.\u001b]0;owned\u0007 Clear\u001b[2J and\u009b31m always on time."},
    {"id": "parking", "question": "Where can visitors park?",
     "answer": "Visitors park behind the building, in the spaces marked with a blue sign."},
]


def qa_run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=qa_env(), timeout=300, **kwargs)


@pytest.fixture(scope="module")
def hostile_corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("users") / "ann" / "private-notes"
    (folder / "office").mkdir(parents=True)
    (folder / "office" / "faq.json").write_text(json.dumps(HOSTILE_FAQ), encoding="utf-8")
    shutil.copy(ARTICLE, folder / ARTICLE.name)
    return folder


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory, hostile_corpus, embedder) -> Path:
    """An index built from an absolute path, over a corpus with terminal escapes."""
    folder = tmp_path_factory.mktemp("hostile-index")
    build_index([hostile_corpus.resolve()], folder, embedder)
    return folder


# --------------------------------------------------------------------------- 6. terminal escapes


def test_6_format_answer_shows_control_characters_escaped():
    from qa.cli import format_answer

    text = "Be kind.\x1b]0;owned\x07 Clear\x1b[2J\r and\x9b31m \u202egnp.exe"
    passage = Passage(id="d:1", kind="paragraph", text=text, title="T\x1b[1m", path="d.txt", start=0, end=len(text), position=0)
    citation = Citation("d:1", "paragraph", passage.title, "d.txt", passage.label, text, 0, len(text), 1.0)
    shown = format_answer(Answer("q", text, True, 0.9, (citation,), (Hit(passage, 1.0, 0),)))
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", shown)
    assert "Be kind.\\x1b]0;owned\\x07 Clear\\x1b[2J\\r and\\x9b31m \\u202egnp.exe" in shown
    assert "T\\x1b[1m" in shown
    abstention = format_answer(Answer("q", "not covered", False, 0.1, (), (Hit(passage, 1.0, 0),)))
    assert "\x1b" not in abstention and "\\x1b]0;owned" in abstention


def test_6_qa_ask_never_prints_a_raw_escape(hostile_index):
    for extra in ([], ["--json"]):
        out = qa_run("ask", "What is the office motto?", "--index", str(hostile_index), *extra)
        assert out.returncode == 0, out.stderr
        assert "Be kind." in out.stdout
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", out.stdout), repr(out.stdout)


# --------------------------------------------------------------------------- 7. a closed pipe


@pytest.mark.parametrize("command", [["info"], ["ask", "What is the office motto?"]])
def test_7_a_reader_that_stops_early_gets_no_traceback(hostile_index, command):
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", *command, "--index", str(hostile_index)],
                            cwd=ROOT, env=qa_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `| head -1` does once it has its line; here before the first write
    err = proc.stderr.read().decode()
    proc.wait(120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert err == ""
    assert proc.returncode == 1


def test_7_qa_info_piped_into_head(hostile_index):
    out = subprocess.run(f"{shlex.quote(sys.executable)} -m qa.cli info --index {shlex.quote(str(hostile_index))} | head -1",
                         shell=True, cwd=ROOT, env=qa_env(), capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("index ") and out.stderr == ""


# --------------------------------------------------------------------------- 9. no absolute server paths


@pytest.fixture(scope="module")
def hostile_url(hostile_index, embedder):
    import ui

    app = ui.build_app(Bot(hostile_index, embedder=embedder).warm_up())
    yield ui.launch(app, "127.0.0.1", free_port(), block=False)
    app.close()


def test_9_citations_name_the_file_below_the_build_input_not_the_server_folders(hostile_index, hostile_corpus, hostile_url, embedder):
    from gradio_client import Client

    root = str(hostile_corpus.resolve())
    assert read_manifest(hostile_index)["input_paths"] == [root]  # the root stays in the manifest
    bot = Bot(hostile_index, embedder=embedder)
    for question, path in [("Where can visitors park?", "office/faq.json"),
                           ("Who did Díaz-Canel meet in St. Petersburg?", ARTICLE.name)]:
        local = bot.ask(question).to_dict()
        remote = json.loads(Client(hostile_url, verbose=False).predict(question, None, api_name="/ask"))
        for answer in (local, remote):
            assert answer["answered"] and answer["citations"][0]["path"] == path
            assert all(not p["path"].startswith("/") for p in answer["passages"])
            assert "/ann/private-notes" not in json.dumps(answer)
    out = qa_run("ask", "Where can visitors park?", "--index", str(hostile_index))
    assert f"({root}/office/faq.json:" in out.stdout  # the CLI, on this machine, shows where the file is


# --------------------------------------------------------------------------- 8. /ask with missing values


def _call_ask(url: str, body: dict) -> str:
    """POST /gradio_api/call/ask as a plain HTTP client would; the event stream of its result."""
    import httpx

    with httpx.Client(base_url=url, timeout=60) as http:
        posted = http.post("gradio_api/call/ask", json=body)
        assert posted.status_code == 200, posted.text
        return http.get(f"gradio_api/call/ask/{posted.json()['event_id']}").text


@pytest.mark.parametrize("data", [[], [None], [None, None]], ids=["empty", "null", "two-nulls"])
def test_8_ask_without_a_question_answers_with_the_reason_and_logs_one_line(chat_url, data, caplog, capfd):
    caplog.set_level(logging.INFO, logger="ui")
    capfd.readouterr()
    stream = _call_ask(chat_url, {"data": data})
    assert "event: error" in stream
    payload = json.loads(stream.split("data:", 1)[1].strip().splitlines()[0])
    assert payload["error"] == "no question: /ask takes the question and, optionally, the earlier questions"
    refused = [r for r in caplog.records if r.name == "ui"]
    assert [r.getMessage() for r in refused] == [f"/ask refused: {payload['error']}"]
    assert "Traceback" not in capfd.readouterr().err


def test_8_ask_with_the_question_alone_answers(chat_url):
    stream = _call_ask(chat_url, {"data": [QUESTIONS[0]]})
    assert "event: complete" in stream and "Beglov" in stream


# --------------------------------------------------------------------------- 10. no uploads


@pytest.mark.parametrize("size", [1_000_000, 10, 0])
def test_10_the_upload_route_is_closed(chat_url, size):
    import httpx

    files = {"files": ("notes.txt", b"x" * size, "text/plain")}
    answer = httpx.post(chat_url + "gradio_api/upload", files=files, timeout=60)
    assert answer.status_code == 403, answer.text
    assert answer.text == "uploads are disabled: this chat takes no files\n"
    assert httpx.post(chat_url + "gradio_api/upload/", files=files, timeout=60).status_code == 403
    assert httpx.get(chat_url + "config", timeout=60).status_code == 200  # the rest of the app still serves


# --------------------------------------------------------------------------- 11. the follow-up rule

PAIRS = [json.loads(line) for line in (FIXTURES / "followup_pairs.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def office_bot(tmp_path_factory, embedder) -> Bot:
    """The bundled article plus a small office FAQ (tests/fixtures/followup_faq.json)."""
    corpus = tmp_path_factory.mktemp("office")
    shutil.copy(ARTICLE, corpus / ARTICLE.name)
    shutil.copy(FIXTURES / "followup_faq.json", corpus / "followup_faq.json")
    return Bot.build([corpus], tmp_path_factory.mktemp("office-index"), embedder=embedder)


def _right(answer, expect) -> bool:
    return (not answer.answered) if expect is None else (answer.answered and expect in answer.text)


def _leans_back(question: str) -> bool:
    """The rule before this change, as the baseline: any pronoun or leading 'and' pulled the previous question in."""
    words = [w.strip("?.,!;:'\"") for w in question.lower().split()]
    anaphors = {"he", "she", "it", "they", "him", "her", "them", "his", "hers", "their", "its", "there", "then", "that", "those", "these"}
    return bool(words) and (words[0] in {"and", "also", "then", "so", "but"} or any(w in anaphors for w in words))


def test_11_the_issue_example_keeps_its_own_question(office_bot):
    answer = office_bot.ask("What is their address?", history=["When are you open?"])
    assert answer.answered and "12 Harbour Street" in answer.text
    assert office_bot.ask("And on Sundays?", history=["When are you open?"]).text.startswith("No, the office is closed")


def test_11_follow_up_pairs_are_read_better_than_by_the_old_rule(office_bot):
    """Measured on tests/fixtures/followup_pairs.jsonl; `-s` prints the counts (docs/reliability.md quotes them)."""
    now = {"follow-up": 0, "standalone": 0}
    before = {"follow-up": 0, "standalone": 0}
    wrong = []
    for pair in PAIRS:
        q, h, expect = pair["question"], pair["history"], pair["expect"]
        answer = office_bot.ask(q, history=[h])
        now[pair["kind"]] += _right(answer, expect)
        if not _right(answer, expect):
            wrong.append(q)
        old = office_bot.ask(f"{h} {q}") if _leans_back(q) else office_bot.ask(q)
        before[pair["kind"]] += _right(old, expect)
    total = {kind: sum(p["kind"] == kind for p in PAIRS) for kind in now}
    print(f"\nfollow-up pairs {total}: right now {now}, with the previous rule {before}; wrong now: {wrong}")
    assert total == {"follow-up": 10, "standalone": 15}
    # With the answer model of issue 19 (docs/reliability.md): 8 and 14. "And on Saturdays?" is answered from the
    # Sunday FAQ by itself (its question's cosine 0.956 exempts it from the checks), so the rule never reads the
    # history; "Where can visitors park their cars?" abstains ('cars' is a word the documents never use).
    assert now["standalone"] >= 14 and now["follow-up"] >= 8
    assert now["standalone"] > before["standalone"] and now["follow-up"] >= before["follow-up"]


def test_11_the_margin_is_the_best_measured(office_bot, monkeypatch):
    """The FOLLOW_UP_MARGIN sweep quoted in qa/bot.py and docs/reliability.md (`-s` prints it)."""
    import qa.bot

    chosen = qa.bot.FOLLOW_UP_MARGIN
    right = {}
    for margin in (0.0, 0.05, 0.1, 0.2, 0.3, 1.0):
        monkeypatch.setattr(qa.bot, "FOLLOW_UP_MARGIN", margin)
        right[margin] = sum(_right(office_bot.ask(p["question"], history=[p["history"]]), p["expect"]) for p in PAIRS)
    print(f"\npairs right (of {len(PAIRS)}) by FOLLOW_UP_MARGIN: {right}")
    assert right[chosen] == max(right.values())


# --------------------------------------------------------------------------- 14. known third-party warnings


def test_14_gradios_pandas_deprecations_are_filtered_and_others_still_show():
    """The pytest config silences Gradio's queue's pandas deprecations (700+ a run), nothing else."""
    import warnings

    from pandas.errors import Pandas4Warning

    with warnings.catch_warnings(record=True) as seen:  # keeps the filters pytest set from pyproject.toml
        warnings.warn_explicit("The copy keyword is deprecated", Pandas4Warning, "gradio/queueing.py", 178, module="gradio.queueing")
        warnings.warn_explicit("'future.no_silent_downcasting' is deprecated", Pandas4Warning, "gradio/queueing.py", 176, module="gradio.queueing")
        warnings.warn_explicit("a deprecation of our own", DeprecationWarning, "qa/bot.py", 1, module="qa.bot")
        warnings.warn_explicit("another library's", Pandas4Warning, "gradio/blocks.py", 1, module="gradio.blocks")
    assert sorted(str(w.message) for w in seen) == ["a deprecation of our own", "another library's"]
