"""Load on the web app: many gradio_client clients at once, every answer the one ask() gives alone.

    python -m pytest tests/test_rel_web.py -s     # prints requests/s and latency percentiles

QA_LOAD_CLIENTS and QA_LOAD_QUESTIONS resize the run (defaults 32 clients x 20 questions).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import numpy as np
import pytest

from .rel_support import QUESTIONS, without_id

CLIENTS = int(os.environ.get("QA_LOAD_CLIENTS") or 32)
PER_CLIENT = int(os.environ.get("QA_LOAD_QUESTIONS") or 20)

POOL = QUESTIONS + [
    "Where did the Cuban leader pay tribute?",
    "Who is Lis Cuesta?",
    "What did Díaz-Canel write on X?",
    "Why is Cuba's dependence on Moscow criticised?",
    "Which Russian company did Díaz-Canel meet in November 2024?",
    "What does the relationship give Havana?",
    "How many mass graves are there?",
    "And who did he meet there?",
]


@pytest.fixture(scope="module")
def served(chat_url):
    return chat_url


@pytest.mark.slow
def test_32_clients_asking_20_questions_each_all_get_the_sequential_answers(served, bot, caplog, capfd):
    from gradio_client import Client

    expected = {q: without_id(json.loads(json.dumps(bot.ask(q).to_dict(), ensure_ascii=False))) for q in POOL}
    setup = time.perf_counter()
    clients = [Client(served, verbose=False) for _ in range(CLIENTS)]
    setup = time.perf_counter() - setup
    capfd.readouterr()
    caplog.clear()
    caplog.set_level(logging.WARNING)

    latencies: list[float] = []
    wrong: list[tuple[str, str]] = []
    failures: list[str] = []
    barrier = threading.Barrier(CLIENTS)

    def user(n: int) -> None:
        client = clients[n]
        barrier.wait(timeout=60)
        for i in range(PER_CLIENT):
            question = POOL[(n * 7 + i) % len(POOL)]
            started = time.perf_counter()
            try:
                reply = without_id(json.loads(client.predict(question, None, api_name="/ask")))
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                failures.append(f"client {n}: {type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - started)
            if reply != expected[question]:
                wrong.append((question, reply.get("text", "")[:80]))

    threads = [threading.Thread(target=user, args=(n,)) for n in range(CLIENTS)]
    load_before = os.getloadavg()[0]  # other work on the machine shows in the figures
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    elapsed = time.perf_counter() - started

    total = CLIENTS * PER_CLIENT
    ms = np.array(latencies) * 1000
    report = (
        f"load: {CLIENTS} clients x {PER_CLIENT} questions = {total} requests in {elapsed:.1f} s: "
        f"{len(latencies) / elapsed:.1f} requests/s; latency p50 {np.percentile(ms, 50):.0f} ms, "
        f"p95 {np.percentile(ms, 95):.0f} ms, p99 {np.percentile(ms, 99):.0f} ms, max {ms.max():.0f} ms; "
        f"failed {len(failures)}, wrong {len(wrong)}; {setup:.1f} s to connect the clients; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores"
    )
    with capfd.disabled():  # shown with -s; capfd would swallow it
        print("\n" + report)
    assert not failures, failures[:5]
    assert len(latencies) == total
    assert not wrong, wrong[:5]
    problems = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert not problems, problems[:5]
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err[-2000:]
