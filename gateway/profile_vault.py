"""The profile vault: a user's personal fields, outside the log and erasable.

Privacy by construction: **personal fields never enter the log**, not even in a command. A
user's username, nickname and phone number live only here (a Redis hash per user); the gateway
writes them before it appends the command that records *that* something changed (sign-in,
profile update) and erases them before it appends ``DeleteUser``, after which the users
projection anonymises its row (docs/PRIVACY.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from eventstore.redis_client import AsyncRedis


@dataclass(frozen=True)
class Profile:
    """The personal fields of a user: only ever in the vault, never in the log."""

    username: str
    nickname: str
    phone_number: str | None = None


class ProfileVault(Protocol):
    """Personal fields by user id, erasable (crypto-free "right to be forgotten")."""

    async def get(self, user_id: str) -> Profile | None:
        """The user's profile, or None (never stored, or erased)."""
        ...

    async def put(self, user_id: str, profile: Profile) -> None:
        """Store the whole profile (registration)."""
        ...

    async def update(
        self, user_id: str, *, nickname: str | None = None, phone_number: str | None = None
    ) -> None:
        """Change the given fields (None = unchanged)."""
        ...

    async def erase(self, user_id: str) -> None:
        """Forget every personal field of the user (idempotent)."""
        ...


class RedisProfileVault:
    """The vault as one Redis hash per user, ``{<namespace>:pii}:<user id>``.

    The keys are outside the log's streams, so erasing one removes the only copy. Redis AOF
    makes them as durable as the log; an erased key is gone from the AOF at its next rewrite.
    """

    def __init__(self, redis: AsyncRedis, namespace: str) -> None:
        self.redis = redis
        self.prefix = "{" + f"{namespace}:pii" + "}"

    def key(self, user_id: str) -> str:
        return f"{self.prefix}:{user_id}"

    async def get(self, user_id: str) -> Profile | None:
        fields = cast(dict[str, str], await self.redis.hgetall(self.key(user_id)))
        return _profile(fields)

    async def put(self, user_id: str, profile: Profile) -> None:
        fields = {"username": profile.username, "nickname": profile.nickname}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.key(user_id))
            pipe.hset(self.key(user_id), mapping=fields)
            if profile.phone_number:
                pipe.hset(self.key(user_id), "phone_number", profile.phone_number)
            await pipe.execute()

    async def update(
        self, user_id: str, *, nickname: str | None = None, phone_number: str | None = None
    ) -> None:
        changes = {k: v for k, v in (("nickname", nickname), ("phone_number", phone_number)) if v}
        if changes:
            await self.redis.hset(self.key(user_id), mapping=changes)

    async def erase(self, user_id: str) -> None:
        await self.redis.delete(self.key(user_id))


class InMemoryProfileVault:
    """The vault's in-memory twin (handler tests)."""

    def __init__(self) -> None:
        self.profiles: dict[str, Profile] = {}

    async def get(self, user_id: str) -> Profile | None:
        return self.profiles.get(user_id)

    async def put(self, user_id: str, profile: Profile) -> None:
        self.profiles[user_id] = profile

    async def update(
        self, user_id: str, *, nickname: str | None = None, phone_number: str | None = None
    ) -> None:
        old = self.profiles.get(user_id)
        if old is not None:
            self.profiles[user_id] = Profile(
                old.username, nickname or old.nickname, phone_number or old.phone_number
            )

    async def erase(self, user_id: str) -> None:
        self.profiles.pop(user_id, None)


def _profile(fields: Mapping[str, str]) -> Profile | None:
    if not fields:
        return None
    return Profile(
        username=fields.get("username", ""),
        nickname=fields.get("nickname", ""),
        phone_number=fields.get("phone_number") or None,
    )
