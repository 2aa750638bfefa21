"""Reliability across processes: builds killed with SIGKILL, two builds at once, and no outbound connection.

Each build here is a real `python -m qa.cli build` subprocess. `QA_TEST_PAUSE_AT`
(the on_stage hook of qa.indexing.build_index, set by tests/paused_build.py) stops it at a named stage, where the test kills it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from qa import Bot, IndexBusyError, QAError
from qa.indexing import build_index, collect_passages
from qa.stores.folder import MANIFEST, load_index, read_manifest

from .conftest import ARTICLE, ROOT
from .rel_support import EXTRA_FAQ, QUESTIONS, Build, copy_index, folder_state, make_second_corpus, qa_env, snapshot


@pytest.fixture(scope="module")
def sequential(bot) -> list[dict]:
    """The answers of the index that every test starts from (the bundled article's)."""
    return snapshot(bot)


def _top_level(folder) -> set[str]:
    return {p.name for p in folder.iterdir()}


# What an aborted build leaves beside the previous index, by the stage it was killed at.
LEFTOVERS = {
    "parse": set(),  # nothing written yet
    "embed": set(),  # holds the lock; nothing written yet
    "write": {".tmp-"},  # a half-written staging folder
    "commit": {"build"},  # a complete build folder that no manifest names
    "manifest": {"build", ".manifest.json."},  # and the new manifest, not yet moved into place
}


def _kind(name: str) -> str:
    for prefix in (".tmp-", ".manifest.json."):
        if name.startswith(prefix):
            return prefix
    return "build"


@pytest.mark.parametrize("stage", list(LEFTOVERS))
def test_a_build_killed_mid_way_leaves_the_previous_index_answering_the_same(stage, tmp_path, article_index, embedder, sequential):
    folder = copy_index(article_index, tmp_path / "index")
    before = folder_state(folder)
    corpus = make_second_corpus(tmp_path / "corpus")

    build = Build(corpus, "--index", folder, env=qa_env(QA_TEST_PAUSE_AT=stage))
    build.wait_for(f"paused at {stage}")
    assert build.kill() == -signal.SIGKILL

    after = folder_state(folder)
    assert {k: after.get(k) for k in before} == before, "a file of the previous index changed"
    new = _top_level(folder) - {p.split("/")[0] for p in before}
    assert {_kind(n) for n in new} == LEFTOVERS[stage], new
    assert snapshot(Bot(folder, embedder=embedder)) == sequential

    build_index([corpus], folder, embedder)
    manifest = read_manifest(folder)
    assert _top_level(folder) == {MANIFEST, ".lock", manifest["build_id"]}
    answers = snapshot(Bot(folder, embedder=embedder))
    assert answers != sequential
    assert answers[QUESTIONS.index(EXTRA_FAQ[0]["question"])]["text"] == EXTRA_FAQ[0]["answer"]


@pytest.mark.parametrize("stage", ["embed", "write", "manifest", "cleanup"])
def test_an_update_of_an_hnsw_index_killed_mid_way_leaves_one_whole_index(stage, tmp_path, embedder):
    """An update (qa/incremental.py) adds vectors to the loaded HNSW graph; a kill at any stage loses nothing."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(ARTICLE, corpus / ARTICLE.name)
    (corpus / "support.json").write_text(json.dumps(EXTRA_FAQ[:1]), encoding="utf-8")
    folder = tmp_path / "index"
    build_index([corpus], folder, embedder, vector_index="hnsw")
    before, answers_before = folder_state(folder), snapshot(Bot(folder, embedder=embedder))
    (corpus / "support.json").write_text(json.dumps(EXTRA_FAQ), encoding="utf-8")

    build = Build(corpus, "--index", folder, "--vector-index", "hnsw", env=qa_env(QA_TEST_PAUSE_AT=stage))
    build.wait_for(f"paused at {stage}")
    assert build.kill() == -signal.SIGKILL

    killed = snapshot(Bot(folder, embedder=embedder))
    if stage == "cleanup":  # committed: the update answers, and the old build is still there to clean
        assert killed != answers_before
        assert killed[QUESTIONS.index(EXTRA_FAQ[1]["question"])]["text"] == EXTRA_FAQ[1]["answer"]
    else:
        assert {k: folder_state(folder).get(k) for k in before} == before
        assert killed == answers_before
    manifest = build_index([corpus], folder, embedder, vector_index="hnsw")
    assert manifest["update"]["mode"] == "incremental"
    assert _top_level(folder) == {MANIFEST, ".lock", manifest["build_id"]}
    full = tmp_path / "full"
    build_index([corpus], full, embedder, vector_index="hnsw")
    assert [a["citations"] for a in snapshot(Bot(folder, embedder=embedder))] == [
        a["citations"] for a in snapshot(Bot(full, embedder=embedder))
    ]


@pytest.mark.slow
def test_a_build_killed_while_the_model_is_embedding_leaves_the_previous_index(tmp_path, article_index, embedder, sequential):
    """No pause this time: the build announces the embedding stage, runs on, and is killed inside encode()."""
    folder = copy_index(article_index, tmp_path / "index")
    before = folder_state(folder)
    corpus = make_second_corpus(tmp_path / "corpus")
    words = ARTICLE.read_text(encoding="utf-8").split()
    paragraphs = [" ".join(words[(i * 37) % 700 :][:60]) + f" Item {i}." for i in range(600)]
    (corpus / "long.md").write_text("\n\n".join(paragraphs), encoding="utf-8")

    build = Build(corpus, "--index", folder, env=qa_env(QA_TEST_PAUSE_AT="embed", QA_TEST_PAUSE_SECONDS="0"))
    build.wait_for("paused at embed")
    time.sleep(1.0)
    assert build.proc.poll() is None, "the build finished embedding 600 paragraphs in a second"
    assert build.kill() == -signal.SIGKILL

    assert folder_state(folder) == before
    assert snapshot(Bot(folder, embedder=embedder)) == sequential


def test_a_build_killed_after_its_commit_leaves_the_new_index_whole(tmp_path, article_index, embedder, sequential):
    folder = copy_index(article_index, tmp_path / "index")
    old_id = read_manifest(folder)["build_id"]
    corpus = make_second_corpus(tmp_path / "corpus")

    build = Build(corpus, "--index", folder, env=qa_env(QA_TEST_PAUSE_AT="cleanup"))
    build.wait_for("paused at cleanup")
    assert build.kill() == -signal.SIGKILL

    new_id = read_manifest(folder)["build_id"]
    assert new_id != old_id and (folder / old_id).is_dir()  # committed, not yet cleaned
    killed_answers = snapshot(Bot(folder, embedder=embedder))
    assert killed_answers != sequential

    build_index([corpus], folder, embedder)
    assert _top_level(folder) == {MANIFEST, ".lock", read_manifest(folder)["build_id"]}
    assert snapshot(Bot(folder, embedder=embedder)) == killed_answers


@pytest.mark.slow
def test_two_builds_at_once_run_one_after_the_other_and_never_mix(tmp_path, article_index, embedder):
    folder = copy_index(article_index, tmp_path / "index")
    corpus_a = make_second_corpus(tmp_path / "corpus-a")
    corpus_b = tmp_path / "corpus-b"
    corpus_b.mkdir()
    (corpus_b / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
    (corpus_b / "orders.csv").write_text(
        "id,question,answer\nship,When do orders ship?,Orders ship on the next working day.\n", encoding="utf-8"
    )
    known = {
        "old": {p.id for p in load_index(folder).passages},
        "a": {p.id for p in collect_passages([corpus_a])[0]},
        "b": {p.id for p in collect_passages([corpus_b])[0]},
    }
    assert len({frozenset(v) for v in known.values()}) == 3

    seen: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.wait(0.01):  # a short breath: loading flat out would starve the builds of CPU
            try:
                ids = {p.id for p in load_index(folder).passages}
            except QAError as exc:
                errors.append(str(exc))
                continue
            seen.append(next((name for name, s in known.items() if s == ids), f"a mix of {len(ids)} passages"))

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        first = Build(corpus_a, "--index", folder, env=qa_env(QA_TEST_PAUSE_AT="write", QA_TEST_PAUSE_SECONDS="4"))
        first.wait_for("paused at write")  # holds the lock, half its files written
        with pytest.raises(IndexBusyError, match="another build is writing the index"):
            build_index([corpus_b], folder, embedder, lock_wait=0)
        second = Build(corpus_b, "--index", folder)
        second.wait_for("waiting up to")
        assert first.finish() == 0, first.lines
        assert second.finish() == 0, second.lines
    finally:
        stop.set()
        watcher.join(30)

    assert not errors, errors[:3]
    assert set(seen) <= {"old", "a", "b"}, sorted(set(seen))
    order = [name for i, name in enumerate(seen) if i == 0 or seen[i - 1] != name]
    assert order == ["old", "a", "b"], order  # the first build, then the one that waited
    assert {p.id for p in load_index(folder).passages} == known["b"]
    assert _top_level(folder) == {MANIFEST, ".lock", read_manifest(folder)["build_id"]}


# --------------------------------------------------------------------------- no network

AUDIT_HOOK = textwrap.dedent('''
    """Loaded at start-up (PYTHONPATH): records every network attempt and refuses those off this machine."""
    import json, os, socket, sys

    _LOG = os.environ["QA_AUDIT_LOG"]
    _LOCAL = {"127.0.0.1", "::1", "localhost", "0.0.0.0", "::"}

    def _is_local(host):
        return host is None or isinstance(host, (bytes, bytearray)) or str(host) in _LOCAL

    def _hook(event, args):
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            address = args[1] if event != "socket.sendmsg" else args[-1]
            if isinstance(address, tuple):
                host = address[0]
            else:  # an AF_UNIX path: stays on this machine
                host = None
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
            host = args[0]
        else:
            return
        if _is_local(host):
            return
        with open(_LOG, "a") as fh:
            fh.write(json.dumps({"event": event, "host": str(host), "pid": os.getpid()}) + "\\n")
        raise OSError(f"outbound network attempt blocked by the test: {event} {host}")

    sys.addaudithook(_hook)
''')


@pytest.fixture
def audited(tmp_path):
    """Run Python with the audit hook; returns (run, attempts)."""
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(AUDIT_HOOK, encoding="utf-8")
    log = tmp_path / "network.jsonl"
    env = qa_env(PYTHONPATH=str(hook_dir), QA_AUDIT_LOG=str(log))
    # Prove the code is offline by itself: no offline switches from the environment.
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "GRADIO_ANALYTICS_ENABLED"):
        env.pop(var, None)

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, env={**env, **extra_env}, capture_output=True, text=True, timeout=300
        )

    def attempts() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return run, attempts


def test_the_audit_hook_catches_an_outbound_connection(audited):
    run, attempts = audited
    probe = run("-c", "import socket; s = socket.socket(); s.settimeout(0.2); s.connect(('192.0.2.1', 80))")
    assert probe.returncode != 0 and "blocked by the test" in probe.stderr
    run("-c", "import socket; socket.getaddrinfo('example.com', 443)")
    assert [(a["event"], a["host"]) for a in attempts()] == [
        ("socket.connect", "192.0.2.1"), ("socket.getaddrinfo", "example.com")
    ]


def test_build_and_ask_open_no_outbound_connection(audited, tmp_path):
    run, attempts = audited
    corpus = make_second_corpus(tmp_path / "corpus")
    folder = tmp_path / "index"
    built = run("-m", "qa.cli", "build", str(corpus), "--index", str(folder), "-q")
    assert built.returncode == 0, built.stderr
    asked = run(
        "-c",
        "import json, sys, qa; print(json.dumps(qa.ask(sys.argv[1]).to_dict()))",
        EXTRA_FAQ[0]["question"],
        QA_INDEX_DIR=str(folder),
    )
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["text"] == EXTRA_FAQ[0]["answer"]
    assert attempts() == []
