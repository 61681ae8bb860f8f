"""A ``Frame`` is written as exactly the bytes ``ServerSentEvent.encode`` gives for the same
message, line breaks or not (its single-line shortcut must not change a byte); ``Frames`` is
its messages' bytes in order; ``take_next`` hands out only the next version."""

from __future__ import annotations

import json
import random

from sse_starlette import ServerSentEvent

from eventstore.keys import Layout
from gateway.live_hub import LiveHub
from gateway.live_subscription import Frame, Frames, PublishedEvent, Subscription
from projections.live_view import LiveEvent


def test_a_frame_encodes_as_server_sent_event_does() -> None:
    rng = random.Random(5)
    alphabet = 'ab한 {}":,\\é\u2028\r\n0123'
    cases = [('{"job_id":"j","stage":"token","content":"페트병"}', "token", "12"),
             ("two\nlines", "done", "3"), ("cr\rlf\r\n", "x\ny", "4\r")]
    cases += [tuple("".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))
                    for n in (30, 6, 4)) for _ in range(3000)]
    for data, event, event_id in cases:
        assert Frame(data, event=event, id=event_id).encode() == ServerSentEvent(
            data, event=event, id=event_id).encode()


def test_frames_are_their_messages_bytes_in_order() -> None:
    parts = [Frame('{"a":1}', event="intent", id="2"), ServerSentEvent("x\ny", event="token", id="3")]
    assert Frames(parts).encode() == b"".join(p.encode() for p in parts)


def _live(version: int) -> LiveEvent:
    return LiveEvent("job", version, "token", "{}")


def test_take_next_gives_only_the_next_version_without_waiting() -> None:
    sub = Subscription(None, "job", 0, max_items=10)  # type: ignore[arg-type]  # no waits here
    assert sub.take_next(3) is None  # nothing arrived
    for version in (2, 3, 4, 6):
        sub.deliver(_live(version))
    taken = sub.take_next(3)  # 2 is older than what the caller has: dropped
    assert taken is not None and taken.version == 3
    taken = sub.take_next(4)
    assert taken is not None and taken.version == 4
    assert sub.take_next(5) is None  # 6 is after a gap: left for ``next`` (a catch-up)
    sub.resync()
    assert sub.take_next(6) is None  # a pending signal goes first


async def test_the_hub_hands_out_each_message_of_a_joined_publish_in_order() -> None:
    hub = LiveHub("redis://unused:1", Layout("frames", 1))  # not started: no connection made
    hub._connected[0] = True  # as once its shard is subscribed
    sub, other = hub.subscribe("job"), hub.subscribe("other")
    datas = [json.dumps({"job_id": job, "stage": stage, "seq": seq, "ts": 1.5}, ensure_ascii=False)
             for job, stage, seq in (("job", "intent", 1), ("other", "queued", 1),
                                     ("job", "token", 2))]
    hub._dispatch("\n".join(datas))  # one PUBLISH of a projector's batch
    first, second = sub.take_next(1), sub.take_next(2)
    assert first is not None and second is not None
    assert [first.data, second.data] == [datas[0], datas[2]]
    assert isinstance(first, PublishedEvent) and first.frame is not None
    assert first.frame.encode() == ServerSentEvent(datas[0], event="intent", id="1").encode()
    theirs = other.take_next(1)
    assert theirs is not None and theirs.data == datas[1]
    assert hub.published == 3
