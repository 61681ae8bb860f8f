"""Signing a provider account in: the account it names, its profile, the ``SignIn`` command.

The user id is derived from the provider account (``schemas.user_state.user_id_for``); a deleted
account stays deleted, so a provider account signing in again is the next generation's user.
The personal fields go to the profile vault first (by the time the event exists, reads find the
profile), then ``SignIn`` is appended and the request waits for the event it causes:
``UserRegistered`` on the first sign-in, ``UserLoggedIn`` after that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import schemas
from eventstore.snapshotting import load_state
from gateway.oauth.providers import ProviderIdentity
from gateway.outcomes import Sent, append_command, outcome
from gateway.profile_vault import Profile, RedisProfileVault
from gateway.state import GatewayState
from schemas.envelope import Envelope, Metadata
from schemas.user_state import MAX_GENERATIONS, UserState, hashed_subject, user_id_for
from schemas.users import USER, SignIn, UserDeleted, UserRegistered


@dataclass(frozen=True)
class SignedIn:
    user_id: str
    registered: bool  # True: this sign-in created the account


async def sign_in(gw: GatewayState, identity: ProviderIdentity, metadata: Metadata) -> SignedIn:
    """Sign ``identity`` in: its account registered on the first sign-in, else the login
    recorded. ``CommandPending`` (503) when no handler recorded it in time."""
    res = gw.resources
    vault = RedisProfileVault(res.redis, res.settings.namespace)
    profile = Profile(identity.username, identity.nickname, identity.phone_number)
    for generation in range(MAX_GENERATIONS):
        user_id = user_id_for(identity.provider, identity.subject, generation)
        user = await load_state(res.store, UserState, user_id, schemas.registry)
        if user.deleted:
            continue
        if not user.registered or await vault.get(user_id) is None:
            # New, or the vault lost it (e.g. restored from an old backup).
            await vault.put(user_id, profile)
        command = SignIn(
            user_id=user_id, provider=identity.provider,
            provider_user_id=hashed_subject(identity.provider, identity.subject),
        )
        sent = await append_command(
            res.store, command, aggregate_id=user_id, aggregate_type=USER,
            metadata=metadata.model_copy(update={"user_id": user_id}),
        )
        effect = schemas.registry.decode_envelope(await outcome(
            res.store, user_id, after_version=user.version, match=_answers(sent),
            within_s=res.settings.command_wait_s,
        ))
        if isinstance(effect, UserDeleted):
            continue  # deleted meanwhile: the next generation's account signs in
        return SignedIn(user_id, registered=isinstance(effect, UserRegistered))
    raise RuntimeError(f"{identity.provider} account was deleted {MAX_GENERATIONS} times")


def _answers(sent: Sent) -> Callable[[Envelope], bool]:
    """The sign-in's own event, or a deletion that overtook it."""
    deleted = schemas.registry.wire_name(UserDeleted)[0]
    return lambda envelope: sent.caused(envelope) or envelope.type == deleted
