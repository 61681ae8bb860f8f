"""Small Korean text helpers for composed answers: particles after a noun, distances, prices."""

from __future__ import annotations

_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3


def _has_final_consonant(word: str) -> bool | None:
    """Whether the last syllable has a final consonant (None when it is not Hangul)."""
    for ch in reversed(word.strip()):
        code = ord(ch)
        if _HANGUL_FIRST <= code <= _HANGUL_LAST:
            return (code - _HANGUL_FIRST) % 28 != 0
        if ch.isalnum():
            # digits and latin letters: read aloud, most end without a final consonant
            return ch in "013678LMNlmn"
    return None


def topic(word: str) -> str:
    """``word`` with 은/는 ("페트병은", "유리는")."""
    final = _has_final_consonant(word)
    return f"{word}{'은' if final else '는'}" if final is not None else f"{word}은(는)"


def subject(word: str) -> str:
    """``word`` with 이/가."""
    final = _has_final_consonant(word)
    return f"{word}{'이' if final else '가'}" if final is not None else f"{word}이(가)"


def obj(word: str) -> str:
    """``word`` with 을/를."""
    final = _has_final_consonant(word)
    return f"{word}{'을' if final else '를'}" if final is not None else f"{word}을(를)"


def with_means(word: str) -> str:
    """``word`` with (으)로 ("종량제봉투로", "일반쓰레기로", "물로")."""
    final = _has_final_consonant(word)
    if final is None:
        return f"{word}(으)로"
    last = word.strip()[-1]
    ends_in_rieul = (
        _HANGUL_FIRST <= ord(last) <= _HANGUL_LAST and (ord(last) - _HANGUL_FIRST) % 28 == 8
    )
    return f"{word}{'으로' if final and not ends_in_rieul else '로'}"


def distance_text(meters: float) -> str:
    """ "120m", "1.3km"."""
    if meters < 1000:
        return f"{round(meters / 10) * 10:.0f}m" if meters >= 10 else f"{meters:.0f}m"
    km = round(meters / 1000, 1)
    return f"{km:.0f}km" if km.is_integer() else f"{km:.1f}km"


def won(amount: float) -> str:
    """ "8,000원", "125.5원"."""
    if float(amount).is_integer():
        return f"{int(amount):,}원"
    return f"{amount:,.1f}원"


def copula(word: str) -> str:
    """``word`` with 이에요/예요 ("수거함이에요", "센터예요")."""
    final = _has_final_consonant(word)
    return f"{word}{'이에요' if final or final is None else '예요'}"


def because_is(word: str) -> str:
    """``word`` with (이)라서 ("폐기물이라서", "가구라서")."""
    final = _has_final_consonant(word)
    return f"{word}{'이라서' if final or final is None else '라서'}"
