"""The item-level guide: coverage, each condition class, wording order, questions, rewards."""

from __future__ import annotations

import pytest

from agents.knowledge import KnowledgeBase, answer_for_scan
from agents.llm.local import LocalVision
from schemas.classification import ScanAnswer

SEOUL = (
    "종로구 중구 용산구 성동구 광진구 동대문구 중랑구 성북구 강북구 도봉구 노원구 은평구 "
    "서대문구 마포구 양천구 강서구 구로구 금천구 영등포구 동작구 관악구 서초구 강남구 송파구 "
    "강동구"
).split()


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


def scan(kb: KnowledgeBase, hint: str) -> tuple[str, str, ScanAnswer]:
    """(major, middle, answer) as the scan chain computes them from the user's text."""
    seen = LocalVision(kb).classify_text(hint)
    c = seen.classification
    rule = None if c.is_unclassified else kb.rule_for(c, hint)
    return c.major_category, c.middle_category, answer_for_scan(c, rule, seen.situation_tags, hint)


def test_at_least_500_items_each_with_own_steps_and_a_source(kb: KnowledgeBase) -> None:
    items = kb.items()
    assert len(items) >= 500
    sources = kb.guide_sources()
    for item in items:
        res = kb.resolve(item.name)
        assert res is not None, item.name
        assert res.steps and res.source in sources.values(), item.name
        assert res.item.middle == item.middle or res.conditions, item.name


def test_every_seoul_district_has_notes_for_the_four_topics(kb: KnowledgeBase) -> None:
    assert len(SEOUL) == 25
    for district in SEOUL:
        for text in ("스티로폼", "아이스팩", "폐식용유", "소파"):
            res = kb.resolve(f"{district} {text}")
            assert res is not None and res.district_note, (district, text)
            assert district in res.district_note and "120" in res.district_note


def test_colour_decides_clear_pet(kb: KnowledgeBase) -> None:
    _major, middle, answer = scan(kb, "초록색 생수병")
    assert middle == "플라스틱류"
    assert answer.user_answer.startswith("생수병은 색이 있어서 플라스틱류로 버려요")
    assert scan(kb, "생수병")[1] == "무색페트병"


def test_washable_contamination_adds_a_rinse_step_and_the_other_branch(kb: KnowledgeBase) -> None:
    _, middle, answer = scan(kb, "음식물 묻은 배달용기")
    assert middle == "플라스틱류"
    assert next(iter(answer.disposal_steps)) == "씻기"
    assert any("종량제봉투" in issue for issue in answer.insufficiencies)
    text = answer.user_answer
    assert text.index("먼저 확인해 주세요") < text.index("1. 씻기")  # caveats before steps


def test_unwashable_residue_goes_to_the_volume_rate_bag(kb: KnowledgeBase) -> None:
    major, _middle, answer = scan(kb, "떡볶이 용기 빨간물 배어서 안 빠져요")
    assert major == "일반종량제폐기물"
    assert "씻어도 오염이 남아서" in answer.user_answer


def test_attachments_are_handled_as_their_own_material(kb: KnowledgeBase) -> None:
    _, middle, pump = scan(kb, "펌프 달린 샴푸통")
    assert middle == "플라스틱류" and "펌프 분리하기" in pump.disposal_steps
    assert "스프링" in pump.disposal_steps["펌프 분리하기"]
    _, _, jar = scan(kb, "뚜껑 달린 잼병")
    assert "뚜껑 빼기" in jar.disposal_steps and jar.insufficiencies


def test_composites_give_both_branches(kb: KnowledgeBase) -> None:
    _, _, answer = scan(kb, "분리가 안 되는 플라스틱 바구니")
    assert "여러 재질이 섞여 있어서" in answer.user_answer
    assert any("떼어 낼 수 없으면 종량제봉투" in i for i in answer.insufficiencies)


def test_broken_glass_and_lamps_leave_recycling(kb: KnowledgeBase) -> None:
    major, middle, answer = scan(kb, "깨진 소주병")
    assert (major, middle) == ("불연성종량제폐기물", "깨진유리·도자기")
    assert answer.user_answer.startswith("소주병은 깨져서")
    assert "신문지" in answer.user_answer and "보증금" not in answer.user_answer
    assert scan(kb, "깨진 형광등")[1] == "깨진유리·도자기"


def test_hazardous_residue_blocks_until_cleared(kb: KnowledgeBase) -> None:
    for hint in ("부탄가스", "가스 남은 부탄가스", "라이터", "페인트통"):
        answer = scan(kb, hint)[2]
        assert answer.insufficiencies, hint
    assert scan(kb, "페인트 남은 통")[1] == "유해화학제품"
    assert scan(kb, "다 쓴 부탄가스 구멍 뚫었어요")[2].insufficiencies == []
    assert scan(kb, "빈 페인트통 말린 거")[2].insufficiencies == []


def test_size_turns_bulky_things_into_bulk_waste(kb: KnowledgeBase) -> None:
    assert scan(kb, "곰인형")[0] == "일반종량제폐기물"
    major, _, answer = scan(kb, "큰 곰인형")
    assert major == "대형폐기물" and "크기가 커서" in answer.user_answer
    assert scan(kb, "큰 페트병")[1] == "무색페트병"  # size changes only bulky things
    assert scan(kb, "각목")[0] == "일반종량제폐기물"  # wood that fits the bag
    assert scan(kb, "큰 각목")[0] == "대형폐기물"


def test_the_most_specific_noun_beats_an_adjective(kb: KnowledgeBase) -> None:
    _, middle, answer = scan(kb, "코팅된 종이컵")
    assert middle == "종이팩" and answer.user_answer.startswith("종이컵은")
    assert scan(kb, "코팅된 종이")[0] == "일반종량제폐기물"
    assert scan(kb, "초록색 페트병")[1] == "플라스틱류"  # the noun itself says coloured


def test_item_level_facts_without_category_filler(kb: KnowledgeBase) -> None:
    toothbrush = scan(kb, "칫솔")[2].user_answer
    assert "건전지" not in toothbrush and "대형폐기물" not in toothbrush
    blanket = scan(kb, "전기장판")[2].user_answer
    assert "냉장고" not in blanket and "소형가전" in blanket
    assert scan(kb, "랩")[0] == "일반종량제폐기물"
    assert "폐식용유 수거함" in scan(kb, "폐식용유")[2].user_answer


@pytest.mark.parametrize(
    ("hint", "resolved"),
    [
        ("전구", "LED 전구 백열"),
        ("병뚜껑", "금속 플라스틱"),
        ("컵라면 용기", "스티로폼 종이"),
        ("아이스팩", "물 젤"),
        ("유리", "유리병 거울"),  # glass named alone: only bottles are 유리병류
        ("체온계", "전자 수은"),  # a mercury thermometer is hazardous
        ("카트리지", "가스 잉크 정수기"),  # a gas cartridge must be emptied and pierced
        ("천", "의류수거함 종량제봉투"),  # clean clothing or scraps
        ("섬유", "의류수거함 헝겊"),
    ],
)
def test_ambiguous_materials_ask(kb: KnowledgeBase, hint: str, resolved: str) -> None:
    answer = scan(kb, hint)[2]
    assert "확인이 필요해요" in answer.user_answer
    assert all(word in answer.user_answer for word in resolved.split())
    assert answer.insufficiencies  # no reward for a guess
    assert LocalVision(kb).classify_text(hint).question  # asked on the scan's vision stage too


def test_a_named_variant_does_not_ask(kb: KnowledgeBase) -> None:
    for hint in ("LED 전구", "플라스틱 병뚜껑", "젤 아이스팩", "종이 컵라면", "유리병", "유리컵"):
        assert "확인이 필요해요" not in scan(kb, hint)[2].user_answer, hint


def test_rewards_only_for_confident_followed_safe_items(kb: KnowledgeBase) -> None:
    def reward(hint: str) -> str | None:
        seen = LocalVision(kb).classify_text(hint)
        c = seen.classification
        rule = kb.rule_for(c, hint)
        answer = answer_for_scan(c, rule, seen.situation_tags, hint)
        found = kb.reward_for(
            c, rule_found=rule is not None, insufficiencies=answer.insufficiencies
        )
        return found.name if found else None

    assert reward("라벨 뗀 생수병") == "페티"
    assert reward("다 쓴 부탄가스 구멍 뚫었어요") == "메탈리"
    for unsafe_or_unsure in ("부탄가스", "페인트통", "병뚜껑", "전구", "음식물 묻은 배달용기"):
        assert reward(unsafe_or_unsure) is None, unsafe_or_unsure
    assert reward("랩") is None  # 종량제: not a recyclable, no character
    assert reward("쇠젓가락") == "메탈리"
    for precious in ("금반지", "은수저", "금목걸이", "18k 반지"):  # sold, not a recyclable
        assert reward(precious) is None, precious
    assert reward("생숫병") is None  # a typo match is asked back, not rewarded


@pytest.mark.parametrize(
    ("hint", "item", "where"),
    [
        ("건조기 시트", "건조기 시트", "종량제봉투"),  # was 건조기 (폐가전)
        ("섬유유연제 시트", "건조기 시트", "종량제봉투"),  # was 세제통 (플라스틱류)
        ("변기 뚫는 거", "뚫어뻥", "종량제봉투"),  # was 변기 (대형폐기물)
        ("테이프 클리너", "돌돌이", "종량제봉투"),  # was 종이 박스 테이프
        ("배수구 클리너", "세제통", "플라스틱류"),  # was 손톱깎이 (fuzzy 클립)
        ("정전기 청소포", "걸레", "종량제봉투"),  # once unknown
        ("재봉틀", "재봉틀", "소형가전 수거함"),  # once unknown
        ("빗", "머리빗", "종량제봉투"),
        ("선크림", "립밤", "종량제봉투"),
    ],
)
def test_household_things_a_probe_found_go_where_the_guides_say(
    kb: KnowledgeBase, hint: str, item: str, where: str
) -> None:
    res = kb.resolve(hint)
    assert res is not None, hint
    assert (res.item.name, res.where) == (item, where)
