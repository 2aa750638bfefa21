"""Which files a build reads: every file a reader supports under the given files and folders.

Inside a folder, symbolic links are followed only while they stay inside it:
a link that leads out of the folder given to the build (`data/passwd.txt ->
/etc/passwd`) is skipped with a warning, and so is a dangling one. A file named
on the command line is read wherever it is: the user chose it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Iterable, Iterator

from .errors import DocumentError
from .readers import supported_suffixes

log = logging.getLogger(__name__)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's content (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _index_folders(root: Path) -> set[Path]:
    """Index folders kept among the documents (a manifest beside a build lock): not documents."""
    found = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if "manifest.json" in files and ".lock" in files:
            found.add(Path(folder))
    return found


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _walk(root: Path) -> list[Path]:
    """Files under `root`, sorted by path, links resolved by the rules above; hidden names skipped."""
    real_root = root.resolve()
    indexes = _index_folders(root)
    suffixes = supported_suffixes()
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if here in indexes:
            dirs[:] = []
            continue
        kept = []
        for name in sorted(dirs):
            if name.startswith("."):
                continue
            child = here / name
            if child.is_symlink():
                _linked(child, real_root)  # os.walk does not descend into linked folders; say why
                continue
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if name.startswith("."):
                continue
            child = here / name
            if child.is_symlink() and not _linked(child, real_root):
                continue
            if not child.is_file():
                continue
            if child.suffix.lower() in suffixes:
                found.append(child)
            else:
                log.warning("%s: unsupported file type %r; skipped", child, child.suffix or "(none)")
    return sorted(found)


def _linked(link: Path, real_root: Path) -> bool:
    """True when a link inside the folder may be read: it resolves to a file inside the folder."""
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):
        log.warning("%s: dangling link (its target does not exist); skipped", link)
        return False
    if not _inside(target, real_root):
        log.warning("%s: a link to %s, outside %s; not followed", link, target, real_root)
        return False
    if target.is_dir():
        log.warning("%s: a link to a folder; not followed (its files are read where they are)", link)
        return False
    return True


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every supported file under the given files and folders, in a stable order.

    Raises:
        DocumentError: a path does not exist.
    """
    suffixes = supported_suffixes()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            if path.is_symlink():
                raise DocumentError.at(path, "dangling link (its target does not exist)")
            raise DocumentError.at(path, "no such file or folder")
        if path.is_dir():
            yield from _walk(path)
        elif path.suffix.lower() in suffixes:
            yield path
        else:
            log.warning("%s: unsupported file type %r; skipped", path, path.suffix or "(none)")
