"""Intent accuracy of the local classifier on a labelled set of Korean messages.

tests/agents/data/intents_labelled.jsonl: ``{"message", "previous_intent", "expected"}``, written
for evaluation only (none of its sentences is a training example). A message counts as correct
only when the exact set of intents matches. Run with ``-s`` to see the report.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agents.chat.intents import Intent, LocalIntentClassifier
from agents.chat.intents.local import load_examples
from agents.chat.intents.similarity import normalise

DATA = Path(__file__).parent / "data" / "intents_labelled.jsonl"
REQUIRED_ACCURACY = 0.90


def _rows() -> list[dict[str, object]]:
    with DATA.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _is_short(message: str) -> bool:
    return len("".join(message.split())) <= 5


def test_labelled_set_shape() -> None:
    rows = _rows()
    assert len(rows) >= 210
    multi = [r for r in rows if len(r["expected"]) > 1]  # type: ignore[arg-type]
    assert len(multi) >= 35
    assert sum(_is_short(str(r["message"])) for r in rows) >= 20
    assert sum(r["previous_intent"] is not None for r in rows) >= 20
    coverage = Counter(i for r in rows for i in r["expected"])  # type: ignore[attr-defined]
    assert set(coverage) == {i.value for i in Intent}
    assert min(coverage.values()) >= 15, coverage
    for r in rows:  # every label is a real intent, no duplicates within a row
        expected = [Intent(i) for i in r["expected"]]  # type: ignore[attr-defined]
        assert len(expected) == len(set(expected)), r
        if r["previous_intent"] is not None:
            Intent(str(r["previous_intent"]))
    messages = [(normalise(str(r["message"])), r["previous_intent"]) for r in rows]
    assert len(messages) == len(set(messages)), "duplicate evaluation rows"


def test_evaluation_sentences_are_not_training_examples() -> None:
    training = {normalise(text) for text, _ in load_examples()}
    overlap = [r["message"] for r in _rows() if normalise(str(r["message"])) in training]
    assert not overlap


def _label(intents: frozenset[Intent] | set[Intent]) -> str:
    return "+".join(sorted(i.value for i in intents))


@pytest.mark.parametrize("required", [REQUIRED_ACCURACY])
def test_local_classifier_accuracy(required: float) -> None:
    clf = LocalIntentClassifier()
    groups: dict[str, list[bool]] = {"all": [], "multi": [], "short": [], "follow-up": []}
    misses: list[str] = []
    confusion: Counter[tuple[str, str]] = Counter()
    for row in _rows():
        message = str(row["message"])
        previous = Intent(str(row["previous_intent"])) if row["previous_intent"] else None
        expected = {Intent(i) for i in row["expected"]}  # type: ignore[attr-defined]
        got = clf.classify_sync(message, previous_intent=previous).intents
        ok = got == expected
        groups["all"].append(ok)
        if len(expected) > 1:
            groups["multi"].append(ok)
        if _is_short(message):
            groups["short"].append(ok)
        if previous is not None:
            groups["follow-up"].append(ok)
        if not ok:
            confusion[(_label(expected), _label(got))] += 1
            misses.append(
                f"  {message!r} (prev={previous}) expected {_label(expected)}, got {_label(got)}"
            )

    accuracy = sum(groups["all"]) / len(groups["all"])
    print(f"\nintent accuracy (local classifier): {accuracy:.1%}")
    for name, results in groups.items():
        print(f"  {name:10} {sum(results):3}/{len(results):3} = {sum(results) / len(results):.1%}")
    print("confusion of misses (expected -> got):")
    for (wanted, predicted), count in confusion.most_common():
        print(f"  {wanted:35} -> {predicted:35} x{count}")
    print("\n".join(misses))
    assert accuracy >= required, f"accuracy {accuracy:.1%} < {required:.0%}\n" + "\n".join(misses)
    assert sum(groups["multi"]) / len(groups["multi"]) >= 0.85
