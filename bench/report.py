"""Turn the benchmark's measurements into figures with targets, a table, docs/performance.md and a plot."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Figure:
    """One figure beside its reference, measured in the same run, with its target.

    `target_on` says what the target bounds: the ratio, or the value itself (an
    absolute limit such as "first answer <= 4 s").
    """

    name: str
    label: str
    value: float | None
    unit: str
    reference: str
    reference_value: float | None
    target_op: str | None = None  # ">=" or "<="
    target: float | None = None
    target_on: str = "ratio"  # "ratio" or "value"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.reference_value:
            return None
        return self.value / self.reference_value

    @property
    def met(self) -> bool | None:
        if self.target_op is None or self.target is None:
            return None
        x = self.ratio if self.target_on == "ratio" else self.value
        if x is None:
            return False
        return x >= self.target if self.target_op == ">=" else x <= self.target

    @property
    def target_text(self) -> str:
        if self.target_op is None:
            return "—"
        if self.target_on == "ratio":
            return f"ratio {self.target_op} {self.target:g}"
        return f"{self.target_op} {self.target:g} {self.unit}"

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "reference": self.reference,
            "reference_value": self.reference_value,
            "ratio": self.ratio,
            "target": self.target_text if self.target_op else None,
            "target_op": self.target_op,
            "target_threshold": self.target,
            "target_on": self.target_on if self.target_op else None,
            "met": self.met,
            "note": self.note,
        }


def _num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "—"
    if unit in ("share", "") and 0 <= x <= 1:  # shares and recalls: a difference in the third decimal matters
        return f"{x:.4f} {unit}".strip()
    if unit in ("MiB",) or abs(x) >= 100:
        text = f"{x:,.0f}"
    elif abs(x) >= 10:
        text = f"{x:.1f}"
    elif abs(x) >= 0.1 or x == 0:
        text = f"{x:.2f}"
    else:
        text = f"{x:.3f}"
    return f"{text} {unit}".strip()


def _verdict(met: bool | None) -> str:
    return {True: "yes", False: "**NO**", None: "—"}[met]


def table_rows(figures: list[Figure]) -> list[tuple[str, ...]]:
    """(figure, value, reference, ratio, target, met) rows for printing."""
    rows = []
    for f in figures:
        ratio = "—" if f.ratio is None else f"{f.ratio:.3f}"
        rows.append((f.label, _num(f.value, f.unit), f"{_num(f.reference_value, f.unit)} ({f.reference})", ratio, f.target_text, _verdict(f.met)))
    return rows


def format_table(figures: list[Figure]) -> str:
    """A plain-text table for the terminal."""
    header = ("figure", "value", "reference (measured in this run)", "ratio", "target", "met")
    rows = [header, *table_rows(figures)]
    widths = [max(len(r[i].replace("**", "")) for r in rows) for i in range(len(header))]
    lines = []
    for j, r in enumerate(rows):
        lines.append("  ".join(c.replace("**", "").ljust(w) for c, w in zip(r, widths)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot(scales: list[dict], path: Path, target_ms: float) -> None:
    """Latency of one query against corpus size: exact, approximate, BM25; the search target as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [s["n"] for s in scales]
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    ax.plot(ns, [s["flat"]["p50_ms"] for s in scales], "o-", color="#1f77b4", label="exact (IndexFlatIP) p50")
    ax.plot(ns, [s["flat"]["p99_ms"] for s in scales], "o--", color="#1f77b4", alpha=0.6, label="exact p99")
    if all(s.get("ann") for s in scales):
        kind = scales[-1]["ann"]["kind"]
        ax.plot(ns, [s["ann"]["p50_ms"] for s in scales], "s-", color="#d62728", label=f"{kind} p50")
        ax.plot(ns, [s["ann"]["p99_ms"] for s in scales], "s--", color="#d62728", alpha=0.6, label=f"{kind} p99")
    ax.plot(ns, [s["bm25_p50_ms"] for s in scales], "^-", color="#2ca02c", label="BM25 (bm25s) p50")
    ax.plot(ns, [s["bm25_top50_p50_ms"] for s in scales], "^--", color="#2ca02c", alpha=0.6,
            label="BM25 + top-50 of all passages p50")
    ax.axhline(target_ms, color="grey", linestyle=":", label=f"target p99 {target_ms:g} ms")
    for s in scales:
        chosen = s["flat"] if s["auto_kind"] == "flat" else s["ann"]
        ax.annotate("auto", (s["n"], chosen["p50_ms"]), textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("corpus size (vectors for FAISS, passages for BM25)")
    ax.set_ylabel("one query, ms (k = 10)")
    ax.set_title("Search latency against corpus size (2 cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_json(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=float) + "\n", encoding="utf-8")
