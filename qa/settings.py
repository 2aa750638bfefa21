"""Every setting: an argument, else its environment variable, else the default.

`SETTINGS` lists each environment variable the package and the web chat read;
the README's settings table is checked against it (tests/test_settings.py).
Functions elsewhere take `None` for "not given" and ask the resolver here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BACKENDS = ("auto", "torch", "onnx")
DEFAULT_INDEX_DIR = "index"
DEFAULT_DATA_DIR = "data"
READER_PRECISIONS = ("fp32", "int8")
DEFAULT_READER_PRECISION = "fp32"  # int8 only where it keeps >= 99 % of the decisions (python -m bench.reader_int8)
DEFAULT_MAX_QUESTION_CHARS = 2000
DEFAULT_MAX_DOC_BYTES = 50 * 1024 * 1024
# What one document may unpack to: the text a reader extracts and the passages it makes.
DEFAULT_MAX_DOC_CHARS = 5_000_000
DEFAULT_MAX_DOC_PASSAGES = 10_000
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
DEFAULT_MAX_SESSIONS = 1000
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


@dataclass(frozen=True)
class Setting:
    """One environment variable: the option that overrides it, its default and what it sets."""

    env: str
    option: str
    default: str
    help: str


SETTINGS = (
    Setting("QA_INDEX_DIR", "--index", DEFAULT_INDEX_DIR, "the index folder"),
    Setting("QA_DATA_DIR", "qa build PATHS", DEFAULT_DATA_DIR, "the documents `qa build` and `make run` index"),
    Setting("QA_MODEL", "--model", "the index's own; for a build, all-MiniLM-L6-v2", "embedding model name or path"),
    Setting("QA_BACKEND", "Embedder(backend=)", "auto", "embedding backend: auto, onnx or torch"),
    Setting("QA_CACHE_DIR", "Embedder(cache_dir=)", "$XDG_CACHE_HOME/qa or ~/.cache/qa", "where ONNX exports are cached"),
    Setting("QA_READER", "Bot(reader=)", "the shipped qa/comprehension/model", "the reader's weights folder (`make train` writes one)"),
    Setting("QA_READER_PRECISION", "Bot(reader_precision=)", DEFAULT_READER_PRECISION,
            "the reader's arithmetic: fp32, or int8 (quantised once; faster, changes some decisions: docs/reader.md)"),
    Setting("QA_ALLOW_DOWNLOAD", "", "off", "1 lets sentence-transformers download a model"),
    Setting("QA_THRESHOLD", "--threshold", "the answer model's (qa/answer_model.json)",
            "answer at or above this confidence (0-1); below it, suggest or abstain"),
    Setting("QA_MAX_QUESTION_CHARS", "Bot(max_question_chars=)", str(DEFAULT_MAX_QUESTION_CHARS),
            "longest question (and history entry) accepted"),
    Setting("QA_MAX_DOC_BYTES", "--max-doc-bytes", "52428800 (50 MiB)", "largest document accepted, in bytes"),
    Setting("QA_MAX_DOC_CHARS", "", f"{DEFAULT_MAX_DOC_CHARS:,}",
            "most characters of text one document may unpack to; the rest is cut, with a warning"),
    Setting("QA_MAX_DOC_PASSAGES", "", f"{DEFAULT_MAX_DOC_PASSAGES:,}",
            "most passages one document may make; the rest are left out, with a warning"),
    Setting("QA_MAX_REQUEST_BYTES", "", "1048576 (1 MiB)",
            "largest request body the web chat reads; larger ones are refused (413) before parsing"),
    Setting("QA_MAX_SESSIONS", "", str(DEFAULT_MAX_SESSIONS),
            "browser and API sessions the web chat keeps in memory; the least recently used go first"),
    Setting("QA_HOST", "--host", DEFAULT_HOST, "address the web chat listens on"),
    Setting("QA_PORT", "--port", str(DEFAULT_PORT), "port of the web chat"),
    Setting("QA_AUTH", "--auth", "none", "USER:PASSWORD login for the web chat and its API"),
    Setting("QA_AUTH_FILE", "--auth-file", "none", "a file of USER:PASSWORD logins, one a line, for the web chat"),
    Setting("QA_REVIEWERS", "--reviewers", "none", "the logins (comma-separated) that may use the Review tab"),
    Setting("QA_LOG", "--log", "web chat: qa-log.sqlite3 beside the index folder; Python: off",
            "the question log (SQLite file), or off"),
    Setting("QA_STORE", "--store", "folder", "where the index lives: folder, milvus:PATH.db (Milvus Lite) or a Milvus URI"),
    Setting("QA_MILVUS_TOKEN", "", "none", "token (USER:PASSWORD or API key) for a Milvus server"),
    Setting("QA_RAY_ADDRESS", "--ray [ADDRESS]", "off", "embed a build with Ray: local, or a cluster address"),
)
ENV_NAMES = tuple(s.env for s in SETTINGS)


def _env(name: str) -> str:
    assert name in ENV_NAMES, f"{name} is not listed in SETTINGS"
    return os.environ.get(name, "").strip()


def positive_int(value: int | None, env: str, default: int, unit: str, name: str) -> int:
    """`value`, else $`env`, else `default`: a whole number >= 1.

    Args:
        unit: what the number counts, for messages ("bytes", "characters").
        name: what the argument is called, for messages.

    Raises:
        ValueError: the argument or the variable is not a whole number >= 1.
    """
    if value is None:
        raw = _env(env)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{env} must be a whole number of {unit}, got {raw!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of {unit} >= 1, got {value!r}")
    return value


def env_float(env: str) -> float | None:
    """$`env` as a number, or None when it is unset or empty.

    Raises:
        ValueError: the variable is set but is not a number.
    """
    raw = _env(env)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{env} must be a number, got {raw!r}") from None


def index_dir(value: str | os.PathLike | None = None) -> Path:
    """The index folder: argument → $QA_INDEX_DIR → ./index."""
    return Path(value or _env("QA_INDEX_DIR") or DEFAULT_INDEX_DIR)


def data_paths(values: list[str] | None = None) -> list[str]:
    """What to index: the arguments → $QA_DATA_DIR → ./data."""
    return list(values) if values else [_env("QA_DATA_DIR") or DEFAULT_DATA_DIR]


def model(value: str | None = None) -> str | None:
    """The embedding model asked for: argument → $QA_MODEL → None (a build then uses the bundled model,
    a Bot the model its index was built with)."""
    return value or _env("QA_MODEL") or None


def backend(value: str | None = None) -> str:
    """The embedding backend: argument → $QA_BACKEND → "auto".

    Raises:
        ValueError: not one of "auto", "torch", "onnx".
    """
    chosen = (value or _env("QA_BACKEND") or "auto").strip().lower()
    if chosen not in BACKENDS:
        raise ValueError(f"embedding backend must be one of {', '.join(BACKENDS)}, got {chosen!r}")
    return chosen


def cache_dir(value: str | os.PathLike | None = None) -> Path:
    """Where exported models are cached: argument → $QA_CACHE_DIR → $XDG_CACHE_HOME/qa → ~/.cache/qa."""
    if value:
        return Path(value)
    if _env("QA_CACHE_DIR"):
        return Path(_env("QA_CACHE_DIR"))
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qa"


def reader_dir(value: str | os.PathLike | None = None) -> Path | None:
    """The reader's weights folder: argument → $QA_READER → None (the shipped weights)."""
    chosen = value or _env("QA_READER")
    return Path(chosen) if chosen else None


def reader_precision(value: str | None = None) -> str:
    """The reader's precision: argument → $QA_READER_PRECISION → DEFAULT_READER_PRECISION.

    Raises:
        ValueError: not "fp32" or "int8".
    """
    chosen = (value or _env("QA_READER_PRECISION") or DEFAULT_READER_PRECISION).strip().lower()
    if chosen not in READER_PRECISIONS:
        raise ValueError(f"reader precision must be fp32 or int8, got {chosen!r}")
    return chosen


def allow_download() -> bool:
    """Whether sentence-transformers may download a model: $QA_ALLOW_DOWNLOAD=1."""
    return _env("QA_ALLOW_DOWNLOAD") == "1"


def threshold(value: float | None = None) -> float | None:
    """The abstention threshold: argument → $QA_THRESHOLD → None (the answering default).

    Raises:
        ValueError: not a number in [0, 1].
    """
    chosen = value if value is not None else env_float("QA_THRESHOLD")
    if chosen is not None and not 0.0 <= chosen <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {chosen}")
    return chosen


def max_question_chars(value: int | None = None) -> int:
    """The question length limit: argument → $QA_MAX_QUESTION_CHARS → 2000.

    Raises:
        ValueError: the value is not a whole number >= 1.
    """
    return positive_int(value, "QA_MAX_QUESTION_CHARS", DEFAULT_MAX_QUESTION_CHARS, "characters", "max_question_chars")


def max_doc_bytes(value: int | None = None) -> int:
    """The largest document to ingest, in bytes: argument → $QA_MAX_DOC_BYTES → 50 MiB.

    Raises:
        ValueError: the value is not a whole number >= 1.
    """
    return positive_int(value, "QA_MAX_DOC_BYTES", DEFAULT_MAX_DOC_BYTES, "bytes", "the maximum document size")


def max_doc_chars(value: int | None = None) -> int:
    """The most characters of text one document may unpack to: argument → $QA_MAX_DOC_CHARS → 5,000,000.

    A 214 KB .docx can hold 50 MB of XML; this bounds what reading it costs, whatever the file's size.

    Raises:
        ValueError: the value is not a whole number >= 1.
    """
    return positive_int(value, "QA_MAX_DOC_CHARS", DEFAULT_MAX_DOC_CHARS, "characters", "the maximum document text")


def max_doc_passages(value: int | None = None) -> int:
    """The most passages one document may make: argument → $QA_MAX_DOC_PASSAGES → 10,000.

    Raises:
        ValueError: the value is not a whole number >= 1.
    """
    return positive_int(value, "QA_MAX_DOC_PASSAGES", DEFAULT_MAX_DOC_PASSAGES, "passages", "the maximum passages per document")


def max_request_bytes(value: int | None = None) -> int:
    """The largest request body the web chat reads: argument → $QA_MAX_REQUEST_BYTES → 1 MiB.

    Raises:
        ValueError: the value is not a whole number >= 1.
    """
    return positive_int(value, "QA_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, "bytes", "the maximum request size")


def max_sessions(value: int | None = None) -> int:
    """How many sessions the web chat keeps in memory: argument → $QA_MAX_SESSIONS → 1000.

    Raises:
        ValueError: the value is not a whole number >= 1.
    """
    return positive_int(value, "QA_MAX_SESSIONS", DEFAULT_MAX_SESSIONS, "sessions", "the maximum sessions")


def host(value: str | None = None) -> str:
    """The web chat's address: argument → $QA_HOST → 127.0.0.1."""
    return value or _env("QA_HOST") or DEFAULT_HOST


def port(value: int | None = None) -> int:
    """The web chat's port: argument → $QA_PORT → 7860.

    Raises:
        ValueError: not a whole number in 1..65535.
    """
    chosen = positive_int(value, "QA_PORT", DEFAULT_PORT, "port", "port")
    if chosen > 65535:
        raise ValueError(f"port must be at most 65535, got {chosen}")
    return chosen


def auth(value: str | None = None) -> str | None:
    """The web chat's login as USER:PASSWORD: argument → $QA_AUTH → None (no login)."""
    return value or _env("QA_AUTH") or None


def auth_file(value: str | None = None) -> Path | None:
    """A file of web chat logins (USER:PASSWORD a line): argument → $QA_AUTH_FILE → None."""
    chosen = value or _env("QA_AUTH_FILE")
    return Path(chosen) if chosen else None


def reviewers(value: str | None = None) -> frozenset[str]:
    """The logins that may review, from a comma-separated list: argument → $QA_REVIEWERS → none."""
    chosen = value if value is not None else _env("QA_REVIEWERS")
    return frozenset(name.strip() for name in (chosen or "").split(",") if name.strip())


LOG_FILE = "qa-log.sqlite3"
_OFF = ("off", "0", "no", "false", "none")


def question_log(value: str | os.PathLike | None = None, *, index: str | os.PathLike | None = None,
                 default_on: bool = False) -> Path | None:
    """The question log's file, or None when logging is off: argument → $QA_LOG → the default.

    The default is off for `Bot` and `ask()`, and for the web chat (`default_on`)
    `qa-log.sqlite3` beside the index folder (never inside it: a build replaces that).
    "off" (or 0, no, false, none) turns the log off.
    """
    chosen = str(value).strip() if value is not None else _env("QA_LOG")
    if chosen.lower() in _OFF:
        return None
    if chosen:
        return Path(chosen)
    if not default_on:
        return None
    return index_dir(index).resolve().parent / LOG_FILE
def store(value: str | None = None) -> str:
    """Where the index lives (see qa.stores.parse_store): argument → $QA_STORE → "folder"."""
    return (value or "").strip() or _env("QA_STORE") or "folder"


def milvus_token() -> str | None:
    """The token for a Milvus server, from $QA_MILVUS_TOKEN (never an argument: it would show in `ps`)."""
    return _env("QA_MILVUS_TOKEN") or None


def ray_address(value: str | None = None) -> str | None:
    """Where a build embeds with Ray: "local" (a Ray started for the build), a cluster address, or None (no Ray).

    Argument → $QA_RAY_ADDRESS → None.
    """
    return (value or "").strip() or _env("QA_RAY_ADDRESS") or None


def markdown_table() -> str:
    """The README's settings table, made from `SETTINGS` (tests/test_settings.py checks the README holds it)."""
    lines = ["| environment | option | default | what it sets |", "|---|---|---|---|"]
    for s in SETTINGS:
        option = f"`{s.option}`" if s.option else "—"
        lines.append(f"| `{s.env}` | {option} | {s.default} | {s.help} |")
    return "\n".join(lines) + "\n"
