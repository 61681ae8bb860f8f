"""A ``Frame`` is written as exactly the bytes ``ServerSentEvent.encode`` gives for the same
message, line breaks or not (its single-line shortcut must not change a byte)."""

from __future__ import annotations

import random

from sse_starlette import ServerSentEvent

from gateway.live_subscription import Frame


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
