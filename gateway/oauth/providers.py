"""OAuth 2.0 authorization-code login against kakao, google and naver.

Each provider is a ``ProviderSpec``: its three endpoints and how to read its userinfo. When a
provider's base URL is set (tests: a local stub server) every endpoint keeps its path and moves
to that base. ``resolve`` picks who handles a requested provider name: the real provider when
its client id is configured, else the built-in dev provider for kakao/google (never in
production), else nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlencode, urlsplit

import httpx

from gateway.config import GatewayConfig

log = logging.getLogger(__name__)

DEV: Final = "dev"
MAPS_TO_DEV = ("kakao", "google")


class OAuthError(Exception):
    """The provider refused the code, failed, or answered something we cannot read."""


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the identity provider says signed in. ``subject`` is the provider's stable id; the
    other fields are personal (the profile vault keeps them, the log never sees them)."""

    provider: str
    subject: str
    username: str
    nickname: str
    phone_number: str | None = None


def _text(value: Any, limit: int = 120) -> str:
    return str(value).strip()[:limit] if value not in (None, "") else ""


def _phone(value: Any) -> str | None:
    text = _text(value, 40)
    return text if 10 <= len(text) <= 20 else None


def _kakao(info: dict[str, Any]) -> ProviderIdentity:
    subject = _text(info.get("id"))
    account = info.get("kakao_account") or {}
    nickname = _text((account.get("profile") or {}).get("nickname")) or _text(
        (info.get("properties") or {}).get("nickname")
    )
    email = _text(account.get("email"))
    return _identity("kakao", subject, email or nickname, nickname, _phone(account.get("phone_number")))


def _google(info: dict[str, Any]) -> ProviderIdentity:
    email = _text(info.get("email"))
    name = _text(info.get("name")) or _text(info.get("given_name"))
    return _identity("google", _text(info.get("sub")), email or name, name or email.split("@")[0])


def _naver(info: dict[str, Any]) -> ProviderIdentity:
    if str(info.get("resultcode", "00")) != "00":
        raise OAuthError(f"naver userinfo: {info.get('message', 'error')}")
    r = info.get("response") or {}
    nickname = _text(r.get("nickname")) or _text(r.get("name"))
    email = _text(r.get("email"))
    return _identity("naver", _text(r.get("id")), email or nickname, nickname, _phone(r.get("mobile")))


def _identity(
    provider: str, subject: str, username: str, nickname: str, phone: str | None = None
) -> ProviderIdentity:
    if not subject:
        raise OAuthError(f"{provider} userinfo has no account id")
    fallback = f"{provider}-{subject[-6:]}"
    return ProviderIdentity(provider, subject, username or fallback, nickname or fallback, phone)


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    authorize_url: str
    token_url: str
    userinfo_url: str
    scope: str | None
    parse: Callable[[dict[str, Any]], ProviderIdentity]


SPECS: dict[str, ProviderSpec] = {
    "kakao": ProviderSpec(
        "kakao", "https://kauth.kakao.com/oauth/authorize", "https://kauth.kakao.com/oauth/token",
        "https://kapi.kakao.com/v2/user/me", None, _kakao,
    ),
    "google": ProviderSpec(
        "google", "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token", "https://openidconnect.googleapis.com/v1/userinfo",
        "openid email profile", _google,
    ),
    "naver": ProviderSpec(
        "naver", "https://nid.naver.com/oauth2.0/authorize", "https://nid.naver.com/oauth2.0/token",
        "https://openapi.naver.com/v1/nid/me", None, _naver,
    ),
}


@dataclass(frozen=True)
class OAuthProvider:
    """A configured provider: builds the authorization URL, exchanges a code for an identity."""

    spec: ProviderSpec
    client_id: str
    client_secret: str | None
    base_url: str | None
    timeout_s: float

    @property
    def name(self) -> str:
        return self.spec.name

    def endpoint(self, url: str) -> str:
        if not self.base_url:
            return url
        parts = urlsplit(url)
        return self.base_url.rstrip("/") + parts.path

    def authorization_url(self, state: str, redirect_uri: str) -> str:
        params = {
            "response_type": "code", "client_id": self.client_id,
            "redirect_uri": redirect_uri, "state": state,
        }
        if self.spec.scope:
            params["scope"] = self.spec.scope
        return f"{self.endpoint(self.spec.authorize_url)}?{urlencode(params)}"

    async def identity(self, code: str, redirect_uri: str, state: str) -> ProviderIdentity:
        """Exchange ``code`` at the token endpoint, then read the userinfo endpoint."""
        form = {
            "grant_type": "authorization_code", "client_id": self.client_id, "code": code,
            "redirect_uri": redirect_uri, "state": state,
        }
        if self.client_secret:
            form["client_secret"] = self.client_secret
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                token = await client.post(
                    self.endpoint(self.spec.token_url), data=form,
                    headers={"Accept": "application/json"},
                )
                access = _json(token, "token").get("access_token")
                if not isinstance(access, str) or not access:
                    raise OAuthError(f"{self.name} token response has no access_token")
                info = await client.get(
                    self.endpoint(self.spec.userinfo_url),
                    headers={"Authorization": f"Bearer {access}", "Accept": "application/json"},
                )
                return self.spec.parse(_json(info, "userinfo"))
        except httpx.HTTPError as exc:
            raise OAuthError(f"{self.name}: {type(exc).__name__}: {exc}") from exc


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise OAuthError(f"{what} endpoint answered {response.status_code}")
    try:
        data = response.json()
    except ValueError as exc:
        raise OAuthError(f"{what} endpoint answered no JSON") from exc
    if not isinstance(data, dict):
        raise OAuthError(f"{what} endpoint answered no JSON object")
    if "error" in data and what == "token":
        raise OAuthError(f"token endpoint: {data.get('error')}")
    return data


def configured(settings: GatewayConfig, name: str) -> OAuthProvider | None:
    """The real provider ``name`` if its client id is set."""
    spec = SPECS.get(name)
    if spec is None:
        return None
    client = settings.oauth_clients.get(name)
    if client is None or not client.client_id:
        return None
    return OAuthProvider(
        spec, client.client_id, client.client_secret, client.base_url, settings.oauth_timeout_s,
    )


def dev_login_enabled(settings: GatewayConfig) -> bool:
    return settings.dev_login and not settings.production


def resolve(settings: GatewayConfig, name: str) -> OAuthProvider | Literal["dev"] | None:
    """Who signs in for the requested provider ``name``; None: not available here."""
    real = configured(settings, name)
    if real is not None:
        return real
    if dev_login_enabled(settings) and (name == DEV or name in MAPS_TO_DEV):
        return DEV
    return None
