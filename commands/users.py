"""The user's commands: sign-in (registration on first login), profile update, deletion.

Privacy by construction: **personal fields never enter the log.** A user's username, nickname
and phone number live only in the *profile vault* (a Redis hash per user, outside the log); the
user's events carry ids, the provider name and a hash of the provider's subject, nothing a person
could be recognised by. ``DeleteUser`` erases the vault entry and appends ``UserDeleted``, after
which the users projection anonymises its row: no personal field is left anywhere (docs/PRIVACY.md).

Handlers run in the gateway's request (the API answers with the updated profile, so it cannot be
asynchronous) and append events with deterministic ids where a retry must not repeat them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, cast

import schemas
from eventstore.errors import ConcurrencyConflict
from eventstore.port import EventStorePort
from eventstore.redis_client import AsyncRedis
from eventstore.store import ANY
from schemas.envelope import Envelope, Metadata
from schemas.registry import Message, RegistryError
from schemas.users import (
    USER,
    CharacterGranted,
    DeleteUser,
    ProfileUpdated,
    UpdateProfile,
    UserDeleted,
    UserLoggedIn,
    UserRegistered,
)

# uuid5 namespaces: user ids from (provider, subject), event ids from their cause.
USER_NAMESPACE = uuid.UUID("7d0f3c1e-9a4b-5c2d-8e6f-1a2b3c4d5e6f")
EVENT_NAMESPACE = uuid.UUID("3b9e2f4a-6c1d-5e8f-9a0b-c1d2e3f4a5b6")
MAX_GENERATIONS = 32  # re-registrations after deletion of one provider account


# -- the profile vault --------------------------------------------------------------------


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


# -- the user's aggregate, folded --------------------------------------------------------


@dataclass(frozen=True)
class OwnedCharacter:
    code: str
    name: str
    acquired_at: float


@dataclass
class UserState:
    """What the handlers (and the gateway's read-your-writes fallback) know of a user."""

    user_id: str
    version: int = 0
    registered: bool = False
    deleted: bool = False
    provider: str | None = None
    registered_at: float | None = None
    last_login_at: float | None = None
    characters: list[OwnedCharacter] = field(default_factory=list)

    def apply(self, envelope: Envelope, event: Message) -> None:
        self.version = envelope.version
        if isinstance(event, UserRegistered):
            self.registered = True
            self.provider = event.provider
            self.registered_at = envelope.timestamp
        elif isinstance(event, UserLoggedIn):
            self.provider = event.provider
            self.last_login_at = envelope.timestamp
        elif isinstance(event, UserDeleted):
            self.deleted = True
        elif isinstance(event, CharacterGranted):
            if all(c.code != event.character_code for c in self.characters):
                self.characters.append(
                    OwnedCharacter(event.character_code, event.character_name, envelope.timestamp)
                )


async def load_user(store: EventStorePort, user_id: str) -> UserState:
    """The user's state folded from its aggregate stream (events of newer releases skipped)."""
    state = UserState(user_id)
    for envelope in await store.read_aggregate(user_id):
        try:
            event = schemas.registry.decode_envelope(envelope)
        except RegistryError:
            state.version = envelope.version
            continue
        state.apply(envelope, event)
    return state


# -- sign-in -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the identity provider says signed in. ``subject`` is the provider's stable id."""

    provider: str
    subject: str
    username: str
    nickname: str
    phone_number: str | None = None


@dataclass(frozen=True)
class SignedIn:
    user_id: str
    registered: bool  # True: this login created the account


def hashed_subject(provider: str, subject: str) -> str:
    """What the log keeps of a provider account: a hash, never the subject itself."""
    return hashlib.sha256(f"{provider}\x1f{subject}".encode()).hexdigest()


def user_id_for(provider: str, subject: str, generation: int = 0) -> str:
    """The deterministic user id of a provider account. A deleted account stays deleted:
    signing in again creates the next generation's (fresh) account."""
    name = hashed_subject(provider, subject) + (f"\x1f{generation}" if generation else "")
    return str(uuid.uuid5(USER_NAMESPACE, name))


def _event(message: Message, user_id: str, metadata: Metadata, event_id: uuid.UUID | None = None
           ) -> Envelope:
    envelope = schemas.registry.envelope(
        message, aggregate_id=user_id, aggregate_type=USER, metadata=metadata
    )
    return envelope if event_id is None else envelope.model_copy(update={"id": event_id})


async def sign_in(
    identity: ProviderIdentity, *, store: EventStorePort, vault: ProfileVault, metadata: Metadata
) -> SignedIn:
    """Register the account on its first login (``UserRegistered``), else record the login."""
    for generation in range(MAX_GENERATIONS):
        user_id = user_id_for(identity.provider, identity.subject, generation)
        state = await load_user(store, user_id)
        if state.deleted:
            continue
        meta = metadata.model_copy(update={"user_id": user_id})
        if not state.registered:
            # Vault first: by the time the event exists, reads find the profile.
            await vault.put(
                user_id,
                Profile(identity.username, identity.nickname, identity.phone_number),
            )
            registered = UserRegistered(
                username="", nickname="", provider=identity.provider,
                provider_user_id=hashed_subject(identity.provider, identity.subject),
            )
            # One registration per account: a concurrent first login appends the same id.
            event_id = uuid.uuid5(EVENT_NAMESPACE, f"{user_id}\x1fregistered")
            try:
                await store.append([_event(registered, user_id, meta, event_id)],
                                   expected_version=0)
            except ConcurrencyConflict:
                pass  # registered by a concurrent login: record this one as a login
            else:
                return SignedIn(user_id, registered=True)
        elif await vault.get(user_id) is None:
            await vault.put(  # the vault lost it (e.g. restored from an old backup)
                user_id, Profile(identity.username, identity.nickname, identity.phone_number)
            )
        await store.append(
            [_event(UserLoggedIn(provider=identity.provider), user_id, meta)], expected_version=ANY
        )
        return SignedIn(user_id, registered=False)
    raise RuntimeError(f"{identity.provider} account was deleted {MAX_GENERATIONS} times")


# -- profile commands --------------------------------------------------------------------


async def handle_update_profile(
    command: UpdateProfile, *, store: EventStorePort, vault: ProfileVault, metadata: Metadata,
    command_id: str | None = None,
) -> bool:
    """Change the nickname and/or phone number; False when the user does not exist (any more).

    The values go to the vault; the event records only *that* the profile changed.
    """
    state = await load_user(store, command.user_id)
    if not state.registered or state.deleted:
        return False
    if command.nickname is None and command.phone_number is None:
        return True
    await vault.update(
        command.user_id, nickname=command.nickname, phone_number=command.phone_number
    )
    event_id = uuid.uuid5(EVENT_NAMESPACE, f"{command.user_id}\x1f{command_id}") if command_id \
        else None
    await store.append(
        [_event(ProfileUpdated(), command.user_id, metadata, event_id)], expected_version=ANY
    )
    return True


async def handle_delete_user(
    command: DeleteUser, *, store: EventStorePort, vault: ProfileVault, metadata: Metadata
) -> bool:
    """Erase the user's personal fields and record ``UserDeleted`` (idempotent); False for an
    unknown user."""
    state = await load_user(store, command.user_id)
    if not state.registered:
        return False
    await vault.erase(command.user_id)  # first: privacy does not wait for the event
    if not state.deleted:
        event_id = uuid.uuid5(EVENT_NAMESPACE, f"{command.user_id}\x1fdeleted")
        await store.append(
            [_event(UserDeleted(), command.user_id, metadata, event_id)], expected_version=ANY
        )
    return True
