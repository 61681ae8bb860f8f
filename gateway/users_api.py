"""``GET/PATCH/DELETE /users/me``: the profile, through commands and events.

The profile is assembled from the ``users`` read model (provider, last login, deletion) — or,
while that model does not yet cover the user's last event, from the user's events folded from
Redis — plus the personal fields, which live only in the profile vault (never in the log, not
even in a command; see ``gateway.profile_vault`` and docs/PRIVACY.md). A PATCH writes the vault,
appends ``UpdateProfile`` and waits for its event, so it reads its own write at once; a DELETE
erases the vault first, then appends ``DeleteUser`` and waits for ``UserDeleted``.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import schemas
from gateway.auth import auth_store, current_user
from gateway.auth_api import clear_auth_cookies, revoke_presented
from gateway.bodies import parse_body
from gateway.edge import command_metadata, is_https
from gateway.errors import NotFound
from gateway.images import erase_user_media
from gateway.outcomes import append_command, outcome
from gateway.profile_vault import RedisProfileVault
from gateway.query_api import PG_ERRORS, covers, iso, load_user
from gateway.state import GatewayState, gateway_state
from readmodels import queries
from schemas.users import USER, DeleteUser, UpdateProfile, UserDeleted

log = logging.getLogger(__name__)

_PHONE = r"^\+?[0-9][0-9 ()-]*[0-9]$"


class ProfilePatch(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    nickname: str | None = Field(default=None, min_length=1, max_length=120)
    phone_number: str | None = Field(default=None, min_length=10, max_length=20, pattern=_PHONE)


def vault(gw: GatewayState) -> RedisProfileVault:
    return RedisProfileVault(gw.resources.redis, gw.resources.settings.namespace)


async def _account(gw: GatewayState, user_id: str) -> dict[str, Any] | None:
    """Provider, login times and deletion: the read model when it is current, else the log."""
    if await covers(gw, "users", user_id):
        try:
            assert gw.resources.pg is not None
            row = await queries.get_user(gw.resources.pg, user_id)
        except PG_ERRORS as exc:
            log.warning("users read model unreachable (%s): folding events", exc)
        else:
            if row is None or row.deleted or row.registered_at is None:
                return None
            return {"provider": row.provider, "last_login_at": iso(row.last_login_at),
                    "registered_at": iso(row.registered_at), "points": row.points}
    state = await load_user(gw, user_id)
    if not state.registered or state.deleted:
        return None
    return {"provider": state.provider, "last_login_at": iso(state.last_login_at),
            "registered_at": iso(state.registered_at)}


async def read_profile(gw: GatewayState, user_id: str) -> dict[str, Any] | None:
    """The API's profile of ``user_id``; None for an unknown or deleted user."""
    account = await _account(gw, user_id)
    if account is None:
        return None
    profile = await vault(gw).get(user_id)
    # Without a vault entry (lost, or a user created by another tool) the id stands in.
    fallback = f"user-{user_id[:8]}"
    username = profile.username if profile and profile.username else fallback
    nickname = profile.nickname if profile and profile.nickname else username
    return {
        "user_id": user_id,
        "username": username,
        "nickname": nickname,
        "display_name": nickname or username,
        "phone_number": profile.phone_number if profile else None,
        "provider": account["provider"],
        "last_login_at": account["last_login_at"] or account["registered_at"],
        "registered_at": account["registered_at"],
        **({"points": account["points"]} if "points" in account else {}),
    }


async def get_me(request: Request) -> JSONResponse:
    """``GET /users/me``."""
    user_id = await current_user(request)
    profile = await read_profile(gateway_state(request), user_id)
    if profile is None:
        raise NotFound("user not found")
    return JSONResponse(profile)


async def patch_me(request: Request) -> JSONResponse:
    """``PATCH /users/me`` → the updated profile (nickname 1..120, phone 10..20; else 422)."""
    user_id = await current_user(request)
    gw = gateway_state(request)
    body = await parse_body(request, ProfilePatch)
    user = await load_user(gw, user_id)
    if not user.registered or user.deleted:
        raise NotFound("user not found")
    if body.nickname is not None or body.phone_number is not None:
        await vault(gw).update(user_id, nickname=body.nickname, phone_number=body.phone_number)
        sent = await append_command(
            gw.resources.store, UpdateProfile(user_id=user_id), aggregate_id=user_id,
            aggregate_type=USER, metadata=command_metadata(request, user_id),
            idempotency_key=_idempotency_key(request, user_id),
        )
        # A retry with the same key finds the first request's event (read from the start).
        await outcome(gw.resources.store, user_id,
                      after_version=0 if sent.duplicate else user.version, match=sent.caused,
                      within_s=gw.resources.settings.command_wait_s)
    profile = await read_profile(gw, user_id)
    if profile is None:
        raise NotFound("user not found")
    return JSONResponse(profile)


def _idempotency_key(request: Request, user_id: str) -> str | None:
    """The command's idempotency key: the client's ``X-Idempotency-Key``, scoped to the user."""
    key = request.headers.get("x-idempotency-key")
    if not key:
        return None
    return "profile:" + hashlib.sha256(f"{user_id}\x1f{key}".encode()).hexdigest()[:40]


async def delete_me(request: Request) -> Response:
    """``DELETE /users/me`` → 204: personal fields and uploaded images erased, read models
    anonymised and scrubbed of the user's free text, every token of the user revoked."""
    user_id = await current_user(request)
    gw = gateway_state(request)
    settings = gw.resources.settings
    user = await load_user(gw, user_id)
    if not user.registered:
        raise NotFound("user not found")
    await vault(gw).erase(user_id)  # first: privacy does not wait for the event
    if not user.deleted:
        await append_command(
            gw.resources.store, DeleteUser(user_id=user_id), aggregate_id=user_id,
            aggregate_type=USER, metadata=command_metadata(request, user_id),
        )
        deleted = schemas.registry.wire_name(UserDeleted)[0]
        await outcome(gw.resources.store, user_id, after_version=user.version,
                      match=lambda envelope: envelope.type == deleted,
                      within_s=settings.command_wait_s)
    # Before the tokens are revoked: if this fails or the process dies, the account is marked
    # deleted but the same token can repeat the (idempotent) request until it answers 204.
    await erase_user_media(gw, user_id)
    await revoke_presented(request)
    await auth_store(request).cut_off_user(user_id, settings.refresh_token_ttl_s)
    response = Response(status_code=204)
    clear_auth_cookies(response, secure=settings.production or is_https(request, settings))
    return response
