"""The local classifier's behaviour: decomposition, follow-ups, debugging scores, speed."""

from __future__ import annotations

import pytest

from agents.chat.intents import Intent, IntentClassifier, LocalIntentClassifier
from agents.chat.intents.decompose import is_follow_up, split_clauses, strip_discourse
from agents.chat.intents.local import load_examples


@pytest.fixture(scope="module")
def clf() -> LocalIntentClassifier:
    return LocalIntentClassifier()


def test_split_clauses_on_compound_markers() -> None:
    assert split_clauses("페트병 어떻게 버려? 근처 수거함도 알려줘") == [
        "페트병 어떻게 버려",
        "근처 수거함도 알려줘",
    ]
    assert split_clauses("폐지 시세 알려주고 근처 고물상도 찾아줘") == [
        "폐지 시세 알려주고",
        "근처 고물상도 찾아줘",
    ]
    assert split_clauses("캔 버리는 법 그리고 오늘 날씨") == ["캔 버리는 법", "오늘 날씨"]
    # 랑/이랑/하고 always cut (a clause without an intent of its own is merged back by the
    # classifier); 와/과 and 및 only when a group marker says several things are asked.
    assert split_clauses("날씨랑 분리수거 요일 같이 알려줘") == [
        "날씨랑",
        "분리수거 요일 같이 알려줘",
    ]
    assert split_clauses("라벨이랑 뚜껑은 어떻게 해") == ["라벨이랑", "뚜껑은 어떻게 해"]
    assert split_clauses("소파 버리는 법이랑 근처 고물상") == ["소파 버리는 법이랑", "근처 고물상"]
    assert split_clauses("라이터 어떻게 버리고 캐릭터는 어떻게 얻어") == [
        "라이터 어떻게 버리고",
        "캐릭터는 어떻게 얻어",
    ]
    assert split_clauses("라이터 버리는 법 알려주며 날씨도 알려줘") == [
        "라이터 버리는 법 알려주며",
        "날씨도 알려줘",
    ]
    assert split_clauses("유리와 캔") == ["유리와 캔"]
    # an added request marked by 도 starts a clause with the words that qualify it
    assert split_clauses("캔 버리는 법 근처 수거함도 알려줘") == ["캔 버리는 법", "근처 수거함도 알려줘"]
    assert split_clauses("칫솔도 재활용돼?") == ["칫솔도 재활용돼"]
    # A comma list is not a compound question; "1.5kg" is not a sentence end.
    assert split_clauses("페트병, 캔, 유리병 어떻게 버려?") == ["페트병, 캔, 유리병 어떻게 버려"]
    assert split_clauses("고철 1.5kg 얼마야") == ["고철 1.5kg 얼마야"]
    assert split_clauses("   ") == [""]


def test_follow_up_detection_and_discourse_words() -> None:
    for text in ("그럼 유리병은?", "내일은?", "침대는?", "좀 더 밝게 다시", "거기 몇 시까지 해?"):
        assert is_follow_up(text), text
    for text in ("페트병은 어떻게 버려야 하나요?", "오늘 날씨 어때", "안녕"):
        assert not is_follow_up(text), text
    assert strip_discourse("그럼 음 유리병은?") == "유리병은?"


async def test_implements_the_port(clf: LocalIntentClassifier) -> None:
    port: IntentClassifier = clf
    decision = await port.classify("페트병 어떻게 버려?")
    assert decision.intents == {Intent.WASTE}
    assert decision.primary is Intent.WASTE and not decision.is_multi
    assert decision.sub_queries[0].text == "페트병 어떻게 버려?"  # the user's own words


def test_compound_question_fans_out_in_order(clf: LocalIntentClassifier) -> None:
    decision = clf.classify_sync("페트병 어떻게 버려? 근처 수거함도 알려줘")
    assert decision.is_multi
    assert decision.ordered_intents == [Intent.WASTE, Intent.COLLECTION_POINT]
    assert [sq.text for sq in decision.sub_queries] == [
        "페트병 어떻게 버려",
        "근처 수거함도 알려줘",
    ]
    assert all(sq.confidence >= 0.6 for sq in decision.sub_queries)
    assert decision.primary in decision.intents


def test_same_intent_twice_is_one_sub_query(clf: LocalIntentClassifier) -> None:
    decision = clf.classify_sync("소파랑 냉장고 버리는 비용 둘 다 알려줘")
    assert decision.intents == {Intent.BULK_WASTE}
    assert not decision.is_multi and len(decision.sub_queries) == 1


def test_greeting_next_to_a_request_is_not_a_task(clf: LocalIntentClassifier) -> None:
    assert clf.classify_sync("안녕! 유리병 어떻게 버려?").intents == {Intent.WASTE}
    assert clf.classify_sync("안녕").intents == {Intent.GENERAL}


def test_follow_up_resolves_through_previous_intent(clf: LocalIntentClassifier) -> None:
    after_waste = clf.classify_sync("그럼 근처 수거함은?", previous_intent=Intent.WASTE)
    assert after_waste.intents == {Intent.COLLECTION_POINT}
    # An elliptical follow-up says nothing on its own; the previous turn decides.
    for text in ("모레는?", "이건 어때?", "다른 건?"):
        assert clf.classify_sync(text).intents == {Intent.GENERAL}, text
        for previous in (Intent.WEATHER, Intent.WASTE, Intent.RECYCLABLE_PRICE):
            assert clf.classify_sync(text, previous_intent=previous).intents == {previous}
    assert clf.classify_sync("침대는?", previous_intent=Intent.BULK_WASTE).intents == {
        Intent.BULK_WASTE
    }
    # ...but a follow-up that names a new topic moves to it.
    moved = clf.classify_sync("그럼 캐릭터는 어떻게 모아?", previous_intent=Intent.WASTE)
    assert moved.intents == {Intent.CHARACTER}
    # general carries nothing over.
    assert clf.classify_sync("고마워", previous_intent=Intent.WASTE).intents == {Intent.GENERAL}


def test_transition_bonus_reaches_the_decision(clf: LocalIntentClassifier) -> None:
    cold = clf.scores("가까운 데는?")[Intent.LOCATION]
    warm = clf.scores("가까운 데는?", previous_intent=Intent.WASTE)[Intent.LOCATION]
    assert cold.transition_bonus == 0.0
    assert warm.transition_bonus == pytest.approx(0.15)
    parts = warm.model + warm.keyword_boost + warm.transition_bonus + warm.short_penalty
    assert warm.final == pytest.approx(min(1.0, parts), abs=1e-3)


def test_scores_expose_every_intent_with_its_parts(clf: LocalIntentClassifier) -> None:
    scores = clf.scores("소파?")
    assert set(scores) == set(Intent)
    sofa = scores[Intent.BULK_WASTE]
    assert sofa.keyword_hits == ("소파",)
    assert sofa.short_penalty == pytest.approx(-0.2)
    assert sofa.final == pytest.approx(
        min(1.0, sofa.model + sofa.keyword_boost + sofa.short_penalty), abs=1e-3
    )
    assert max(scores.values(), key=lambda s: s.final).intent is Intent.BULK_WASTE
    model = clf.model_confidences("소파?")
    assert sum(model.values()) <= 1.0 + 1e-9  # a distribution (with a "none" share)


def test_noise_is_general(clf: LocalIntentClassifier) -> None:
    for text in ("ㅋㅋㅋㅋ", "음..", "", "?!", "asdf qwer"):
        assert clf.classify_sync(text).intents == {Intent.GENERAL}, text


def test_deterministic_and_trainable_from_given_examples() -> None:
    tiny = LocalIntentClassifier(
        [("날씨 알려줘", Intent.WEATHER), ("캐릭터 모으기", Intent.CHARACTER)]
    )
    assert tiny.classify_sync("오늘 날씨 어때?").intents == {Intent.WEATHER}
    assert tiny.classify_sync("오늘 날씨 어때?") == tiny.classify_sync("오늘 날씨 어때?")
    with pytest.raises(ValueError):
        LocalIntentClassifier([])


def test_training_examples_cover_every_intent() -> None:
    examples = load_examples()
    per_intent = {intent: 0 for intent in Intent}
    for _, intent in examples:
        per_intent[intent] += 1
    assert min(per_intent.values()) >= 40, per_intent
