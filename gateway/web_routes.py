"""The gateway's own pages and the admin API behind the operations page.

- ``/`` — the user page (sign in, scan, chat, collection, nearby points): static HTML + JS
  talking to the public ``/api/v1`` like any client.
- ``/ops`` — the operations page, for ``ECO2_ADMINS`` only (401/403 pages for others).
- ``/static/...`` — the pages' JS, CSS and sample images.
- ``/api/v1/admin/...`` — overview, dead letters, rebuilds and the live tail (see
  ``gateway/web/admin_*.py``); each action calls the library function its CLI command calls.

``app.py`` adds ``WEB_ROUTES`` to its route list.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.errors import TokenRevoked, Unauthorized
from gateway.web import admin_dlq, admin_rebuild, admin_status, admin_tail
from gateway.web.admin_auth import caller, whoami

STATIC = Path(__file__).parent / "web" / "static"
Endpoint = Callable[[Request], Awaitable[Response]]

# The pages load only their own scripts and styles; geolocation is allowed for the nearby
# list (the edge's default Permissions-Policy denies it everywhere else).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(self)",
    "Cache-Control": "no-cache",
}

DENIED = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Eco² — {title}</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/style.css"></head>
<body><main class="narrow"><section class="card denied" data-testid="ops-denied">
<h1>{status} · {title}</h1><p>{message}</p><p><a class="button" href="/">{link}</a></p>
</section></main></body></html>
"""


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html", headers=PAGE_HEADERS)


def _denied(status: int, title: str, message: str, link: str) -> HTMLResponse:
    body = DENIED.format(status=status, title=html.escape(title), message=html.escape(message),
                         link=html.escape(link))
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


async def user_page(request: Request) -> Response:
    return _page("index.html")


async def ops_page(request: Request) -> Response:
    """The operations page for operators; a 401 or 403 page (in Korean) for anyone else."""
    try:
        who = await caller(request)
    except (Unauthorized, TokenRevoked):
        return _denied(401, "로그인이 필요해요", "운영 페이지는 로그인한 운영자만 볼 수 있어요. "
                       "(Sign in first: operators only.)", "로그인하러 가기 · Sign in")
    if not who.admin:
        return _denied(403, "운영자 전용", f"{who.username or who.user_id} 계정은 운영자가 아니에요. "
                       "ECO2_ADMINS에 등록된 계정만 들어올 수 있어요. (Operators only.)",
                       "처음으로 · Home")
    return _page("ops.html")


def _route(path: str, endpoint: Endpoint, method: str) -> Route:
    # Not part of the PWA's v1 contract, hence not in the OpenAPI document (/docs).
    return Route(path, endpoint, methods=[method], include_in_schema=False)


ADMIN = "/api/v1/admin"
WEB_ROUTES: list[BaseRoute] = [
    _route("/", user_page, "GET"),
    _route("/ops", ops_page, "GET"),
    Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    _route(f"{ADMIN}/me", whoami, "GET"),
    _route(f"{ADMIN}/overview", admin_status.overview, "GET"),
    _route(f"{ADMIN}/dlq", admin_dlq.list_dead_letters, "GET"),
    _route(f"{ADMIN}/dlq/replay", admin_dlq.replay_dead_letters, "POST"),
    _route(f"{ADMIN}/dlq/purge", admin_dlq.purge_dead_letters, "POST"),
    _route(f"{ADMIN}/dlq/{{shard}}/{{dlq_id}}", admin_dlq.show_dead_letter, "GET"),
    _route(f"{ADMIN}/projections/{{name}}/rebuild", admin_rebuild.start_rebuild, "POST"),
    _route(f"{ADMIN}/projections/{{name}}/rebuild", admin_rebuild.rebuild_state, "GET"),
    _route(f"{ADMIN}/projections/{{name}}/rebuild/events", admin_rebuild.rebuild_events, "GET"),
    _route(f"{ADMIN}/tail", admin_tail.tail_events, "GET"),
]
