"""A stub OAuth 2.0 server speaking the kakao, google and naver shapes on their real paths.

``/authorize`` redirects straight back with a code (the user "consents"), the token endpoint
checks client id, secret, code and redirect URI, the userinfo endpoint checks the Bearer token.
Every request is recorded for assertions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "stub-client"
CLIENT_SECRET = "stub-secret"


@dataclass
class StubAccount:
    subject: str
    nickname: str
    email: str
    phone: str | None = None


@dataclass
class OAuthStub:
    accounts: dict[str, StubAccount] = field(default_factory=lambda: {
        "kakao": StubAccount("4242", "카카오친구", "kakao.friend@example.com", "+82 10-1234-5678"),
        "google": StubAccount("10987654321", "Google Person", "g.person@example.com"),
        "naver": StubAccount("nv-abc123", "네이버닉", "naver.user@example.com", "010-9876-5432"),
    })
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code → (provider, redirect)
    tokens: dict[str, str] = field(default_factory=dict)  # access token → provider
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fail_token: bool = False

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/oauth/authorize", self.authorize("kakao")),
            Route("/oauth/token", self.token("kakao"), methods=["POST"]),
            Route("/v2/user/me", self.userinfo("kakao")),
            Route("/o/oauth2/v2/auth", self.authorize("google")),
            Route("/token", self.token("google"), methods=["POST"]),
            Route("/v1/userinfo", self.userinfo("google")),
            Route("/oauth2.0/authorize", self.authorize("naver")),
            Route("/oauth2.0/token", self.token("naver"), methods=["POST"]),
            Route("/v1/nid/me", self.userinfo("naver")),
        ])

    def authorize(self, provider: str):  # type: ignore[no-untyped-def]
        async def endpoint(request: Request) -> Response:
            q = request.query_params
            self.requests.append((provider, "authorize", dict(q)))
            if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = (provider, q["redirect_uri"])
            query = urlencode({"code": code, "state": q["state"]})
            return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=302)

        return endpoint

    def token(self, provider: str):  # type: ignore[no-untyped-def]
        async def endpoint(request: Request) -> Response:
            form = dict(await request.form())
            self.requests.append((provider, "token", form))
            issued = self.codes.pop(str(form.get("code")), None)
            if (self.fail_token or issued is None or issued != (provider, form.get("redirect_uri"))
                    or form.get("client_id") != CLIENT_ID
                    or form.get("client_secret") != CLIENT_SECRET
                    or form.get("grant_type") != "authorization_code"):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            access = secrets.token_urlsafe(16)
            self.tokens[access] = provider
            return JSONResponse({"access_token": access, "token_type": "bearer", "expires_in": 3600})

        return endpoint

    def userinfo(self, provider: str):  # type: ignore[no-untyped-def]
        async def endpoint(request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            self.requests.append((provider, "userinfo", {"authorization": auth}))
            if self.tokens.get(auth.removeprefix("Bearer ")) != provider:
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            a = self.accounts[provider]
            if provider == "kakao":
                return JSONResponse({"id": int(a.subject), "kakao_account": {
                    "profile": {"nickname": a.nickname}, "email": a.email,
                    "phone_number": a.phone}})
            if provider == "google":
                return JSONResponse({"sub": a.subject, "email": a.email, "name": a.nickname,
                                     "email_verified": True})
            return JSONResponse({"resultcode": "00", "message": "success", "response": {
                "id": a.subject, "nickname": a.nickname, "email": a.email, "mobile": a.phone}})

        return endpoint
