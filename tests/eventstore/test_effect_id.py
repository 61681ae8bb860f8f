"""``effect_id`` is ``uuid.uuid5`` in ``EFFECT_NAMESPACE`` of the parts joined by ``\\x1f``, bit
for bit: the ids of effects already in the log must come out the same, or a redelivered
message would append them again."""

from __future__ import annotations

import random
import uuid

from eventstore.causation import EFFECT_NAMESPACE, effect_id

PARTS = [
    ("job-1", "chat", "tokens", "3"),
    ("0b8e0a1e-1234-5678-9abc-def012345678", "vision"),
    ("",),
    ("채팅", "user_message"),
    ("a\x1fb", "c"),
]


def _reference(*parts: str) -> uuid.UUID:
    return uuid.uuid5(EFFECT_NAMESPACE, "\x1f".join(parts))


def test_effect_id_is_uuid5_of_the_joined_parts() -> None:
    rng = random.Random(7)
    alphabet = "abcXYZ019-_:/ 한글é\x1f"
    cases = list(PARTS) + [
        tuple("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
              for _ in range(rng.randint(1, 5)))
        for _ in range(2000)
    ]
    for parts in cases:
        ours, theirs = effect_id(*parts), _reference(*parts)
        assert ours == theirs
        assert (str(ours), hash(ours), ours.bytes) == (str(theirs), hash(theirs), theirs.bytes)
        assert (ours.version, ours.variant, ours.is_safe) == (5, uuid.RFC_4122, theirs.is_safe)


def test_a_known_id_is_unchanged() -> None:
    # Pinned: an id recorded in existing logs.
    assert str(effect_id("job-1", "chat", "tokens", "3")) == "5850326e-ffc4-5b35-b78a-02bf2b861ba9"
