"""Who may operate: ``ECO2_ADMINS`` lists user ids or usernames.

User ids always count. Usernames count only while the dev sign-in is enabled: there every
name is self-asserted anyway, and a newcomer signs in as ``admin`` (the default list when not
in production). With real providers only, names are whatever the provider says — possibly
shared by many accounts — so production lists user ids. A gateway whose tokens are signed
with a well-known secret (``gateway.config.WELL_KNOWN_SECRETS``) has no operators at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.auth import current_user
from gateway.config import WELL_KNOWN_SECRETS
from gateway.config import GatewayConfig as Settings
from gateway.oauth.providers import dev_login_enabled
from gateway.profile_vault import RedisProfileVault
from gateway.state import gateway_state


class AdminRequired(HTTPException):
    """A signed-in user who is not an operator: 403 (the errors table keeps the status)."""

    def __init__(self) -> None:
        super().__init__(status_code=403, detail="operators only (see ECO2_ADMINS)")


@dataclass(frozen=True)
class Caller:
    user_id: str
    username: str
    admin: bool


def is_admin(settings: Settings, user_id: str, username: str | None) -> bool:
    """True when ``user_id`` — or, with the dev sign-in on, ``username`` — is listed.

    Never while tokens are signed with a well-known secret: anyone could mint them."""
    if settings.secret_key in WELL_KNOWN_SECRETS:
        return False
    if user_id in settings.admins:
        return True
    return bool(username) and dev_login_enabled(settings) and username in settings.admins


async def caller(request: Request) -> Caller:
    """The signed-in caller and whether they operate (401 without valid credentials)."""
    user_id = await current_user(request)
    res = gateway_state(request).resources
    profile = await RedisProfileVault(res.redis, res.settings.namespace).get(user_id)
    username = profile.username if profile else ""
    return Caller(user_id, username, is_admin(res.settings, user_id, username))


async def require_admin(request: Request) -> Caller:
    """The caller when they are an operator; ``AdminRequired`` (403) otherwise."""
    who = await caller(request)
    if not who.admin:
        raise AdminRequired()
    return who


async def whoami(request: Request) -> JSONResponse:
    """``GET /api/v1/admin/me`` → ``{"user_id", "username", "admin"}`` (any signed-in user:
    the user page asks it to decide whether to link to /ops)."""
    who = await caller(request)
    return JSONResponse({"user_id": who.user_id, "username": who.username, "admin": who.admin})
