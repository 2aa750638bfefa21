"""Follow-up prompts: the FAQs an FAQ names as likely next questions (`follow_ups` in an FAQ file).

A reference names an FAQ anywhere in the corpus, tried in this order:

1. its passage id (`faq:hours`, as `qa ask --json` citations show it);
2. the `id` of an FAQ in the same file (`hours`);
3. its question, ignoring case, spacing and a final `?`: an FAQ of the same
   file first, else of any file.

The build resolves every reference to a passage id (`resolve`). A reference
that names no FAQ, or several at the same step, or the FAQ itself, is left out
and reported by the ingest checks (qa/checks.py) as a warning at the file and
line of the FAQ that holds it; it never stops a build.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from .types import FollowUp, Passage


def _normal(question: str) -> str:
    return " ".join(question.casefold().split()).rstrip(" ?")


def resolve(passages: Sequence[Passage]) -> tuple[list[tuple[int, ...]], list[tuple[int, str]]]:
    """The FAQs each passage's follow-up references name, by position in `passages`.

    Args:
        passages: the corpus's passages, their `follow_ups` as written in the files.

    Returns:
        (targets, problems): for each passage, the positions of the FAQs its references
        resolve to, in reference order, each once; and (position, message) for each
        reference left out.
    """
    by_id: dict[str, list[int]] = {}
    by_question: dict[str, list[int]] = {}
    for i, p in enumerate(passages):
        if p.kind == "faq":
            by_id.setdefault(p.id, []).append(i)
            by_question.setdefault(_normal(p.question or ""), []).append(i)
    targets: list[tuple[int, ...]] = []
    problems: list[tuple[int, str]] = []
    for i, p in enumerate(passages):
        found: list[int] = []
        for ref in p.follow_ups if p.kind == "faq" else ():
            same_file = [j for j in by_id.get(f"{Path(p.path).stem}:{ref}", []) if passages[j].path == p.path]
            asked = by_question.get(_normal(ref), [])
            steps = [by_id.get(ref, []), same_file, [j for j in asked if passages[j].path == p.path], asked]
            match = next((step for step in steps if step), [])
            if len(match) != 1:
                where = ", ".join(f"{passages[j].path}:{passages[j].line}" for j in match[:3])
                problems.append((i, f"follow-up {ref!r} of {p.question!r} " + (
                    f"matches {len(match)} FAQs ({where}); name one by its id" if match else
                    "names no FAQ (by passage id, id in this file, or question)") + "; it is left out"))
            elif match[0] == i:
                problems.append((i, f"follow-up {ref!r} of {p.question!r} names the FAQ itself; it is left out"))
            elif match[0] not in found:
                found.append(match[0])
        targets.append(tuple(found))
    return targets, problems


# Right after an answer from an FAQ with follow-ups, a question is read in its light: a child of
# that FAQ among the retriever's first CHILD_RANKS passages gets CHILD_BONUS added to its fused
# score, so a child within CHILD_BONUS of the best passage ranks first. The answer rule is then the
# usual one: a child that ends up more than `closeness` (0.05, qa/answer_model.json) ahead is
# answered; one nearer the runner-up is offered first among the suggestions. Only `Bot.ask` with a
# history applies it, so answers without history (and every evaluation figure) are unchanged.
CHILD_RANKS = 3
CHILD_BONUS = 0.1


def prefer_children(results: list[tuple], children: frozenset[str]) -> list[tuple]:
    """Retrieval results with the parent's children (passage ids) among the first CHILD_RANKS raised by CHILD_BONUS.

    Args:
        results: (Hit, Evidence) pairs, best first.
        children: the passage ids the previous answer's FAQ names as follow-ups.

    Returns:
        The same pairs, re-ranked when a child was raised; the raised Hits and Evidence carry the new score.
    """
    raised = {i for i, (hit, _) in enumerate(results[:CHILD_RANKS]) if hit.passage.id in children}
    if not raised:
        return results
    scored = [
        (replace(hit, score=hit.score + CHILD_BONUS), replace(evidence, score=evidence.score + CHILD_BONUS))
        if i in raised else (hit, evidence)
        for i, (hit, evidence) in enumerate(results)
    ]
    order = sorted(range(len(scored)), key=lambda i: (-scored[i][0].score, i))
    return [(replace(scored[i][0], rank=rank), scored[i][1]) for rank, i in enumerate(order)]


def follow_ups_by_passage(passages: Sequence[Passage]) -> dict[str, tuple[FollowUp, ...]]:
    """{passage id: its follow-ups, each with the question it asks} for the passages of a built index that have any."""
    parents = [p for p in passages if p.follow_ups]
    if not parents:
        return {}
    by_id = {p.id: p for p in passages}
    return {p.id: tuple(FollowUp(c, by_id[c].question or "") for c in p.follow_ups if c in by_id) for p in parents}
