"""Shared fixtures: one real model for the session, real indexes in tmp folders, no network."""

from __future__ import annotations

import os

# Milvus Lite serves gRPC on a thread of the test process for the whole session; keep gRPC's C-core
# keepalive chatter off stderr, which tests/test_rel_web.py checks (read when gRPC first loads).
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import shutil  # noqa: E402
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
ARTICLE = DATA / "diaz-canel-russia-visit.txt"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EVAL = ROOT.parent / "shared" / "eval"

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
from qa.settings import ENV_NAMES  # noqa: E402  (light: loads no model)

for var in ENV_NAMES:  # also before the session fixtures: a developer's QA_BACKEND=torch must not leak in
    os.environ.pop(var, None)


@pytest.fixture(autouse=True)
def _no_qa_settings(monkeypatch):
    """Every test starts without any of the package's environment variables set."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def embedder():
    """The bundled all-MiniLM-L6-v2, loaded once for the whole session."""
    from qa.embedding import Embedder

    e = Embedder()
    e.warm_up()
    return e


@pytest.fixture(scope="session")
def article_index(tmp_path_factory, embedder) -> Path:
    """A real index of the bundled article, built once."""
    from qa.indexing import build_index

    folder = tmp_path_factory.mktemp("article-index")
    build_index([ARTICLE], folder, embedder)
    return folder


@pytest.fixture(scope="session")
def bot(article_index, embedder):
    """A Bot over the bundled article's index, sharing the session's model."""
    from qa import Bot

    return Bot(article_index, embedder=embedder).warm_up()


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A writable copy of the bundled corpus folder."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(ARTICLE, folder / ARTICLE.name)
    return folder


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chat_url(bot):
    """The web chat over the bundled article, served on a free loopback port for the session."""
    import ui

    app = ui.build_app(bot)
    yield ui.launch(app, "127.0.0.1", free_port(), block=False)
    app.close()


@pytest.fixture
def fake_embedder():
    """An Embedder over the hash-seeded fake encoder (tests/fakes.py): vectors without a model."""
    from .fakes import fake_embedder

    return fake_embedder()
