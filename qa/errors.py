"""The small error vocabulary that the CLI and the UI show to users as one line.

An error that a caller acts on carries its facts as attributes (the file and line
a document failed at, the model an index was built with), so that no caller reads
them back out of the message.
"""

from __future__ import annotations

import importlib

SCALE_HINT = "pip install -e '.[scale]'"


class QAError(Exception):
    """Base of every error this package raises on purpose."""


class DocumentError(QAError, ValueError):
    """A document could not be read or parsed; the message names the file (and line).

    Raised by `DocumentError.at`, it also carries `path`, `line` (or None) and `reason`;
    an error about the corpus as a whole (no documents at all) has them None.
    """

    def __init__(self, message: str, *, path: object = None, line: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.line = line
        self.reason = reason

    @classmethod
    def at(cls, path: object, reason: str, line: int | None = None) -> "DocumentError":
        """The error 'path[:line]: reason' about one file."""
        where = f"{path}:{line}" if line is not None else f"{path}"
        return cls(f"{where}: {reason}", path=path, line=line, reason=reason)


class UnreadableDocumentError(DocumentError):
    """A file is not a readable document at all (binary, encrypted, damaged): a build skips it with this reason.

    Args:
        path: the file.
        reason: why it cannot be read, e.g. "encrypted PDF that needs a password".
        line: the line the reader stopped at, when it knows one.
    """

    def __init__(self, path: object, reason: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}; skipped", path=path, line=line, reason=reason)


class IndexNotFoundError(QAError):
    """There is no index in the folder; the message says how to build one."""


class IndexMismatchError(QAError):
    """The index was built by another model or an incompatible format version."""


class IndexCorruptError(QAError):
    """A file of the index is missing, truncated or altered; rebuild the index."""


class IndexBusyError(QAError):
    """Another build holds the lock on this index folder."""


class MissingExtraError(QAError):
    """An optional feature was asked for without the extra that installs it; the message names the extra."""


class ReaderError(QAError):
    """The reader's weights (qa/comprehension) are missing or damaged, or cannot be exported; names the file."""


class QuestionLogError(QAError):
    """The question log cannot be opened or upgraded (damaged, or written by a newer qa); the message names the file."""


def require(module: str, feature: str):
    """Import an optional dependency of the 'scale' extra, or raise a one-line error naming the extra.

    Raises:
        MissingExtraError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{feature} needs the 'scale' extra ({module} is not installed): {SCALE_HINT}") from None
