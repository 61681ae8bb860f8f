"""Running the labelled sets through the product: scans through the local vision + rule +
answer stages, chat messages through the chat graph with the offline sources (sample data),
the local intent classifier and the local model — as ``eco2 up`` runs without API keys."""

from __future__ import annotations

from typing import Any

from agents.chat import (
    GeoPoint,
    HistoryItem,
    TurnAborted,
    TurnInput,
    TurnResult,
    build_chat_graph,
    offline_chat_deps,
)
from agents.knowledge import KnowledgeBase, answer_for_scan
from agents.llm.local import LocalVision
from infra.eval_sets import PartScore, load_cases, rubric

# The user's location in chat cases: Seoul City Hall (so location questions do not stop for it).
CITY_HALL = GeoPoint(latitude=37.5663, longitude=126.9779)


def eval_scan(part: str, kb: KnowledgeBase | None = None) -> PartScore:
    kb = kb or KnowledgeBase.load()
    vision = LocalVision(kb)
    score = PartScore(part)
    for case in load_cases("scan", part):
        seen = vision.classify_text(case["text"])
        got = seen.classification
        rule = None if got.is_unclassified else kb.rule_for(got, case["text"])
        answer = answer_for_scan(got, rule, seen.situation_tags, case["text"])
        right = (got.major_category, got.middle_category) == (case["major"], case["middle"])
        problems = rubric(answer.user_answer, case["must"], case["must_not"])
        score.classification.add(right)
        score.rubric.add(not problems)
        cls, rub = score.label(case["middle"])
        cls.add(right)
        rub.add(not problems)
        if not right:
            score.confusions[(case["middle"], got.middle_category or got.major_category)] += 1
        if not right or problems:
            score.misses.append(f"{case['id']} {case['text']!r}: {got.middle_category} {problems}")
    return score


async def _turn(graph: Any, message: str, history: list[HistoryItem]) -> TurnResult | None:
    previous = next((h.intent for h in reversed(history) if h.intent), None)
    turn = TurnInput(
        chat_id="eval",
        user_id="eval",
        message=message,
        location=CITY_HALL,
        history=history,
        previous_intent=previous,
    )
    result: TurnResult | None = None
    try:
        async for item in graph.run(turn):
            if isinstance(item, TurnResult):
                result = item
    except TurnAborted:
        return None
    return result


async def eval_chat(part: str, kb: KnowledgeBase | None = None) -> PartScore:
    graph = build_chat_graph(offline_chat_deps(kb or KnowledgeBase.load()))
    score = PartScore(part)
    for case in load_cases("chat", part):
        history: list[HistoryItem] = []
        last_answer = ""
        for earlier in case["prev"]:
            before = await _turn(graph, earlier, history)
            last_answer = before.answer if before else ""
            history += [
                HistoryItem(role="user", content=earlier, intent=before.intent if before else None),
                HistoryItem(role="assistant", content=last_answer),
            ]
        result = await _turn(graph, case["message"], history)
        answer = result.answer if result else ""
        got = set(result.intents) if result else set()
        expected = set(case["intents"])
        right = got == expected
        problems = rubric(answer, case["must"], case["must_not"])
        if case["prev"] and answer.strip() == last_answer.strip():
            problems.append("repeats the previous answer")
        score.classification.add(right)
        score.rubric.add(not problems)
        for intent in sorted(expected):
            cls, rub = score.label(intent)
            cls.add(intent in got)
            rub.add(not problems)
        if case["kind"] == "multi":
            for intent in expected:
                score.multi_recall.add(intent in got)
        if case["kind"] == "follow_up":
            score.follow_up.add(right and not problems)
        if not right:
            score.confusions[(",".join(sorted(expected)), ",".join(sorted(got)) or "-")] += 1
        if not right or problems:
            score.misses.append(f"{case['id']} {case['message']!r}: {sorted(got)} {problems}")
    return score
