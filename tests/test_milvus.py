"""The Milvus store (Milvus Lite in a tmp folder) answers as the index folder does; its builds commit by alias."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="the 'scale' extra is not installed")

from qa import Bot  # noqa: E402
from qa.errors import IndexMismatchError, IndexNotFoundError  # noqa: E402
from qa.indexing import build_index  # noqa: E402
from qa.stores import collection_name, open_index, parse_store  # noqa: E402

from .conftest import ARTICLE, FIXTURES, ROOT  # noqa: E402
from .rel_support import QUESTIONS, Build, make_second_corpus, qa_env, snapshot, without_id  # noqa: E402

BUNDLED = [json.loads(line)["question"] for line in (FIXTURES / "bundled_questions.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def milvus_db(tmp_path_factory, embedder) -> str:
    """A Milvus Lite file holding the bundled article's index (collection qa_article)."""
    store = f"milvus:{tmp_path_factory.mktemp('milvus') / 'qa.db'}"
    build_index([ARTICLE], "article", embedder, store=store)
    return store


@pytest.fixture(scope="module")
def milvus_bot(milvus_db, embedder):
    return Bot("article", store=milvus_db, embedder=embedder).warm_up()


def test_milvus_answers_every_bundled_question_as_the_folder_store_does(bot, milvus_bot):
    questions = list(dict.fromkeys(BUNDLED + QUESTIONS))
    assert snapshot(milvus_bot, questions) == snapshot(bot, questions)


def test_milvus_ranks_the_same_passages_with_the_same_scores(bot, milvus_bot):
    for question in BUNDLED:
        mine, theirs = milvus_bot.ask(question, k=10), bot.ask(question, k=10)
        assert [(h.passage.id, h.score) for h in mine.passages] == [(h.passage.id, h.score) for h in theirs.passages]


def test_milvus_holds_the_same_passages_keys_and_vectors(bot, milvus_bot):
    folder, milvus = bot.index, milvus_bot.index
    assert milvus.passages == folder.passages
    assert np.array_equal(milvus.keys, folder.keys)
    rows = np.arange(len(folder.keys))[::-1]
    assert np.array_equal(milvus.key_vectors(rows), folder.key_vectors(rows))
    queries = bot.embedder.encode(BUNDLED[:4])
    assert np.array_equal(milvus.nearest_keys(queries, 10), folder.nearest_keys(queries, 10))


def test_key_vectors_are_fetched_once_then_served_from_the_cache(bot, milvus_db, monkeypatch):
    folder, milvus = bot.index, open_index(milvus_db, "article")  # a fresh load: an empty cache
    fetched: list[int] = []
    real_get = milvus.client.get
    monkeypatch.setattr(milvus.client, "get", lambda *a, **kw: fetched.append(len(kw["ids"])) or real_get(*a, **kw))
    rows = np.arange(len(folder.keys))[::-1]
    assert np.array_equal(milvus.key_vectors(rows), folder.key_vectors(rows))
    assert fetched == [len(rows)]
    again = rows[::3]
    assert np.array_equal(milvus.key_vectors(again), folder.key_vectors(again))
    assert fetched == [len(rows)]  # every vector from the cache, none from Milvus


def test_a_dense_search_caches_the_vectors_of_its_hits_exactly(bot, milvus_db):
    folder, milvus = bot.index, open_index(milvus_db, "article")
    hits = milvus.nearest_keys(bot.embedder.encode(BUNDLED[:1]), 10)[0]
    cached, missing = milvus.cache.take([int(h) for h in hits])
    assert not missing
    assert np.array_equal(np.stack([cached[int(h)] for h in hits]), folder.key_vectors(hits))


def test_the_cache_keeps_at_most_its_capacity_and_answers_alike(bot, milvus_db):
    from qa.stores.milvus import KeyVectorCache

    folder, milvus = bot.index, open_index(milvus_db, "article")
    milvus.cache = KeyVectorCache(capacity=5)
    rows = np.arange(len(folder.keys))
    for part in (rows, rows[:9], rows[-9:]):
        assert np.array_equal(milvus.key_vectors(part), folder.key_vectors(part))
        assert len(milvus.cache) == 5


def test_milvus_bm25_is_bm25s_on_the_passages_it_returns(bot, milvus_bot):
    for question in BUNDLED:
        mine, theirs = milvus_bot.index.lexical.scores(question), bot.index.lexical.scores(question)
        found = np.flatnonzero(mine)
        assert set(found) == set(np.flatnonzero(theirs))  # a small corpus: every matching passage comes back
        np.testing.assert_allclose(mine[found], theirs[found], rtol=1e-5)
        assert milvus_bot.index.lexical.idf() == pytest.approx(bot.index.lexical.idf())


def test_the_manifest_keeps_its_promises(milvus_db, embedder):
    index = open_index(milvus_db, "article")
    assert index.manifest["model"] == embedder.model_id
    assert index.manifest["passage_count"] == len(index.passages)
    assert index.manifest["key_count"] == len(index.keys)
    with pytest.raises(IndexMismatchError, match="was built with model"):
        open_index(milvus_db, "article", model="another-model")
    with pytest.raises(IndexNotFoundError, match="no index 'qa_nothing'"):
        open_index(milvus_db, "nothing")


@pytest.mark.parametrize("value, message", [
    ("milvus:qa.sqlite", "milvus:PATH.db"), ("redis://host", "store must be"), ("faiss", "store must be"),
])
def test_a_bad_store_is_refused_in_one_line(value, message):
    with pytest.raises(ValueError, match=message):
        parse_store(value)


def test_collection_names_are_milvus_identifiers():
    assert collection_name("index") == "qa_index"
    assert collection_name("/srv/my-faq.v2/") == "qa_my_faq_v2"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], cwd=ROOT, env=env or qa_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["write", "commit"])
def test_a_build_killed_mid_way_leaves_the_previous_collection_answering(stage, tmp_path, bot):
    """SIGKILL a second build into the same Milvus Lite file: the alias still names the first build."""
    store = f"milvus:{tmp_path / 'qa.db'}"
    first = _cli("build", str(ARTICLE), "--store", store, "--index", "faq", "-q")
    assert first.returncode == 0, first.stderr
    build = Build(make_second_corpus(tmp_path / "corpus"), "--store", store, "--index", "faq",
                  env=qa_env(QA_TEST_PAUSE_AT=stage))
    build.wait_for(f"paused at {stage}")
    assert build.kill() == -9
    asked = _cli("ask", QUESTIONS[0], "--store", store, "--index", "faq", "--json")
    assert asked.returncode == 0, asked.stderr
    assert without_id(json.loads(asked.stdout)) == without_id(bot.ask(QUESTIONS[0]).to_dict())
    # The next build drops what the killed one left behind and answers from the new corpus.
    again = _cli("build", str(tmp_path / "corpus"), "--store", store, "--index", "faq", "-q")
    assert again.returncode == 0, again.stderr
    info = json.loads(_cli("info", "--store", store, "--index", "faq", "--json").stdout)
    assert info["passages"] == bot.index.manifest["passage_count"] + 2
    from qa.stores import milvus_store

    target = milvus_store(parse_store(store), "faq")
    previous = json.loads(target.client.describe_collection(target.current())["properties"]["qa.manifest"])["previous_collection"]
    assert sorted(target.client.list_collections()) == sorted([target.current(), target.current() + "_p", previous, previous + "_p"])
    assert previous.startswith("qa_faq__")  # the first build, kept for processes still answering from it; the killed one is gone


def test_milvus_without_the_extra_is_one_line_naming_it(tmp_path):
    code = "import sys; sys.modules['pymilvus'] = None; from qa.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "ask", "hello", "--store", f"milvus:{tmp_path / 'q.db'}"],
                          cwd=ROOT, env=qa_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: the Milvus store needs the 'scale' extra (pymilvus is not installed): pip install -e '.[scale]'"
    ]


def test_importing_qa_imports_neither_milvus_nor_ray():
    code = "import qa, qa.cli, qa.bot, qa.stores, qa.indexing, sys; print(sorted(m for m in ('pymilvus', 'ray') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=qa_env(), capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def test_eval_on_milvus_measures_what_it_measures_on_folders_and_leaves_nothing(tmp_path, embedder):
    from qa.evaluation import evaluate_set
    from qa.stores.milvus import MilvusStore

    from .conftest import EVAL

    if not (EVAL / "covidqa_qsim").exists():
        pytest.skip("../shared/eval is not beside the checkout")
    db = tmp_path / "eval.db"
    kept = build_index([ARTICLE], "article", embedder, store=f"milvus:{db}")  # an index the store already holds
    on_folder = evaluate_set(EVAL / "covidqa_qsim", embedder, [], limit=60, out_of_scope=0)
    on_milvus = evaluate_set(EVAL / "covidqa_qsim", embedder, [], limit=60, out_of_scope=0, store=f"milvus:{db}")
    for name in ("recall@1", "recall@5", "mrr@10", "answered_in_scope"):
        assert on_milvus["ours"][name] == pytest.approx(on_folder["ours"][name], abs=1 / 60), name
    assert on_milvus["baselines"] == on_folder["baselines"]
    client = MilvusStore(str(db), "qa_article").client
    assert client.list_aliases()["aliases"] == ["qa_article"]  # the eval's own index is gone, the user's is untouched
    assert sorted(client.list_collections()) == [kept["collection"], kept["collection"] + "_p"]


def test_qa_eval_takes_a_store_and_refuses_a_bad_one_in_one_line(tmp_path):
    from .conftest import EVAL

    result = subprocess.run([sys.executable, "-m", "qa.cli", "eval", str(EVAL / "covidqa_qsim"), "--store", "redis://x"],
                            capture_output=True, text=True, cwd=ROOT, env=qa_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: store must be folder, milvus:PATH.db or http(s)://HOST:PORT, got 'redis://x'"]


def test_the_web_chat_takes_a_store(tmp_path, capsys):
    import ui

    assert ui.main(["--store", f"milvus:{tmp_path / 'empty.db'}", "--index", "nothing"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: no index 'qa_nothing' in milvus:")
    assert ui.main(["--store", "redis://x", "--index", "nothing"]) == 2
    assert capsys.readouterr().err.strip() == "error: store must be folder, milvus:PATH.db or http(s)://HOST:PORT, got 'redis://x'"


def test_a_milvus_rebuild_embeds_only_new_text_and_keeps_the_vectors(tmp_path, embedder):
    store = f"milvus:{tmp_path / 'qa.db'}"
    first = build_index([ARTICLE], "kb", embedder, store=store)
    assert first["reused"] == 0 and first["embedded"] > 0
    before = open_index(store, "kb")
    vectors = before.key_vectors(np.arange(before.key_count))
    second = build_index([make_second_corpus(tmp_path / "corpus")], "kb", embedder, store=store)
    assert second["reused"] >= before.key_count and 0 < second["embedded"] < first["embedded"]
    after = open_index(store, "kb")
    same = [i for i, p in enumerate(after.passages) if p.path == ARTICLE.name]
    rows = np.flatnonzero(np.isin(after.keys[:, 0], same))
    assert np.array_equal(after.key_vectors(rows), vectors)
    # Vectors built by another model are never reused.
    from qa.stores.milvus import MilvusStore

    assert MilvusStore(str(tmp_path / "qa.db"), "qa_kb").previous("another-model") is None


def test_a_chat_over_milvus_lite_switches_to_each_new_build_without_a_restart(tmp_path, embedder):
    store = f"milvus:{tmp_path / 'qa.db'}"
    build_index([ARTICLE], "kb", embedder, store=store)
    serving = Bot("kb", store=store, embedder=embedder).warm_up()
    answer = without_id(serving.ask(QUESTIONS[0]).to_dict())
    first = serving.index.manifest.build_id
    rebuilt = Bot.build([make_second_corpus(tmp_path / "corpus")], "kb", embedder=embedder, store=store)
    assert without_id(serving.ask(QUESTIONS[0]).to_dict()) == without_id(rebuilt.ask(QUESTIONS[0]).to_dict())
    assert serving.index.manifest.build_id == rebuilt.built.build_id != first
    assert any(p.id == "support:password" for p in serving.passages)
    Bot.build([ARTICLE], "kb", embedder=embedder, store=store)
    assert without_id(serving.ask(QUESTIONS[0]).to_dict()) == answer
    assert not any(p.id == "support:password" for p in serving.passages)


def test_a_build_held_by_a_request_keeps_answering_after_one_rebuild_and_says_so_after_two(tmp_path, embedder):
    from qa.errors import IndexNotFoundError as Gone

    store = f"milvus:{tmp_path / 'qa.db'}"
    build_index([ARTICLE], "kb", embedder, store=store)
    held = open_index(store, "kb")  # what a request in flight holds while builds commit
    query = embedder.encode([QUESTIONS[0]])
    rows = held.nearest_keys(query, 10)
    build_index([make_second_corpus(tmp_path / "corpus")], "kb", embedder, store=store)
    assert np.array_equal(held.nearest_keys(query, 10), rows)  # still its own build, whole
    build_index([ARTICLE], "kb", embedder, store=store)
    with pytest.raises(Gone, match=r"is gone: the index was rebuilt twice since; restart"):
        held.nearest_keys(query, 10)
    assert np.array_equal(open_index(store, "kb").nearest_keys(query, 10), rows)


@pytest.fixture
def milvus_server(tmp_path):
    """A `milvus-lite server` in its own process (the way several processes share one Milvus Lite); its URI."""
    import os
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "milvus-lite"), "server",
                               "--data-dir", str(tmp_path / "milvus"), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "milvus-lite server did not start"
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_milvus_server_by_uri_answers_a_second_process_as_the_folder_store_does(milvus_server, bot, embedder, tmp_path):
    build_index([ARTICLE], "kb", embedder, store=milvus_server)  # this process builds ...
    question = BUNDLED[0]
    done = subprocess.run([sys.executable, "-m", "qa.cli", "ask", question, "--store", milvus_server, "--index", "kb", "--json"],
                          cwd=ROOT, env=qa_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr  # ... and another asks, while the server holds the data
    assert without_id(json.loads(done.stdout)) == without_id(bot.ask(question).to_dict())
    served = Bot("kb", store=milvus_server, embedder=embedder).warm_up()
    assert snapshot(served, BUNDLED) == snapshot(bot, BUNDLED)


def test_a_lite_connection_left_idle_does_not_cost_the_next_connection_its_connect(tmp_path):
    """pymilvus pings an idle connection every 10 s, more often than Milvus Lite's gRPC server allows without
    calls; the server then closes it ("too_many_pings") and the next Connect failed, a new store's too: the
    eval test above failed so in full runs, after a quiet spell. A store on a Lite file does not ping."""
    import time

    from qa.stores.milvus import MilvusStore

    uri = str(tmp_path / "idle.db")
    first = MilvusStore(uri, "idle")
    assert first.current() is None
    time.sleep(100)  # a quiet spell long enough for the server to have closed a pinging connection
    assert MilvusStore(uri, "idle").current() is None
    assert first.current() is None
