"""Scoring of the labelled evaluation sets under ``evals/data`` (see ``evals/README.md``).

A case passes the answer rubric when the answer contains every ``must`` fact (``a/b``: either
one) and none of the ``must_not`` facts. Scores are kept per part (``dev``, ``test``) and per
category (scan) or intent (chat); ``confusions`` counts expected → got pairs of misses.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVAL_DIR = Path(__file__).resolve().parent.parent / "evals" / "data"
PARTS = ("dev", "test")


def load_cases(kind: str, part: str, directory: Path = EVAL_DIR) -> list[dict[str, Any]]:
    """The cases of ``evals/data/{kind}_{part}.jsonl``."""
    path = directory / f"{kind}_{part}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def has_fact(answer: str, fact: str) -> bool:
    """Whether ``answer`` states ``fact`` (alternatives separated by "/", case-insensitive)."""
    text = answer.lower()
    return any(alt.strip().lower() in text for alt in fact.split("/") if alt.strip())


def rubric(answer: str, must: list[str], must_not: list[str]) -> list[str]:
    """What the answer gets wrong: missing facts ("+fact") and wrong ones ("-fact")."""
    problems = [f"+{f}" for f in must if not has_fact(answer, f)]
    problems += [f"-{f}" for f in must_not if f.lower() in answer.lower()]
    return problems


@dataclass
class Tally:
    total: int = 0
    hits: int = 0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.hits += ok

    @property
    def rate(self) -> float:
        return self.hits / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{100 * self.rate:5.1f}% ({self.hits}/{self.total})"


@dataclass
class PartScore:
    """The figures of one part of one set."""

    part: str
    classification: Tally = field(default_factory=Tally)  # scan: category; chat: exact intent set
    rubric: Tally = field(default_factory=Tally)
    multi_recall: Tally = field(default_factory=Tally)  # chat: expected intents answered
    follow_up: Tally = field(default_factory=Tally)  # chat: follow-ups fully right
    by_label: dict[str, tuple[Tally, Tally]] = field(default_factory=dict)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)

    def label(self, name: str) -> tuple[Tally, Tally]:
        return self.by_label.setdefault(name, (Tally(), Tally()))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "part": self.part,
            "classification": round(self.classification.rate, 4),
            "rubric": round(self.rubric.rate, 4),
            "cases": self.classification.total,
        }
        if self.multi_recall.total:
            out["multi_intent_recall"] = round(self.multi_recall.rate, 4)
        if self.follow_up.total:
            out["follow_up_accuracy"] = round(self.follow_up.rate, 4)
        return out


def render(kind: str, score: PartScore, *, show_misses: int = 0) -> str:
    """A plain-text report of one part."""
    name = "category" if kind == "scan" else "exact intent set"
    lines = [
        f"== {kind} · {score.part} ({score.classification.total} cases)",
        f"classification ({name}): {score.classification}",
        f"answer rubric:               {score.rubric}",
    ]
    if score.multi_recall.total:
        lines.append(f"multi-intent recall:         {score.multi_recall}")
    if score.follow_up.total:
        lines.append(f"follow-up accuracy:          {score.follow_up}")
    lines.append(f"per {'category' if kind == 'scan' else 'intent'}: classification | rubric")
    for label, (cls, rub) in sorted(score.by_label.items()):
        lines.append(f"  {label:<16} {cls} | {rub}")
    if score.confusions:
        lines.append("confusion pairs (expected → got):")
        lines += [f"  {e} → {g}: {n}" for (e, g), n in score.confusions.most_common(10)]
    if show_misses:
        lines.append("misses:")
        lines += [f"  {m}" for m in score.misses[:show_misses]]
    return "\n".join(lines)
