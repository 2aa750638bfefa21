"""The small error vocabulary that the CLI and the UI show to users as one line."""


class QAError(Exception):
    """Base of every error this package raises on purpose."""


class DocumentError(QAError, ValueError):
    """A document could not be read or parsed; the message names the file (and line)."""


class UnreadableDocumentError(DocumentError):
    """A file is not a readable document at all (binary, encrypted, damaged): a build skips it with this reason."""


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
