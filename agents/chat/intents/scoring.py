"""DOMAIN.md's confidence scoring, shared by the local and the LLM classifier.

final = model confidence + keyword boost + chain-of-intent transition bonus + short-message
penalty, clamped to [0, 1]; the best intent below ``THRESHOLD`` becomes ``general``.
"""

from __future__ import annotations

from collections.abc import Mapping

from agents.chat.intents.model import Intent, ScoreBreakdown

THRESHOLD = 0.6
KEYWORD_STEP = 0.1
KEYWORD_CAP = 0.2
NO_KEYWORD_PENALTY = -0.1
SHORT_PENALTY = -0.2
SHORT_MESSAGE_CHARS = 5  # "under 5 characters", whitespace not counted
MAX_TRANSITION = 0.15

_I = Intent

# previous turn's intent -> likely next intents. The three anchors are DOMAIN's (waste→location
# 0.15, waste→collection_point 0.10, bulk_waste→location 0.12); the rest follow the same idea:
# a disposal answer leads to "where", a price answer to "where to sell", and most topics
# continue with a follow-up on themselves.
# fmt: off
TRANSITIONS: Mapping[Intent, Mapping[Intent, float]] = {
    _I.WASTE: {
        _I.LOCATION: 0.15, _I.COLLECTION_POINT: 0.10, _I.WASTE: 0.05, _I.BULK_WASTE: 0.05,
        _I.RECYCLABLE_PRICE: 0.03, _I.CHARACTER: 0.03, _I.IMAGE_GENERATION: 0.03,
    },
    _I.BULK_WASTE: {
        _I.LOCATION: 0.12, _I.BULK_WASTE: 0.10, _I.COLLECTION_POINT: 0.05, _I.WASTE: 0.05,
        _I.RECYCLABLE_PRICE: 0.03,
    },
    _I.COLLECTION_POINT: {
        _I.LOCATION: 0.10, _I.COLLECTION_POINT: 0.10, _I.WASTE: 0.05,
    },
    _I.LOCATION: {
        _I.LOCATION: 0.10, _I.COLLECTION_POINT: 0.08, _I.WASTE: 0.05, _I.WEATHER: 0.03,
    },
    _I.RECYCLABLE_PRICE: {
        _I.RECYCLABLE_PRICE: 0.10, _I.LOCATION: 0.08, _I.WASTE: 0.05,
    },
    _I.CHARACTER: {_I.CHARACTER: 0.10, _I.WASTE: 0.05, _I.IMAGE_GENERATION: 0.03},
    _I.WEATHER: {_I.WEATHER: 0.10, _I.WASTE: 0.05, _I.COLLECTION_POINT: 0.03},
    _I.IMAGE_GENERATION: {_I.IMAGE_GENERATION: 0.10, _I.WASTE: 0.05},
    _I.WEB_SEARCH: {_I.WEB_SEARCH: 0.10, _I.WASTE: 0.05},
    _I.GENERAL: {_I.WASTE: 0.05, _I.CHARACTER: 0.03},
}
# fmt: on


def keyword_boost(intent: Intent, hits: int) -> float:
    """+0.1 per keyword hit up to +0.2; −0.1 for a non-general intent without any hit."""
    if hits <= 0:
        return 0.0 if intent is Intent.GENERAL else NO_KEYWORD_PENALTY
    return min(KEYWORD_CAP, KEYWORD_STEP * hits)


def transition_bonus(previous: Intent | None, intent: Intent) -> float:
    """Chain-of-intent bonus for ``intent`` following ``previous`` (0 without a previous turn)."""
    if previous is None:
        return 0.0
    return min(MAX_TRANSITION, TRANSITIONS.get(previous, {}).get(intent, 0.0))


def short_penalty(message: str) -> float:
    """−0.2 for a message under five non-space characters: too little to be sure of anything."""
    chars = sum(1 for ch in message if not ch.isspace())
    return SHORT_PENALTY if chars < SHORT_MESSAGE_CHARS else 0.0


def clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def score_intents(
    model: Mapping[Intent, float],
    hits: Mapping[Intent, tuple[str, ...]],
    *,
    previous: Intent | None,
    message: str,
) -> dict[Intent, ScoreBreakdown]:
    """Every intent's breakdown; ``model`` holds the model confidences (missing = 0)."""
    penalty = short_penalty(message)
    out: dict[Intent, ScoreBreakdown] = {}
    for intent in Intent:
        words = hits.get(intent, ())
        base = clamp(model.get(intent, 0.0))
        boost = keyword_boost(intent, len(words))
        bonus = transition_bonus(previous, intent)
        out[intent] = ScoreBreakdown(
            intent=intent,
            model=round(base, 4),
            keyword_hits=words,
            keyword_boost=boost,
            transition_bonus=bonus,
            short_penalty=penalty,
            final=round(clamp(base + boost + bonus + penalty), 4),
        )
    return out


def decide(scores: Mapping[Intent, ScoreBreakdown]) -> tuple[Intent, float]:
    """The best intent and its confidence; below ``THRESHOLD`` the answer is ``general``.

    Ties go to the intent listed first in ``Intent``, so the result is deterministic.
    """
    best = max(Intent, key=lambda i: scores[i].final)
    confidence = scores[best].final
    if best is not Intent.GENERAL and confidence < THRESHOLD:
        return Intent.GENERAL, scores[Intent.GENERAL].final
    return best, confidence
