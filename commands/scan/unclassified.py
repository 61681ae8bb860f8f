"""The complete answer of a scan that could not be classified.

A 미분류 result is still shown to the user as a result: the client prints the minor category in
a sentence ("이 쓰레기는 …으로 보이네요") and lists the guide's steps. So an unclassified
classification always has readable names, and its answer has general steps and tells the user
how to get a real answer (retake the photo, or type what the item is).
"""

from __future__ import annotations

from schemas.classification import UNCLASSIFIED, Classification, ScanAnswer

UNKNOWN_ITEM = "알 수 없음"

GENERAL_STEPS = {
    "다시 찍기": "물건 하나만 화면 가운데에 오도록, 밝은 곳에서 가까이 찍어 다시 스캔해 주세요.",
    "이름 알려 주기": "무엇인지 알면 물건 이름이나 재질(예: 페트병, 종이 상자, 건전지)을 입력해 "
    "다시 스캔하거나 채팅으로 물어봐 주세요.",
    "분리배출 표시 확인": "물건이나 포장에 있는 분리배출 표시(페트, 플라스틱, 캔, 종이 등)를 "
    "확인해 그 재질로 분리배출해요.",
    "모를 때는 종량제 봉투": "재질을 알 수 없거나 음식물·기름으로 심하게 오염된 물건은 일반 "
    "종량제 봉투에 넣어 버려요.",
}
RETAKE_SUGGESTION = (
    "사진을 다시 찍어 스캔하거나, 물건 이름을 입력해 주시면 정확한 배출 방법을 알려 드릴게요."
)


def readable_classification(classification: Classification) -> Classification:
    """An unclassified ``classification`` (or one with no major category at all) with every
    name filled in; any other is returned unchanged."""
    if not classification.is_unclassified and classification.major_category.strip():
        return classification
    return Classification(
        major_category=UNCLASSIFIED,
        middle_category=classification.middle_category.strip() or UNCLASSIFIED,
        minor_category=_minor(classification.minor_category),
    )


def _minor(name: str) -> str:
    text = name.strip()
    return UNKNOWN_ITEM if not text or text == UNCLASSIFIED else text


def unclassified_answer(given: ScanAnswer, question: str | None) -> ScanAnswer:
    """``given`` (what the knowledge base says for an unclassified item) made complete:
    general steps when it has none, and a user answer that asks what the item is and
    suggests retaking the photo or typing its name."""
    steps = given.disposal_steps or dict(GENERAL_STEPS)
    asked = (question or given.user_answer).strip()
    user_answer = f"{asked}\n{RETAKE_SUGGESTION}" if asked else RETAKE_SUGGESTION
    return ScanAnswer(
        disposal_steps=steps,
        insufficiencies=given.insufficiencies,
        user_answer=user_answer,
    )
