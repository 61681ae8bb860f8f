"""The Korean wording of an item-level answer, shared by scan answers and chat.

Shape: one headline naming the user's item, where it goes and the condition that decided it;
then what to check first (caveats, hazards, the question when the material is ambiguous);
then the item's own steps; then what is not accepted, the district note and the source.
"""

from __future__ import annotations

from agents.knowledge.models import ItemGuide


def final_consonant(word: str) -> int:
    """Tail-consonant index of the last Hangul syllable (0: none, 8: ㄹ); -1 when not Hangul."""
    for ch in reversed(word):
        if "가" <= ch <= "힣":
            return (ord(ch) - 0xAC00) % 28
        if ch.isalnum():
            return -1
    return -1


def topic(word: str) -> str:
    return f"{word}{'은' if final_consonant(word) > 0 else '는'}"


def means(word: str) -> str:
    tail = final_consonant(word)
    return f"{word}{'으로' if tail > 0 and tail != 8 else '로'}"


def headline(res: ItemGuide) -> str:
    """ "초록색 페트병은 색이 있어서 플라스틱류로 버려요." — the user's item first."""
    because = f"{' '.join(res.conditions)} " if res.conditions else ""
    if res.question:
        return f"{topic(res.subject)} 재질에 따라 버리는 곳이 달라요."
    category = f" ({res.category})" if res.category else ""
    return f"{topic(res.subject)} {because}{means(res.where)} 버려요{category}."


def step_dict(steps: list[str]) -> dict[str, str]:
    """``["비우기: …", …]`` as the API's ordered ``{"비우기": "…"}`` (repeated names numbered)."""
    out: dict[str, str] = {}
    for n, step in enumerate(steps, 1):
        name, _, text = step.partition(": ")
        if not text:
            name, text = f"{n}단계", step
        out[f"{name}({n})" if name in out else name] = text
    return out


def distinct(texts: list[str]) -> list[str]:
    """``texts`` without repeats and near-repeats (two wordings of one caveat: most of their
    syllable pairs shared), first wording kept."""
    kept: list[tuple[str, set[str]]] = []
    for text in texts:
        grams = {text[i : i + 2] for i in range(len(text) - 1)}
        if all(len(grams & g) < 0.45 * min(len(grams), len(g)) for _, g in kept):
            kept.append((text, grams))
    return [text for text, _ in kept]


def answer_text(res: ItemGuide, *, extra_issues: list[str] | None = None) -> str:
    """The full answer, caveats before steps."""
    lines = [headline(res)]
    lines += [f"왜: {why}" for why in res.why]
    first = distinct([*res.caveats, *(extra_issues or [])])
    if res.question:
        lines.append(f"확인이 필요해요: {res.question}")
    if first:
        because = f" ({', '.join(res.noted)})" if res.noted else ""
        lines.append(f"먼저 확인해 주세요{because}:")
        lines += [f"- {c}" for c in first]
    if res.question:
        lines.append(f"{res.where} 기준 방법이에요:")
    lines += [
        f"{n}. {name}: {text}" for n, (name, text) in enumerate(step_dict(res.steps).items(), 1)
    ]
    if res.not_accepted:
        lines.append("이건 안 돼요: " + ", ".join(res.not_accepted[:3]) + ".")
    if res.district_note:
        lines.append(f"우리 구 안내: {res.district_note}")
    lines.append(f"출처: {res.source}")
    return "\n".join(lines)
