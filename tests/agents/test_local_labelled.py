"""Correctness of the local provider on the labelled scan set (acceptance: >= 95 %).

Each line of data/scan_labelled.jsonl was written by hand with the expected category and the
reward derived from DOMAIN.md's rule (recyclable + rule found + no insufficiencies → the
character of the middle category), not from running the code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.knowledge import KnowledgeBase, answer_for_scan
from agents.llm.local import LocalVision
from agents.llm.ports import ImageInput
from schemas.classification import RECYCLABLE

DATA = Path(__file__).parent / "data" / "scan_labelled.jsonl"


def _reward(
    kb: KnowledgeBase, major: str, middle: str, rule_found: bool, issues: list[str]
) -> str | None:
    # DOMAIN.md, restated here independently of KnowledgeBase.reward_for
    if major != RECYCLABLE or not rule_found or issues:
        return None
    character = next((c for c in kb.characters() if c.match_label == middle), None)
    return character.name if character else None


@pytest.mark.asyncio
async def test_local_provider_accuracy_on_labelled_set(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]
    assert len(rows) >= 110
    kb = KnowledgeBase.load()
    vision = LocalVision(kb)
    misses: list[str] = []
    for row in rows:
        image = ImageInput(filename=row.get("filename"), content_type="image/jpeg")
        seen = await vision.classify(image, hint=row["hint"])
        rule = kb.rule_for(seen.classification, row["hint"])  # as the rule stage does
        answer = answer_for_scan(seen.classification, rule, seen.situation_tags, row["hint"])
        got = (
            seen.classification.major_category,
            seen.classification.middle_category,
            _reward(
                kb,
                seen.classification.major_category,
                seen.classification.middle_category,
                rule is not None,
                answer.insufficiencies,
            ),
        )
        expected = (row["expected_major"], row["expected_middle"], row["reward"])
        if got != expected:
            misses.append(f"{row['hint']!r}/{row.get('filename')}: expected {expected}, got {got}")
        if seen.classification.is_unclassified:
            assert seen.question and answer.insufficiencies  # never invents, always asks
    accuracy = 1 - len(misses) / len(rows)
    with capsys.disabled():
        print(f"\nlocal provider accuracy: {len(rows) - len(misses)}/{len(rows)} = {accuracy:.1%}")
        for miss in misses:
            print(f"  miss: {miss}")
    assert accuracy >= 0.95, misses
