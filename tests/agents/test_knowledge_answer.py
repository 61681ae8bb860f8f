"""answer_for_scan and the scan-context message convention."""

from __future__ import annotations

import pytest

from agents.knowledge import (
    KnowledgeBase,
    answer_for_scan,
    parse_scan_context,
    scan_context_message,
)
from agents.llm.ports import ChatMessage
from schemas.classification import RECYCLABLE, UNCLASSIFIED, Classification


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


def _pet() -> Classification:
    return Classification(
        major_category=RECYCLABLE, middle_category="무색페트병", minor_category="먹는샘물PET병"
    )


def test_clean_recyclable_has_steps_and_no_insufficiencies(kb: KnowledgeBase) -> None:
    rule = kb.rule_for(_pet())
    answer = answer_for_scan(_pet(), rule, ["cap_attached"], "뚜껑 닫은 생수병")
    assert answer.insufficiencies == []  # a closed cap is right for clear PET
    assert rule is not None and answer.disposal_steps == rule.steps
    # the opening names the item and where it goes, the category only in brackets
    assert answer.user_answer.startswith(
        "생수병은 투명(무색) 페트병 전용 칸으로 버려요 (재활용폐기물 › 무색페트병)."
    )
    assert "1. 비우기:" in answer.user_answer and "라벨 떼기" in answer.user_answer


def test_problem_tags_become_insufficiencies_for_their_category(kb: KnowledgeBase) -> None:
    rule = kb.rule_for(_pet())
    answer = answer_for_scan(
        _pet(), rule, ["label_attached", "contaminated", "label_attached"], None
    )
    assert len(answer.insufficiencies) == 2
    assert "라벨" in answer.insufficiencies[0] and "종량제봉투" in answer.insufficiencies[1]
    assert "먼저 확인해 주세요" in answer.user_answer
    glass = Classification(
        major_category=RECYCLABLE, middle_category="유리병", minor_category="소주병"
    )
    capped = answer_for_scan(glass, kb.rule_for(glass), ["cap_attached", "deposit_bottle"], None)
    assert len(capped.insufficiencies) == 1 and "뚜껑" in capped.insufficiencies[0]


def test_non_recyclable_answer_names_the_major_category(kb: KnowledgeBase) -> None:
    bone = kb.match("치킨뼈").classification  # type: ignore[union-attr]
    answer = answer_for_scan(bone, kb.rule_for(bone), ["contaminated"], "양념 묻은 치킨뼈")
    assert answer.insufficiencies == []
    assert answer.user_answer.startswith("치킨뼈는 종량제봉투로 버려요 (일반종량제폐기물 ›")
    assert "종량제봉투" in answer.disposal_steps["담기"]


def test_unclassified_asks_instead_of_inventing(kb: KnowledgeBase) -> None:
    unknown = Classification(major_category=UNCLASSIFIED, middle_category=UNCLASSIFIED)
    answer = answer_for_scan(unknown, kb.rule_for(unknown), [], "이거 뭐예요")
    assert answer.insufficiencies and "알려" in answer.insufficiencies[0]
    assert answer.user_answer.endswith("(예: 페트병, 종이 상자, 건전지)")
    assert "?" in answer.user_answer


def test_missing_rule_is_an_insufficiency() -> None:
    odd = Classification(major_category=RECYCLABLE, middle_category="우주선")
    answer = answer_for_scan(odd, None, [], None)
    assert answer.disposal_steps == {} and answer.insufficiencies
    assert "시군구" in answer.user_answer


def test_scan_context_round_trip(kb: KnowledgeBase) -> None:
    rule = kb.rule_for(_pet())
    message = scan_context_message(_pet(), rule, ["label_attached"], "라벨 안 뗀 생수병")
    assert message.role == "system" and "무색페트병" in message.content  # UTF-8, not \u escapes
    context = parse_scan_context([ChatMessage(role="user", content="hi"), message])
    assert context is not None
    assert context.classification == _pet() and context.disposal_rule == rule
    assert context.situation_tags == ["label_attached"] and context.hint == "라벨 안 뗀 생수병"
    assert parse_scan_context([ChatMessage(role="user", content="hi")]) is None
    broken = ChatMessage(role="system", content=message.content[:40])
    with pytest.raises(ValueError):
        parse_scan_context([broken])
