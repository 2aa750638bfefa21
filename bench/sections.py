"""Sections of docs/performance.md that one bench module owns, between two marker comments.

`make bench` rewrites the file from `bench.run`; each other module (scale-out, incremental builds,
reading throughput) writes only its own section, and `bench.run` carries the sections over.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


def load_note(load_average: float) -> str:
    """What a section says of the machine's load when its run ended: a run keeps the cores busy itself, so only a
    load above their number means other work shared them."""
    return (f"load average {load_average:.1f} when it ended (the run keeps the cores busy itself; above their "
            "number, other work shared them)")


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

    def add_arguments(self, parser: argparse.ArgumentParser, results: Path) -> None:
        """The options every section's command takes: where performance.md is, the JSON results, --rewrite."""
        parser.add_argument("--out-dir", type=Path, default=results.parent.parent / "docs", help="where performance.md is")
        parser.add_argument("--results", type=Path, default=results)
        parser.add_argument("--rewrite", action="store_true", help="measure nothing: write the section again from --results")

    def main(self, args: argparse.Namespace, title: str, measure: Callable[[argparse.Namespace], dict],
             render: Callable[[dict], str], summary: Callable[[dict], str]) -> int:
        """A bench module's command: measure (or, with --rewrite, only render the --results file again),
        write the results as JSON and this section into --out-dir's performance.md (not for --tiny)."""
        path = args.out_dir / "performance.md"
        if args.rewrite:
            self.write(path, render(json.loads(args.results.read_text(encoding="utf-8"))))
            return 0
        started = time.perf_counter()
        print(title, flush=True)
        results = measure(args)
        results["minutes"] = round((time.perf_counter() - started) / 60, 1)
        args.results.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        if not args.tiny:
            self.write(path, render(results))
        print(summary(results), flush=True)
        return 0
