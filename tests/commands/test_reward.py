"""The reward handler: DOMAIN.md's rule, ownership once per (user, character), deferral."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis

import schemas
from characters import InMemoryCharacters
from commands.reward import handle_answer_completed
from eventstore.consumer import RetryLater, RunnerOptions, Subscription
from eventstore.dlq import DeadLetters
from eventstore.keys import Layout
from eventstore.runtime import Runner
from eventstore.store import EventStore
from schemas.envelope import Envelope
from schemas.registry import Message
from schemas.scan import AnswerCompleted, RewardCompleted, ScanCompleted
from schemas.users import CharacterGranted
from tests.commands.conftest import ScanWorld, knowledge, world_on

pytestmark = pytest.mark.asyncio


def reward_of(messages: list[Message]) -> RewardCompleted:
    rewards = [m for m in messages if isinstance(m, RewardCompleted)]
    assert len(rewards) == 1
    return rewards[0]


async def grants(world: ScanWorld, user: str) -> list[str]:
    return [m.character_code for m in await world.messages(user) if isinstance(m, CharacterGranted)]


@pytest.mark.parametrize(
    ("hint", "name"),
    [
        ("택배박스", "페이피"),
        ("깨끗한 플라스틱 용기", "플리"),
        ("건전지", "배리"),
        ("스티로폼", "폼이"),
        ("형광등", "라이티"),
        ("헌 옷", "코튼"),
        ("쇠젓가락", "메탈리"),  # scrap metal: a precious one (below) is not
    ],
)
async def test_recyclable_with_rule_and_no_insufficiency_earns_its_character(
    world: ScanWorld, hint: str, name: str
) -> None:
    reward = reward_of(await world.messages(await world.scan(hint)))
    assert reward.reward is not None and reward.reward.name == name


@pytest.mark.parametrize(
    "hint",
    # 금반지/은수저: sold at a 금은방, not put in a recycling bin, so no 메탈리
    ["치킨뼈", "영수증", "깨진 유리", "생수병 라벨 안 뗀", "금반지", "은수저"],
)
async def test_no_reward_outside_the_rule(world: ScanWorld, hint: str) -> None:
    user = f"user-{uuid.uuid4().hex[:6]}"
    messages = await world.messages(await world.scan(hint, user_id=user))
    assert reward_of(messages).reward is None
    assert isinstance(messages[-1], ScanCompleted)
    assert await grants(world, user) == []


async def test_each_character_is_owned_once_per_user(world: ScanWorld) -> None:
    user = "user-collector"
    first = reward_of(await world.messages(await world.scan("페트병", user_id=user)))
    again = reward_of(await world.messages(await world.scan("생수병", user_id=user)))
    assert first.reward is not None and first.reward.newly_acquired
    assert again.reward is not None and again.reward.name == "페티"
    assert not again.reward.newly_acquired  # still shown, nothing new recorded
    assert await grants(world, user) == ["char-petty"]


async def test_concurrent_scans_of_one_user_grant_once(world: ScanWorld) -> None:
    user = "user-racer"
    jobs = await asyncio.gather(*(world.scan("음료 캔", user_id=user) for _ in range(6)))
    rewards = [reward_of(await world.messages(job)).reward for job in jobs]
    assert all(r is not None and r.name == "메탈리" for r in rewards)
    assert sum(1 for r in rewards if r is not None and r.newly_acquired) == 1
    assert await grants(world, user) == ["char-metally"]


async def test_outage_defers_the_reward_then_the_retry_grants_it(world: ScanWorld) -> None:
    user = "user-deferred"
    envelope = world.command(await world.upload(), "우유팩", user_id=user)
    await world.run_chain(envelope)
    job_id = envelope.aggregate_id
    down = InMemoryCharacters(knowledge().characters(), fail=True)
    with pytest.raises(RetryLater):
        await world.run_reward(job_id, characters=down)
    messages = await world.messages(job_id)
    reward = reward_of(messages)
    assert reward.reward is None and reward.deferred
    assert isinstance(messages[-1], ScanCompleted)  # the job is done now, not waiting
    assert await grants(world, user) == []

    await world.run_reward(job_id)  # the retry, service back up
    await world.run_reward(job_id)  # and a duplicate of it
    assert await grants(world, user) == ["char-factory"]
    assert await world.messages(job_id) == messages  # nothing appended to the job


async def test_reward_reason_says_what_was_done_right() -> None:
    from commands.reward import reward_reason

    reason = reward_reason("무색페트병", ["비우기", "라벨 떼기", "찌그러뜨리기", "배출하기"])
    assert reason == "무색페트병 규칙대로 비우기 · 라벨 떼기 · 찌그러뜨리기를 하고 배출했어요"
    assert reward_reason("종이", ["배출하기"]) == "종이를 규칙대로 배출했어요"


class BlippingCharacters(InMemoryCharacters):
    """Down for the first ``outage_s`` after the first call, then up again."""

    def __init__(self, outage_s: float) -> None:
        super().__init__(knowledge().characters())
        self.outage_s = outage_s
        self.first: float | None = None

    def _check(self) -> None:
        now = time.monotonic()
        self.first = now if self.first is None else self.first
        self.fail = now - self.first < self.outage_s
        super()._check()


@pytest.fixture
def redis_world(redis_client: aioredis.Redis, layout: Layout) -> ScanWorld:
    return world_on(EventStore(redis_client, layout, schemas.registry))


@pytest.mark.redis
async def test_a_sub_second_outage_ends_with_the_reward_granted_in_the_job(
    redis_world: ScanWorld,
) -> None:
    """Through the real runner (on Redis consumer groups): the old crash budget (5 deliveries
    in ~0.8 s) ended this job ``reward: null, deferred`` and dead-lettered the grant."""
    world = redis_world
    user = "user-blip"
    envelope = world.command(await world.upload(), "우유팩", user_id=user)
    await world.run_chain(envelope)
    characters = BlippingCharacters(outage_s=0.9)

    async def on_answer(env: Envelope, message: Message) -> None:
        assert isinstance(message, AnswerCompleted)
        await handle_answer_completed(env, message, store=world.store, characters=characters)

    runner = Runner(
        world.store.redis,
        world.store.layout,
        schemas.registry,
        Subscription("reward", "events", {AnswerCompleted: on_answer}),
        options=RunnerOptions(block_ms=50, claim_interval_s=0.05),
    )
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(20):
            while not isinstance((await world.messages(envelope.aggregate_id))[-1], ScanCompleted):
                await asyncio.sleep(0.05)
    finally:
        runner.stop()
        await task
    reward = reward_of(await world.messages(envelope.aggregate_id))
    assert reward.reward is not None and reward.reward.name == "팩토리" and not reward.deferred
    assert await grants(world, user) == ["char-factory"]
    assert await DeadLetters(world.store.redis, world.store.layout).find() == []
