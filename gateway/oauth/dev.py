"""The built-in dev provider's sign-in page (local use only; off in production).

``GET /api/v1/auth/dev/authorize?state=...`` shows a small form asking for a nickname; posting
it issues a one-time code and redirects to the login's callback URL with ``code`` and ``state``,
exactly like a real provider would. The same nickname signs in as the same user again.
"""

from __future__ import annotations

import html
import secrets
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.auth import auth_store
from gateway.auth_api import DEV_CODE_TTL_S, origin_of
from gateway.auth_store import LoginState
from gateway.errors import InvalidRequest, NotFound
from gateway.oauth.providers import DEV, dev_login_enabled
from gateway.state import gateway_state

MAX_NICKNAME = 40

PAGE = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Eco² 개발용 로그인</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 22rem; margin: 4rem auto; padding: 0 1rem; }}
input, button {{ font-size: 1rem; padding: .5rem; width: 100%; box-sizing: border-box; }}
button {{ margin-top: .75rem; }} .note {{ color: #666; font-size: .85rem; }}
</style></head>
<body><h1>Eco² 개발용 로그인</h1>
<p class="note">{provider} 대신 개발용 계정으로 로그인합니다. 같은 닉네임은 같은 계정입니다.</p>
<form method="post" action="/api/v1/auth/dev/authorize">
<input type="hidden" name="state" value="{state}">
<label for="nickname">닉네임</label>
<input id="nickname" name="nickname" required maxlength="{max}" autofocus>
<button type="submit">로그인</button>
</form></body></html>
"""


def _csp(login: LoginState) -> str:
    # The form posts here, and the browser then follows redirects to the callback's origin and
    # from there to the frontend (``<origin>/#/home``); Chromium checks ``form-action`` on
    # every one of them. Both origins were checked against the allow-list when the login
    # started, so nothing but a configured frontend (or ourselves) is ever added.
    targets = " ".join(sorted({
        "'self'", origin_of(login.redirect_uri) or "'self'", origin_of(login.origin) or "'self'",
    }))
    return (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
    )


async def _dev_login(request: Request, state: str) -> LoginState:
    if not dev_login_enabled(gateway_state(request).resources.settings):
        raise NotFound("the dev sign-in is off")
    login = await auth_store(request).peek_state(state) if state else None
    if login is None or login.backend != DEV:
        raise InvalidRequest("state", "unknown or expired sign-in; start again from the app")
    return login


async def authorize_page(request: Request) -> Response:
    """The sign-in form of a started dev login."""
    state = request.query_params.get("state", "")
    login = await _dev_login(request, state)
    body = PAGE.format(
        provider=html.escape(login.provider), state=html.escape(state, quote=True),
        max=MAX_NICKNAME,
    )
    return HTMLResponse(
        body, headers={"Content-Security-Policy": _csp(login), "Cache-Control": "no-store"}
    )


async def authorize_submit(request: Request) -> Response:
    """The form's post: a one-time code, then the callback (303: the browser GETs it)."""
    form = await request.form()
    state = str(form.get("state") or "")
    login = await _dev_login(request, state)
    nickname = " ".join(str(form.get("nickname") or "").split())
    if not 1 <= len(nickname) <= MAX_NICKNAME:
        raise InvalidRequest("nickname", f"must be 1..{MAX_NICKNAME} characters")
    code = secrets.token_urlsafe(32)
    await auth_store(request).put_code(code, nickname, DEV_CODE_TTL_S)
    query = urlencode({"code": code, "state": state})
    return RedirectResponse(f"{login.redirect_uri}?{query}", status_code=303)
