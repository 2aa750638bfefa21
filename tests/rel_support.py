"""Helpers shared by the reliability tests: questions, answer snapshots, folder states, a second corpus."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from .conftest import ARTICLE, ROOT

QUESTIONS = [
    "Who did Díaz-Canel meet in St. Petersburg?",
    "What did the leader lay at the monument to the Motherland?",
    "How many civilians and combatants are buried at the cemetery?",
    "How long did the Nazi siege last?",
    "What was the purpose of Díaz-Canel's visit to Russia in May 2025?",
    "Which cooperation projects are Cuba and Russia assessing?",
    "When did Russian warships dock at the port of Havana?",
    "Who visited Havana in April 2025?",
    "What criticisms does the rapprochement face?",
    "What is the boiling point of mercury?",
    "How do I reset my password?",
    "Can I get a refund after 30 days?",
]

# FAQ pairs the bundled article does not hold: an index that has them answers differently.
EXTRA_FAQ = [
    {"id": "password", "question": "How do I reset my password?",
     "answer": "Open Settings, choose Security and press Reset password; a link arrives by e-mail."},
    {"id": "refund", "question": "Can I get a refund after 30 days?",
     "answer": "Refunds are possible within 60 days of purchase when the receipt is shown."},
]


def without_id(answer: dict) -> dict:
    """An answer's dict without its `answer_id`, which is new for every answer, so that equal answers compare equal."""
    return {k: v for k, v in answer.items() if k != "answer_id"}


def snapshot(bot, questions=QUESTIONS) -> list[dict]:
    """Every answer of `bot` to `questions`, as plain data that compares exactly."""
    return [without_id(bot.ask(q).to_dict()) for q in questions]


def folder_state(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative path → sha256) and every folder (→ 'dir')."""
    state = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        state[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def copy_index(source: Path, target: Path) -> Path:
    """A private copy of a built index folder, to damage or rebuild without touching the original."""
    shutil.copytree(source, target)
    return target


def make_second_corpus(folder: Path) -> Path:
    """The bundled article plus an FAQ file it does not cover."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ARTICLE, folder / ARTICLE.name)
    (folder / "support.json").write_text(json.dumps(EXTRA_FAQ, indent=1), encoding="utf-8")
    return folder


def qa_env(**extra: str) -> dict[str, str]:
    """The environment for a `qa` subprocess: offline, no inherited QA_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class Build:
    """`qa build ...` in a subprocess whose stderr is collected line by line.

    It runs as `python -m tests.paused_build`, which stops at the stage named by
    $QA_TEST_PAUSE_AT in `env` (and is plain `qa build` without it).
    """

    def __init__(self, *args: str | Path, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.paused_build", *map(str, args), "-q"],
            cwd=ROOT, env=env or qa_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120) -> None:
        """Block until a stderr line contains `text`; fail if the build ends or time runs out first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                self._reader.join(5)
                if any(text in line for line in self.lines):
                    return
                raise AssertionError(f"build ended ({self.proc.returncode}) before {text!r}: {self.lines[-20:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} from the build within {timeout} s: {self.lines[-20:]}")

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> int:
        self.proc.kill()  # SIGKILL: no cleanup handlers run
        return self.finish()
