"""DOMAIN.md's confidence arithmetic: keyword boost, transition bonus, penalty, threshold."""

from __future__ import annotations

import pytest

from agents.chat.intents.keywords import KEYWORDS, keyword_hits
from agents.chat.intents.model import Intent
from agents.chat.intents.scoring import (
    MAX_TRANSITION,
    THRESHOLD,
    TRANSITIONS,
    decide,
    keyword_boost,
    score_intents,
    short_penalty,
    transition_bonus,
)


def test_keyword_boost_is_a_tenth_per_hit_capped_at_two_tenths() -> None:
    assert keyword_boost(Intent.WASTE, 1) == pytest.approx(0.1)
    assert keyword_boost(Intent.WASTE, 2) == pytest.approx(0.2)
    assert keyword_boost(Intent.WASTE, 5) == pytest.approx(0.2)


def test_no_keyword_costs_a_tenth_except_for_general() -> None:
    for intent in Intent:
        expected = 0.0 if intent is Intent.GENERAL else -0.1
        assert keyword_boost(intent, 0) == pytest.approx(expected)


def test_domain_transition_anchors_and_cap() -> None:
    assert transition_bonus(Intent.WASTE, Intent.LOCATION) == pytest.approx(0.15)
    assert transition_bonus(Intent.WASTE, Intent.COLLECTION_POINT) == pytest.approx(0.10)
    assert transition_bonus(Intent.BULK_WASTE, Intent.LOCATION) == pytest.approx(0.12)
    assert transition_bonus(None, Intent.LOCATION) == 0.0
    assert transition_bonus(Intent.WEATHER, Intent.CHARACTER) == 0.0
    assert set(TRANSITIONS) == set(Intent)  # every previous intent has a row
    for row in TRANSITIONS.values():
        assert all(0.0 < bonus <= MAX_TRANSITION for bonus in row.values())


def test_short_penalty_under_five_characters_not_counting_spaces() -> None:
    assert short_penalty("소파?") == pytest.approx(-0.2)
    assert short_penalty("비 와 ?") == pytest.approx(-0.2)  # 4 characters
    assert short_penalty("내일 날씨") == pytest.approx(-0.2)  # 4 characters
    assert short_penalty("폐지 시세야") == 0.0  # 5 characters
    assert short_penalty("페트병 어떻게 버려") == 0.0


def test_keywords_cover_domain_table_and_longest_hit_wins() -> None:
    assert "재활용센터" in KEYWORDS[Intent.LOCATION]
    assert KEYWORDS[Intent.WASTE] == ("버려", "버리", "분리", "재활용", "쓰레기", "폐기")
    # "대형폐기물" is one bulk_waste hit, not also waste's "폐기" nor bulk's own "대형".
    hits = keyword_hits("대형폐기물 신청")
    assert hits[Intent.BULK_WASTE] == ("대형폐기물", "신청")
    assert Intent.WASTE not in hits
    # "재활용센터" is location, not also waste's "재활용".
    assert keyword_hits("재활용센터 어디")[Intent.LOCATION] == ("재활용센터", "어디")
    assert Intent.WASTE not in keyword_hits("재활용센터")
    # Case-insensitive Latin keywords; "비닐" is not rain.
    assert keyword_hits("캔 KG당")[Intent.RECYCLABLE_PRICE] == ("kg",)
    assert Intent.WEATHER not in keyword_hits("비닐 봉지")


def test_final_is_the_sum_clamped_to_unit_interval() -> None:
    model = {Intent.WASTE: 0.5, Intent.LOCATION: 0.95, Intent.CHARACTER: 0.05}
    scores = score_intents(
        model,
        {Intent.WASTE: ("버려",), Intent.LOCATION: ("근처", "어디", "위치")},
        previous=Intent.WASTE,
        message="근처 어디 버려 위치",
    )
    waste = scores[Intent.WASTE]
    assert (waste.keyword_boost, waste.transition_bonus, waste.short_penalty) == (0.1, 0.05, 0.0)
    assert waste.final == pytest.approx(0.65)
    location = scores[Intent.LOCATION]
    assert location.keyword_boost == pytest.approx(0.2)  # three hits, capped
    assert location.final == 1.0  # 0.95 + 0.2 + 0.15, clamped
    assert scores[Intent.CHARACTER].final == 0.0  # 0.05 − 0.1, clamped
    assert scores[Intent.GENERAL].final == 0.0


def test_threshold_sends_weak_best_to_general() -> None:
    def best(model: float, hits: int, previous: Intent | None, message: str) -> Intent:
        words = ("버려", "분리")[:hits]
        scores = score_intents(
            {Intent.WASTE: model, Intent.GENERAL: 0.05},
            {Intent.WASTE: words} if words else {},
            previous=previous,
            message=message,
        )
        return decide(scores)[0]

    long_message = "이거 어떻게 처리하면 돼"
    assert best(0.5, 1, None, long_message) is Intent.WASTE  # 0.6: exactly the threshold
    assert best(0.49, 1, None, long_message) is Intent.GENERAL  # 0.59
    assert best(0.65, 0, None, long_message) is Intent.GENERAL  # 0.55: no keyword
    assert best(0.65, 0, Intent.WASTE, long_message) is Intent.WASTE  # +0.05 chain bonus
    assert best(0.65, 1, None, "캔?") is Intent.GENERAL  # 0.75 − 0.2 short penalty
    assert best(0.75, 1, None, "캔?") is Intent.WASTE  # 0.85 − 0.2
    assert THRESHOLD == 0.6


def test_decide_reports_general_confidence_on_fallback_and_is_deterministic() -> None:
    scores = score_intents(
        {Intent.WEATHER: 0.3, Intent.GENERAL: 0.2}, {}, previous=None, message="글쎄 모르겠네"
    )
    intent, confidence = decide(scores)
    assert intent is Intent.GENERAL and confidence == pytest.approx(0.2)
    tied = score_intents(
        {Intent.WASTE: 0.8, Intent.LOCATION: 0.8}, {}, previous=None, message="어디 버려야 해"
    )
    assert decide(tied)[0] is Intent.WASTE  # ties go to the first listed intent
