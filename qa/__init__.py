"""Offline FAQ question answering with grounded, cited answers.

    >>> from qa import ask
    >>> answer = ask("What did the Cuban leader lay at the monument?")
    >>> answer.text, answer.citations[0].source

Importing this package loads no model and reads no index: the first `ask()` does.
"""

from __future__ import annotations

import threading

from .bot import Bot, remember
from .errors import (
    DocumentError,
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    QAError,
    QuestionLogError,
    ReaderError,
)
from .log import QuestionLog
from .review import Review, open_review
from .types import Answer, Citation, FollowUp, Hit, Passage, Suggestion

__all__ = [
    "Answer",
    "Bot",
    "Citation",
    "DocumentError",
    "FollowUp",
    "Hit",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "Passage",
    "QAError",
    "QuestionLogError",
    "QuestionLog",
    "ReaderError",
    "Review",
    "Suggestion",
    "ask",
    "open_review",
    "remember",
]

_default_bot: Bot | None = None
_default_lock = threading.Lock()


def default_bot() -> Bot:
    """The Bot over the default index ($QA_INDEX_DIR or ./index), created once."""
    global _default_bot
    with _default_lock:
        if _default_bot is None:
            _default_bot = Bot()
        return _default_bot


def ask(question: str, k: int = 5, **kwargs) -> Answer:
    """Answer `question` from the default index; see `Bot.ask`."""
    return default_bot().ask(question, k, **kwargs)
