"""Sections of docs/performance.md that one bench module owns, between two marker comments.

`make bench` rewrites the file from `bench.run`; each other module (scale-out, incremental builds,
reading throughput) writes only its own section, and `bench.run` carries the sections over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Section:
    """A section of a Markdown file, from the line `start` to the line `end` (both kept in the text)."""

    start: str
    end: str

    def _pattern(self) -> re.Pattern:
        return re.compile(re.escape(self.start) + ".*?" + re.escape(self.end) + "\n?", re.S)

    def write(self, path: Path, text: str) -> None:
        """Put `text` into the file at `path`: in place of the section there, or at the end."""
        old = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
        pattern = self._pattern()
        new = pattern.sub(lambda _: text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
        path.write_text(new, encoding="utf-8")

    def carry_over(self, path: Path, new: str) -> str:
        """`new` (make bench's performance.md) with this section of the file at `path` kept at its end."""
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        found = self._pattern().search(old)
        return new if not found else new.rstrip("\n") + "\n\n" + found.group(0)
