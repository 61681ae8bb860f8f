"""Category retrieval for chat RAG: syllable-bigram overlap between a question and each
middle category's text (name, description, steps, what is not accepted, notes)."""

from __future__ import annotations

import math

from agents.knowledge.models import DisposalRule, RuleHit
from agents.knowledge.text import bigrams, compact

# Question words carry no topic; left in, they would make every category look related.
_FILLER = tuple(
    "어떻게 어디에 어디 버려야 버리는 버리면 버려요 버려 버리 방법 알려줘 알려주세요 알려 주세요 "
    "해야 하나요 되나요 돼요 인가요 뭐예요 뭐야 분리수거 분리배출 배출 재활용 쓰레기 이거 그럼 요".split()
)
NAME_SCORE, MAJOR_SCORE, OVERLAP_WEIGHT = 0.85, 0.7, 0.6
MIN_OVERLAP = 0.34


class CategorySearch:
    def __init__(
        self, majors: list[tuple[str, str, list[str]]], rules: dict[str, DisposalRule]
    ) -> None:
        self._rules = rules
        self._docs: list[tuple[str, str, set[str]]] = []  # (middle, compact major, bigrams)
        for major, description, middles in majors:
            for middle in middles:
                rule = rules[middle]
                text = " ".join(
                    [
                        middle,
                        major,
                        description,
                        rule.description,
                        *rule.steps,
                        *rule.steps.values(),
                        *rule.not_accepted,
                        *rule.notes,
                    ]
                )
                self._docs.append((middle, compact(major), bigrams(compact(text))))
        # A bigram found in few categories ("수은") says more than one found in most ("있는").
        frequency: dict[str, int] = {}
        for _, _, doc in self._docs:
            for gram in doc:
                frequency[gram] = frequency.get(gram, 0) + 1
        self._idf = {g: math.log(1 + len(self._docs) / n) for g, n in frequency.items()}
        self._unknown_idf = math.log(1 + len(self._docs))

    def search(self, query: str) -> list[RuleHit]:
        """Category hits for ``query`` with scores in 0..0.85 (below any named-item hit)."""
        key = compact(query)
        for filler in _FILLER:
            key = key.replace(filler, "")
        grams = bigrams(key)
        hits: list[RuleHit] = []
        for middle, major, doc in self._docs:
            if compact(middle) in key:
                score = NAME_SCORE
            elif major in key:
                score = MAJOR_SCORE
            elif grams and (overlap := self._overlap(grams, doc)) >= MIN_OVERLAP:
                score = round(OVERLAP_WEIGHT * overlap, 3)
            else:
                continue
            rule = self._rules[middle]
            hits.append(
                RuleHit(
                    kind="category",
                    title=middle,
                    score=score,
                    classification=rule.classification,
                    rule=rule,
                    text=f"{middle}: {self.summary(rule)}",
                )
            )
        return hits

    def _overlap(self, grams: set[str], doc: set[str]) -> float:
        """IDF-weighted share of the query's bigrams that occur in ``doc``."""
        weight = {g: self._idf.get(g, self._unknown_idf) for g in grams}
        return sum(weight[g] for g in grams & doc) / sum(weight.values())

    @staticmethod
    def summary(rule: DisposalRule) -> str:
        """One paragraph a chat answer can quote: category, steps, exclusions, first note."""
        steps = " ".join(
            f"{i}) {name}: {text}" for i, (name, text) in enumerate(rule.steps.items(), 1)
        )
        parts = [f"{rule.major_category} › {rule.middle_category}.", steps]
        if rule.not_accepted:
            parts.append("안 되는 것: " + ", ".join(rule.not_accepted) + ".")
        if rule.notes:
            parts.append(rule.notes[0])
        return " ".join(parts)
