"""Who is calling: the user id every route and stream acts for.

Until the auth issue lands this reads a development header, ``X-User-Id``; the cookie
(``s_access``) and ``Authorization: Bearer`` checks will slot in here, so routes keep calling
``current_user`` unchanged.
"""

from __future__ import annotations

import re

from starlette.requests import Request

from gateway.errors import Unauthorized

DEV_USER_HEADER = "x-user-id"
_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")


async def current_user(request: Request) -> str:
    """The authenticated user's id; raises ``Unauthorized`` (401) without valid credentials."""
    user_id = request.headers.get(DEV_USER_HEADER, "").strip()
    if not user_id:
        raise Unauthorized("authentication required")
    if not _USER_ID.fullmatch(user_id):
        raise Unauthorized("invalid user credentials")
    return user_id
