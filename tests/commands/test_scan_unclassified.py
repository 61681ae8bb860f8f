"""The 미분류 answer's parts: readable names and a complete answer, never empty strings. (The
whole path — a photo nothing recognises, over HTTP — is tests/e2e/test_pwa_scan.py.)"""

from __future__ import annotations

import pytest

from agents.knowledge.answer import UNCLASSIFIED_QUESTION
from commands.scan.unclassified import (
    GENERAL_STEPS,
    RETAKE_SUGGESTION,
    UNKNOWN_ITEM,
    readable_classification,
    unclassified_answer,
)
from schemas.classification import Classification, ScanAnswer


@pytest.mark.parametrize("given", [
    Classification(major_category="미분류"),
    Classification(major_category="미분류", middle_category="미분류", minor_category="미분류"),
    Classification(major_category=""),  # a model that named nothing at all
    Classification(major_category="  ", middle_category=" ", minor_category=" "),
])
def test_unclassified_names_are_readable(given: Classification) -> None:
    assert readable_classification(given) == Classification(
        major_category="미분류", middle_category="미분류", minor_category=UNKNOWN_ITEM)


def test_a_named_guess_is_kept_and_a_classification_untouched() -> None:
    guess = Classification(major_category="미분류", middle_category="", minor_category="우산")
    assert readable_classification(guess).minor_category == "우산"
    can = Classification(major_category="재활용폐기물", middle_category="금속류",
                         minor_category="음료캔")
    assert readable_classification(can) is can


def test_answer_has_steps_and_asks_to_retake_or_type() -> None:
    bare = ScanAnswer(insufficiencies=["어떤 물건인지 알 수 없어요"], user_answer="")
    answer = unclassified_answer(bare, UNCLASSIFIED_QUESTION)
    assert answer.disposal_steps == GENERAL_STEPS
    assert all(k.strip() and v.strip() for k, v in answer.disposal_steps.items())
    assert answer.user_answer.startswith(UNCLASSIFIED_QUESTION)
    assert RETAKE_SUGGESTION in answer.user_answer
    assert answer.insufficiencies == bare.insufficiencies
    # steps the knowledge base does give are kept; no question still gives a useful answer
    own = ScanAnswer(disposal_steps={"확인": "재질을 확인해요"})
    kept = unclassified_answer(own, None)
    assert kept.disposal_steps == {"확인": "재질을 확인해요"}
    assert kept.user_answer == RETAKE_SUGGESTION
