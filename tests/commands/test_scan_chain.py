"""The scan chain handler on the event store (in memory, and on Redis under the ``redis`` mark),
with the local (deterministic) models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from agents.llm.ports import ChatMessage, Completion, LLMUnavailable, T, ToolSpec
from schemas.registry import Message
from schemas.scan import (
    AnswerCompleted,
    RewardCompleted,
    RuleCompleted,
    ScanCompleted,
    ScanFailed,
    ScanQueued,
    Stage,
    StageStarted,
    VisionCompleted,
)
from schemas.users import CharacterGranted
from tests.commands.conftest import ScanWorld

pytestmark = pytest.mark.asyncio

CHAIN = [
    (ScanQueued, None),
    (StageStarted, Stage.VISION),
    (VisionCompleted, None),
    (StageStarted, Stage.RULE),
    (RuleCompleted, None),
    (StageStarted, Stage.ANSWER),
    (AnswerCompleted, None),
]
DONE = [
    (StageStarted, Stage.REWARD),
    (RewardCompleted, None),
    (ScanCompleted, None),
]


def shape(messages: Sequence[Message]) -> list[tuple[type, Stage | None]]:
    return [(type(m), m.stage if isinstance(m, StageStarted) else None) for m in messages]


class Crash(BaseException):
    """Stands in for a worker killed mid-call (not an Exception: nothing may catch it)."""


class CrashingLLM:
    """An LLM whose process 'dies' during the answer call."""

    async def complete(
        self, messages: Sequence[ChatMessage], *, model: str | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        raise Crash

    async def structured(
        self, messages: Sequence[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> T:
        raise Crash

    async def stream(
        self, messages: Sequence[ChatMessage], *, model: str | None = None
    ) -> AsyncIterator[str]:
        raise Crash
        yield ""


class DownLLM(CrashingLLM):
    """An LLM that stays unavailable after its retries."""

    async def structured(
        self, messages: Sequence[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> T:
        raise LLMUnavailable("openai failed after 3 attempts: 503")


async def test_scan_runs_every_stage_in_order_and_rewards(world: ScanWorld) -> None:
    job_id = await world.scan("다 마신 생수병")
    messages = await world.messages(job_id)
    assert shape(messages) == CHAIN + DONE
    vision = messages[2]
    assert isinstance(vision, VisionCompleted)
    assert vision.classification.middle_category == "무색페트병"
    answer = messages[6]
    assert isinstance(answer, AnswerCompleted)
    assert answer.rule_found and answer.answer.disposal_steps and not answer.answer.insufficiencies
    reward = messages[8]
    assert isinstance(reward, RewardCompleted)
    assert reward.reward is not None and reward.reward.name == "페티"
    assert reward.reward.newly_acquired and not reward.deferred
    progress = [m.progress for m in messages if isinstance(m, StageStarted)]
    assert progress == sorted(progress)


async def test_redelivery_of_a_half_done_job_resumes_without_repeating(world: ScanWorld) -> None:
    envelope = world.command(await world.upload(), "우유팩")
    with pytest.raises(Crash):
        await world.run_chain(envelope, llm=CrashingLLM())
    half = await world.messages(envelope.aggregate_id)
    assert shape(half) == CHAIN[:6]  # died during the answer call
    assert world.vision.calls == 1

    await world.run_chain(envelope)  # the runner redelivers the command
    await world.run_chain(envelope)  # ... and once more, for good measure
    assert world.vision.calls == 1  # vision was recorded: never called again
    messages = await world.messages(envelope.aggregate_id)
    assert shape(messages) == CHAIN
    assert messages[:6] == half


async def test_duplicate_deliveries_append_each_event_once(world: ScanWorld) -> None:
    user = "user-dup"
    envelope = world.command(await world.upload(), "알루미늄 캔", user_id=user)
    await asyncio.gather(*(world.run_chain(envelope) for _ in range(3)))
    await world.run_chain(envelope)
    job_id = envelope.aggregate_id
    await asyncio.gather(*(world.run_reward(job_id) for _ in range(3)))
    await world.run_reward(job_id)
    await world.run_chain(envelope)  # a late duplicate of the command after done
    messages = await world.messages(job_id)
    assert shape(messages) == CHAIN + DONE
    grants = [m for m in await world.messages(user) if isinstance(m, CharacterGranted)]
    assert [g.character_name for g in grants] == ["메탈리"]
    reward = messages[8]
    assert isinstance(reward, RewardCompleted) and reward.reward is not None
    assert reward.reward.newly_acquired


async def test_unreadable_image_ends_in_a_failed_done(world: ScanWorld) -> None:
    envelope = world.command(await world.upload(b"%PDF-1.7 not an image"), "페트병")
    await world.run_chain(envelope)
    messages = await world.messages(envelope.aggregate_id)
    assert shape(messages) == [*CHAIN[:2], (ScanFailed, None)]
    failed = messages[-1]
    assert isinstance(failed, ScanFailed)
    assert failed.stage == Stage.VISION and failed.code == "image_unreadable"
    assert "이미지를 읽을 수 없어요" in failed.error
    assert world.vision.calls == 0
    await world.run_chain(envelope)  # redelivery after the failed done appends nothing
    assert len(await world.messages(envelope.aggregate_id)) == 3


async def test_missing_image_ends_in_a_failed_done(world: ScanWorld) -> None:
    url = await world.upload()
    world.media.items.clear()
    envelope = world.command(url, "페트병")
    await world.run_chain(envelope)
    failed = (await world.messages(envelope.aggregate_id))[-1]
    assert isinstance(failed, ScanFailed) and failed.code == "image_not_found"


async def test_llm_down_after_retries_ends_in_a_failed_done(world: ScanWorld) -> None:
    envelope = world.command(await world.upload(), "유리병")
    await world.run_chain(envelope, llm=DownLLM())
    messages = await world.messages(envelope.aggregate_id)
    assert shape(messages) == [*CHAIN[:6], (ScanFailed, None)]
    failed = messages[-1]
    assert isinstance(failed, ScanFailed)
    assert failed.stage == Stage.ANSWER and failed.code == "llm_unavailable"
    assert "잠시 후 다시 시도해 주세요" in failed.error


async def test_unclassified_item_asks_the_user_and_earns_nothing(world: ScanWorld) -> None:
    job_id = await world.scan(None)  # no hint, and the stored file's name says nothing
    messages = await world.messages(job_id)
    assert shape(messages) == CHAIN + DONE
    vision, answer, reward = messages[2], messages[6], messages[8]
    assert isinstance(vision, VisionCompleted) and vision.classification.is_unclassified
    assert isinstance(answer, AnswerCompleted) and not answer.rule_found
    assert "무엇" in answer.answer.user_answer and answer.answer.insufficiencies
    assert isinstance(reward, RewardCompleted) and reward.reward is None


async def test_model_per_request_unknown_provider_fails_readably(world: ScanWorld) -> None:
    # The worker's router has only the local provider: a gpt-* request cannot be served.
    from agents.llm.providers import ModelRouter

    router = ModelRouter(
        default_model="local", llms={"local": world.llm}, visions={"local": world.vision}
    )
    world.vision = type(world.vision)(router)
    envelope = world.command(await world.upload(), "페트병", model="gpt-4o-mini")
    await world.run_chain(envelope)
    failed = (await world.messages(envelope.aggregate_id))[-1]
    assert isinstance(failed, ScanFailed) and failed.code == "llm_unavailable"
