"""The user's commands: sign-in (registration on first login), profile update, deletion.

Privacy by construction: **personal fields never enter the log.** The gateway keeps a user's
username, nickname and phone number in the profile vault (outside the log) and appends these
commands with ids only; the handlers record what happened on the user's aggregate, with event
ids derived from the command, so a redelivered command appends nothing twice. Every effect's
``causation_id`` is its command's id: the gateway waits for it to answer the request.
"""

from __future__ import annotations

import uuid

import schemas
from eventstore.causation import caused_by, effect_id
from eventstore.port import EventStorePort
from eventstore.snapshotting import load_state
from eventstore.store import ANY
from schemas.envelope import Envelope
from schemas.registry import Message, MessageRegistry
from schemas.user_state import UserState
from schemas.users import (
    USER,
    DeleteUser,
    ProfileUpdated,
    SignIn,
    UpdateProfile,
    UserDeleted,
    UserLoggedIn,
    UserRegistered,
)

# uuid5 namespace of the events that must happen once per user (registration, deletion).
EVENT_NAMESPACE = uuid.UUID("3b9e2f4a-6c1d-5e8f-9a0b-c1d2e3f4a5b6")


async def load_user(
    store: EventStorePort, user_id: str, registry: MessageRegistry = schemas.registry
) -> UserState:
    """The user's state: its newest snapshot and the events after it (``load_state``)."""
    return await load_state(store, UserState, user_id, registry)


def _event(message: Message, user_id: str, cause: Envelope, event_id: uuid.UUID) -> Envelope:
    return schemas.registry.envelope(
        message, aggregate_id=user_id, aggregate_type=USER, metadata=caused_by(cause, user_id),
        id=event_id,
    )


async def handle_sign_in(cause: Envelope, command: SignIn, *, store: EventStorePort) -> None:
    """Register the account on its first sign-in (``UserRegistered``), else record the login
    (``UserLoggedIn``). A deleted account records nothing: the gateway signs the provider
    account in as the next generation's user (``schemas.user_state.user_id_for``)."""
    user_id = command.user_id
    state = await load_user(store, user_id)
    if str(cause.id) in (state.registered_by, state.last_login_by) or (
        await _older_and_recorded(store, state, cause)
    ):
        return  # redelivered after its event was recorded
    if state.deleted:
        return
    if not state.registered:
        registered = UserRegistered(
            username="", nickname="", provider=command.provider,
            provider_user_id=command.provider_user_id,
        )
        # One registration per account: a concurrent first sign-in appends the same id and
        # is recorded as a login instead (below).
        event_id = uuid.uuid5(EVENT_NAMESPACE, f"{user_id}\x1fregistered")
        result = await store.append([_event(registered, user_id, cause, event_id)],
                                    expected_version=ANY)
        first = await store.read_aggregate(user_id, limit=1)
        if not result.duplicate or (first and first[0].metadata.causation_id == str(cause.id)):
            return
    login = UserLoggedIn(provider=command.provider)
    await store.append([_event(login, user_id, cause, effect_id(str(cause.id), "login"))],
                       expected_version=ANY)


async def _older_and_recorded(store: EventStorePort, state: UserState, cause: Envelope) -> bool:
    """Whether a sign-in sent before the latest recorded login caused one of the user's events.
    The state knows only the registration's and the latest login's commands; an older command
    is a redelivery (a replay from the dead letters, perhaps days later) or lost a race with a
    newer sign-in, both rare, so only then are the user's events read whole."""
    if state.last_login_at is None or cause.timestamp > state.last_login_at:
        return False
    return any(e.metadata.causation_id == str(cause.id)
               for e in await store.read_aggregate(state.user_id))


async def handle_update_profile(
    cause: Envelope, command: UpdateProfile, *, store: EventStorePort
) -> None:
    """Record that the profile changed (the values are in the vault); nothing for a user that
    does not exist (any more)."""
    state = await load_user(store, command.user_id)
    if not state.registered or state.deleted:
        return
    event = _event(ProfileUpdated(), command.user_id, cause, effect_id(str(cause.id), "profile"))
    await store.append([event], expected_version=ANY)


async def handle_delete_user(cause: Envelope, command: DeleteUser, *, store: EventStorePort) -> None:
    """Record ``UserDeleted`` once (the gateway erased the vault entry first); nothing for an
    unknown user."""
    state = await load_user(store, command.user_id)
    if not state.registered or state.deleted:
        return
    event_id = uuid.uuid5(EVENT_NAMESPACE, f"{command.user_id}\x1fdeleted")
    await store.append([_event(UserDeleted(), command.user_id, cause, event_id)],
                       expected_version=ANY)
