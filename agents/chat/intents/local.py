"""The local intent classifier: deterministic, offline, fast (well under 2 ms per message).

Model confidence = a softmax over per-intent similarity of the clause to labelled training
examples; DOMAIN.md's keyword boost, chain-of-intent bonus, short-message penalty and threshold
come on top (``scoring``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from agents.chat.intents.decompose import (
    assemble,
    is_follow_up,
    split_clauses,
    strip_discourse,
)
from agents.chat.intents.keywords import keyword_hits
from agents.chat.intents.model import Intent, IntentDecision, ScoreBreakdown
from agents.chat.intents.scoring import decide, score_intents
from agents.chat.intents.similarity import ExampleIndex, softmax_confidences

EXAMPLES_PATH = Path(__file__).parent / "data" / "examples.jsonl"

# Similarities of related clauses differ by a few hundredths, so the softmax must be sharp
# (chosen by 10-fold cross-validation on the training examples, not on the evaluation set).
TEMPERATURE = 0.03
# An elliptical follow-up ("내일은?", "침대는?") says too little to be classified on its own
# words; the previous intent is then the best evidence and gets this confidence, scaled down
# by whatever new topic the clause does name.
FOLLOW_UP_CARRY = 0.95
# A clause this similar to an intent's examples names that intent on its own.
STRONG_SIMILARITY = 0.3
# Similarity of the implicit "none of these" option (see ``softmax_confidences``).
REJECT_SIMILARITY = 0.15


def load_examples(path: Path = EXAMPLES_PATH) -> list[tuple[str, Intent]]:
    """Labelled training examples from a JSONL file of ``{"text", "intent"}`` lines."""
    examples: list[tuple[str, Intent]] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                examples.append((str(row["text"]), Intent(row["intent"])))
    return examples


class LocalIntentClassifier:
    """Similarity + keyword classifier with multi-intent decomposition."""

    def __init__(
        self,
        examples: Iterable[tuple[str, Intent]] | None = None,
        *,
        temperature: float = TEMPERATURE,
        follow_up_carry: float = FOLLOW_UP_CARRY,
        reject_similarity: float = REJECT_SIMILARITY,
    ) -> None:
        self._index = ExampleIndex(load_examples() if examples is None else examples)
        self._temperature = temperature
        self._carry = follow_up_carry
        self._reject = reject_similarity

    def model_confidences(
        self, text: str, *, previous_intent: Intent | None = None
    ) -> dict[Intent, float]:
        """The similarity model's confidence per intent, before DOMAIN's adjustments."""
        content = strip_discourse(text)
        sims = self._index.similarities(content)
        conf = softmax_confidences(sims, temperature=self._temperature, reject=self._reject)
        if (
            previous_intent is not None
            and previous_intent is not Intent.GENERAL
            and is_follow_up(text)
        ):
            # A follow-up keeps the previous topic unless it names a new one: a keyword or a
            # close match ("그럼 근처 수거함은?" after waste is about bins), not a stray
            # syllable ("모레는?" sharing 모 with 모아 says nothing about characters).
            hits = keyword_hits(content)
            named = [
                i
                for i in Intent
                if i is not previous_intent
                # general's keywords (안녕, 어때, 왜 …) name no topic, so only a close match
                # ("고마워") lets general take over a follow-up.
                and ((hits.get(i) and i is not Intent.GENERAL) or sims[i] >= STRONG_SIMILARITY)
            ]
            carry = self._carry * (1.0 - max((conf[i] for i in named), default=0.0))
            for intent in Intent:
                if intent is not previous_intent and intent not in named:
                    conf[intent] *= 1.0 - carry
            conf[previous_intent] = max(conf[previous_intent], carry)
        return conf

    def scores(
        self,
        text: str,
        *,
        previous_intent: Intent | None = None,
        message: str | None = None,
    ) -> dict[Intent, ScoreBreakdown]:
        """Every intent's score breakdown for one clause (``message``: the whole message,
        which decides the short-message penalty; defaults to ``text``)."""
        model = self.model_confidences(text, previous_intent=previous_intent)
        return score_intents(
            model,
            keyword_hits(text),
            previous=previous_intent,
            message=text if message is None else message,
        )

    def classify_sync(
        self, message: str, *, previous_intent: Intent | None = None
    ) -> IntentDecision:
        """Classify one user message; ``previous_intent`` is the last turn's primary intent."""
        clauses = split_clauses(message)
        cache: dict[tuple[str, Intent | None], tuple[Intent, float]] = {}

        def classify_clause(text: str, previous: Intent | None) -> tuple[Intent, float]:
            key = (text, previous)
            if key not in cache:
                cache[key] = decide(self.scores(text, previous_intent=previous, message=message))
            return cache[key]

        while True:
            parts: list[tuple[str, Intent, float]] = []
            previous = previous_intent
            for clause in clauses:
                intent, confidence = classify_clause(clause, previous)
                parts.append((clause, intent, confidence))
                # Within a message the chain continues clause to clause.
                previous = intent if intent is not Intent.GENERAL else previous
            weak = next((i for i, p in enumerate(parts) if p[1] is Intent.GENERAL), None)
            if weak is None or len(clauses) == 1:
                break
            # A clause without an intent of its own belongs to its neighbour
            # ("날씨랑 | 분리수거 요일 같이 알려줘" cut too early, "안녕 | …" a greeting).
            other = weak - 1 if weak > 0 else weak + 1
            lo, hi = min(weak, other), max(weak, other)
            clauses[lo : hi + 1] = [f"{clauses[lo]} {clauses[hi]}"]
        return assemble(parts, message)

    async def classify(
        self, message: str, *, previous_intent: Intent | None = None
    ) -> IntentDecision:
        """The async face of ``classify_sync`` (the graph awaits any classifier alike)."""
        return self.classify_sync(message, previous_intent=previous_intent)
