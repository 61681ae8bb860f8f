"""A client keeps the character service's answers ``ttl_s`` seconds, never its failures, and
concurrent misses of one answer share one request."""

from __future__ import annotations

import asyncio

import pytest

from characters import Character, CharacterServiceUnavailable, InMemoryCharacters
from characters.cache import MAX_ANSWERS, CachedCharacters
from infra.settings import Settings
from tests.commands.conftest import knowledge

pytestmark = pytest.mark.asyncio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def service() -> InMemoryCharacters:
    return InMemoryCharacters(knowledge().characters())


async def test_an_answer_is_asked_once_per_ttl(service: InMemoryCharacters) -> None:
    clock = Clock()
    cached = CachedCharacters(service, ttl_s=60, clock=clock)
    first = await cached.match("무색페트병")
    assert first is not None and first.match_label == "무색페트병"
    assert await cached.match(" 무색페트병 ") == first  # the same label, as the service reads it
    assert await cached.match("없는 분류") is None
    assert await cached.match("없는 분류") is None  # "no character" is an answer too
    assert [c.name for c in await cached.catalog()] == [c.name for c in await service.catalog()]
    assert (await cached.default()).is_default
    assert service.calls == 1 + 1 + 1 + 1 + 1  # match ×2 labels, catalog ×2, default

    clock.now += 59.9
    await cached.match("무색페트병")
    assert service.calls == 5
    clock.now += 0.2  # the answer is 60.1 s old: asked again (a changed catalog shows)
    assert await cached.match("무색페트병") == first
    assert service.calls == 6


async def test_a_failure_is_never_kept(service: InMemoryCharacters) -> None:
    cached = CachedCharacters(service, ttl_s=60, clock=Clock())
    service.fail = True
    for _ in range(2):
        with pytest.raises(CharacterServiceUnavailable):
            await cached.match("무색페트병")
    assert service.calls == 2
    service.fail = False
    assert await cached.match("무색페트병") is not None
    assert service.calls == 3


async def test_the_answers_kept_stay_bounded(service: InMemoryCharacters) -> None:
    clock = Clock()
    cached = CachedCharacters(service, ttl_s=60, clock=clock)
    for n in range(MAX_ANSWERS + 10):
        await cached.match(f"모델이 지어낸 분류 {n}")
        clock.now += 0.001
    assert len(cached._answers) <= MAX_ANSWERS
    calls = service.calls
    await cached.match(f"모델이 지어낸 분류 {MAX_ANSWERS + 9}")  # the newest is still kept
    assert service.calls == calls


async def test_the_processes_cache_the_service_unless_told_not_to() -> None:
    assert Settings.from_env({}).characters_cache_s == 60
    assert Settings.from_env({"ECO2_CHARACTERS_CACHE_S": "0"}).characters_cache_s == 0
    with pytest.raises(ValueError, match="ttl"):
        CachedCharacters(InMemoryCharacters(knowledge().characters()), ttl_s=0)


async def turns() -> None:
    """Let every task ready to run go as far as it can (a few turns of the loop, not a time)."""
    for _ in range(10):
        await asyncio.sleep(0)


class SlowService(InMemoryCharacters):
    """The in-memory service, answering ``match`` only once ``answer`` is set; ``asked``
    counts the requests as they arrive."""

    def __init__(self) -> None:
        super().__init__(knowledge().characters())
        self.answer = asyncio.Event()
        self.asked = 0

    async def match(self, middle_category: str) -> Character | None:
        self.asked += 1
        await self.answer.wait()
        return await super().match(middle_category)


async def test_concurrent_misses_share_one_request() -> None:
    service, clock = SlowService(), Clock()
    cached = CachedCharacters(service, ttl_s=60, clock=clock)
    expected = await InMemoryCharacters(knowledge().characters()).match("무색페트병")
    assert expected is not None
    for herd in (1, 2):  # the first misses, then the misses of an expired answer
        waiting = [asyncio.create_task(cached.match("무색페트병")) for _ in range(50)]
        await turns()
        assert service.asked == herd  # one request in flight for all 50
        service.answer.set()
        answers = await asyncio.gather(*waiting)
        assert answers == [expected] * 50 and service.asked == herd
        service.answer.clear()
        clock.now += 61


async def test_a_shared_failure_reaches_every_caller_and_is_not_kept() -> None:
    service = SlowService()
    cached = CachedCharacters(service, ttl_s=60, clock=Clock())
    service.fail = True
    waiting = [asyncio.create_task(cached.match("무색페트병")) for _ in range(5)]
    await turns()
    service.answer.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, CharacterServiceUnavailable) for o in outcomes)
    assert service.asked == 1
    service.fail = False
    assert await cached.match("무색페트병") is not None  # asked again
    assert service.asked == 2


async def test_a_cancelled_caller_leaves_the_request_to_the_others() -> None:
    service = SlowService()
    cached = CachedCharacters(service, ttl_s=60, clock=Clock())
    first, second = (asyncio.create_task(cached.match("무색페트병")) for _ in range(2))
    await turns()
    first.cancel()
    await turns()
    service.answer.set()
    assert (await second) is not None and first.cancelled()
    # every caller cancelled: the request still ends and its answer is kept
    service.answer.clear()
    alone = asyncio.create_task(cached.match("유리병"))
    await turns()
    alone.cancel()
    service.answer.set()
    await turns()
    assert await cached.match("유리병") is not None
    assert service.asked == 2  # one request per label
