"""Cross-site request checks for writes authenticated by cookie.

``SameSite=Lax`` cookies still travel with requests from sibling subdomains (same *site*), and
a form can POST ``text/plain`` without a CORS preflight. So a write (POST/PUT/PATCH/DELETE under
``/api/v1``) that carries our auth cookies and no ``Authorization`` header must come from an
allowed origin: the CORS allow-list (the PWA is cross-origin) or the gateway's own. Browsers
send ``Origin`` on every such request; without it, ``Sec-Fetch-Site`` must not say the
request crossed sites. Requests with neither header are not from a browser (scripts, curl):
they carry no ambient credentials an attacker could borrow.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers

AUTH_COOKIES = ("s_access=", "s_refresh=")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def cookie_authenticated(headers: Headers) -> bool:
    """Whether the request relies on our auth cookies (no Bearer token of its own)."""
    if headers.get("authorization", "").strip():
        return False
    cookie = headers.get("cookie", "")
    return any(part.strip().startswith(AUTH_COOKIES) for part in cookie.split(";"))


def own_origin_matches(origin: str, headers: Headers, public_url: str | None) -> bool:
    parts = urlsplit(origin)
    if public_url:
        own = urlsplit(public_url)
        if (parts.scheme, parts.netloc) == (own.scheme, own.netloc):
            return True
    host = headers.get("host", "")
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host


def cross_site_refusal(method: str, path: str, headers: Headers, allowed: frozenset[str],
                       public_url: str | None) -> str | None:
    """Why a cookie-authenticated write must be refused, or None when it may pass."""
    if method not in WRITE_METHODS or not path.startswith("/api/v1/"):
        return None
    if not cookie_authenticated(headers):
        return None
    origin = headers.get("origin")
    if origin is not None:
        if origin in allowed or own_origin_matches(origin, headers, public_url):
            return None
        return f"origin {origin[:100]!r} may not send cookie-authenticated writes"
    if headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site"):
        return "cross-site cookie-authenticated writes are refused"
    return None
