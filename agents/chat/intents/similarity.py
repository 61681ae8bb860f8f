"""Character n-gram TF-IDF over labelled examples: the local classifier's model confidence.

Korean is agglutinative and users misspell (페트벙, 버려야됨), so whole-word features would miss
most matches; syllable n-grams still overlap. Pure Python with an inverted
index built once, so scoring a query touches only the examples that share an n-gram with it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping

from agents.chat.intents.model import Intent

_TOP_WEIGHTS = (0.6, 0.25, 0.15)
_PSEUDO = 0.1
_MIN_WEIGHT = 0.02
_MIN_POSTING = 0.03
_NON_WORD = re.compile(r"[^0-9a-z가-힣ㄱ-ㅎㅏ-ㅣ]+")


def normalise(text: str) -> str:
    """Lower-case, punctuation to spaces, single spaces."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def ngrams(text: str) -> Counter[str]:
    """Syllable 1–3-grams of each word, padded with spaces so word edges are features too,
    plus 2–3-grams of the text with spaces removed: Korean spacing is loose ("버리는법",
    "비와"), and these match however the user spaced the words."""
    grams: Counter[str] = Counter()
    norm = normalise(text)
    for word in norm.split():
        padded = f" {word} "
        for n in (1, 2, 3):
            for i in range(len(padded) - n + 1):
                gram = padded[i : i + n]
                if gram.strip():
                    grams[gram] += 1
    joined = norm.replace(" ", "")
    for n in (2, 3):
        for i in range(len(joined) - n + 1):
            grams["~" + joined[i : i + n]] += 1
    return grams


class ExampleIndex:
    """TF-IDF vectors of labelled examples with an inverted index for cosine lookups."""

    def __init__(self, examples: Iterable[tuple[str, Intent]]) -> None:
        pairs = [(text, intent) for text, intent in examples if normalise(text)]
        if not pairs:
            raise ValueError("the example index needs at least one example")
        sizes = Counter(intent for _, intent in pairs)  # in the examples' order (sums below)
        # Numbered intent by intent (a stable sort: a document's score does not depend on its
        # number), so each intent's examples are one slice of the dot products.
        order = {intent: i for i, intent in enumerate(Intent)}
        pairs.sort(key=lambda pair: order[pair[1]])
        labels = [intent for _, intent in pairs]
        self._spans: list[tuple[Intent, int, int]] = []
        for doc, intent in enumerate(labels):
            if self._spans and self._spans[-1][0] is intent:
                self._spans[-1] = (intent, self._spans[-1][1], doc + 1)
            else:
                self._spans.append((intent, doc, doc + 1))
        counts = [ngrams(text) for text, _ in pairs]
        df: Counter[str] = Counter()
        df_by_intent: dict[str, Counter[Intent]] = {}
        for c, intent in zip(counts, labels, strict=True):
            df.update(c.keys())
            for gram in c:
                df_by_intent.setdefault(gram, Counter())[intent] += 1
        n_docs = len(counts)
        self._idf = {
            g: (math.log((n_docs + 1) / (d + 1)) + 1.0) * _concentration(df_by_intent[g], sizes)
            for g, d in df.items()
        }
        self._n_docs = n_docs
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for doc, c in enumerate(counts):
            for gram, weight in self._vector(c).items():
                # Near-zero weights (n-grams every intent uses) would only cost time.
                if weight >= _MIN_POSTING:
                    self._postings.setdefault(gram, []).append((doc, weight))

    def _vector(self, counts: Mapping[str, int]) -> dict[str, float]:
        # Unknown n-grams are dropped: they cannot match any example anyway.
        vec = {g: (1.0 + math.log(c)) * self._idf[g] for g, c in counts.items() if g in self._idf}
        norm = math.sqrt(sum(w * w for w in vec.values()))
        return {g: w / norm for g, w in vec.items()} if norm else {}

    def similarities(self, text: str) -> dict[Intent, float]:
        """Per intent, a decaying mean of the cosines of its three most similar examples.

        The best match counts most (a one-word query matches one example well and the rest
        barely), the next two keep a single lucky overlap from dominating.
        """
        dots = [0.0] * self._n_docs
        for gram, weight in self._vector(ngrams(text)).items():
            if weight >= _MIN_POSTING:
                for doc, doc_weight in self._postings.get(gram, ()):
                    dots[doc] += weight * doc_weight
        out = dict.fromkeys(Intent, 0.0)
        for intent, start, end in self._spans:
            # Zeros (examples sharing nothing) sort last and add nothing: w * 0.0 == 0.0.
            best = sorted(dots[start:end], reverse=True)
            out[intent] = sum(w * v for w, v in zip(_TOP_WEIGHTS, best, strict=False))
        return out


def _concentration(per_intent: Counter[Intent], sizes: Counter[Intent]) -> float:
    """How much an n-gram points at one intent: 1 − normalised entropy of its intent spread.

    Plain IDF keeps "알려", "어떻" and "있어" fairly heavy because every intent uses them a
    little; they say nothing about the intent, so they are scaled towards zero. Rates are per
    intent (document frequency over the intent's example count) so large intents do not win by
    size, and a pseudo-count keeps a gram seen once from counting as perfectly certain.
    """
    rates = [(per_intent.get(i, 0) + _PSEUDO) / (sizes[i] + _PSEUDO) for i in sizes]
    total = sum(rates)
    entropy = -sum(r / total * math.log(r / total) for r in rates)
    return max(_MIN_WEIGHT, 1.0 - entropy / math.log(len(rates))) if len(rates) > 1 else 1.0


def softmax_confidences(
    sims: Mapping[Intent, float], *, temperature: float, reject: float = 0.0
) -> dict[Intent, float]:
    """Similarities to a distribution over intents: the model confidence of each intent.

    ``reject`` is the similarity of an implicit "none of these" option: a query that resembles
    nothing well ("음..", "ㅋㅋ") spreads its mass onto it instead of onto the least bad intent.
    """
    top = max(max(sims.values()), reject)
    exps = {i: math.exp((s - top) / temperature) for i, s in sims.items()}
    total = sum(exps.values()) + math.exp((reject - top) / temperature)
    return {i: e / total for i, e in exps.items()}
