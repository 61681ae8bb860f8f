"""Sign-in started by a page of another origin — the Eco² PWA on its own port — must end on that
page's ``#/home`` signed in. Chromium applies the sign-in form's CSP ``form-action`` to every
redirect after the POST (authorize → callback → ``<frontend>/#/home``), so the frontend's origin
must be allowed there; same-origin pages never see the difference.

The gateway runs in this process (uvicorn in a thread) with only the test's frontend origin
configured; the "PWA" is a small page served from a second local port that does what the PWA's
Login page does: ``GET /api/v1/auth/kakao`` with ``X-Frontend-Origin`` and ``withCredentials``,
then ``location.href = authorization_url``.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage

from infra.gateway_app import create_gateway
from infra.settings import Settings
from infra.tls import LocalCertificate
from tests.browser.conftest import ARTIFACTS
from tests.conftest import REDIS_URL
from tests.gateway.helpers import ServerThread

pytestmark = [pytest.mark.browser, pytest.mark.redis]

PWA_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>PWA</title></head>
<body><button id="kakao">카카오톡으로 로그인</button><p id="who"></p>
<script>
const API = "{api}";
document.getElementById("kakao").onclick = async () => {{
  const url = API + "/api/v1/auth/kakao?redirect_uri="
    + encodeURIComponent(API + "/api/v1/auth/kakao/callback");
  const r = await fetch(url, {{credentials: "include",
                               headers: {{"X-Frontend-Origin": window.location.origin}}}});
  const body = await r.json();
  window.location.href = body.data.authorization_url;
}};
if (window.location.hash === "#/home") {{
  fetch(API + "/api/v1/users/me", {{credentials: "include"}})
    .then((r) => r.json()).then((me) => {{
      document.getElementById("who").textContent = me.username || "?";
    }});
}}
</script></body></html>"""


class Frontend:
    """The PWA's origin: one page on a free loopback port (HTTPS with ``tls``, like the PWA's
    Vite dev server, under the name ``localhost``)."""

    def __init__(self, tls: LocalCertificate | None = None) -> None:
        self.page = ""
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = page.page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tls.cert, tls.key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.origin = f"https://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Frontend:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def frontend() -> Iterator[Frontend]:
    with Frontend() as running:
        yield running


@pytest.fixture
def gateway(frontend: Frontend, tmp_path: Path, namespace: str) -> Iterator[ServerThread]:
    settings = Settings(
        redis_url=REDIS_URL, namespace=namespace, data_dir=tmp_path,
        secret_key="pwa-signin-test-secret-0123", cors_origins=(frontend.origin,),
    )
    with ServerThread(create_gateway(settings)) as running:
        frontend.page = PWA_PAGE.format(api=running.url)
        yield running


def test_sign_in_from_another_origin_lands_on_its_home(
    browser: Browser, frontend: Frontend, gateway: ServerThread
) -> None:
    ctx = browser.new_context(locale="ko-KR")
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if isinstance(m, ConsoleMessage) else None)
    policies: list[str] = []
    page.on("response", lambda r: policies.append(r.headers.get("content-security-policy", ""))
            if "/auth/dev/authorize" in r.url and r.request.method == "GET" else None)
    try:
        page.goto(f"{frontend.origin}/#/login")
        page.click("#kakao")
        page.wait_for_url(f"{gateway.url}/api/v1/auth/dev/authorize**")
        page.fill("#nickname", "피더블유에이")
        page.click("button[type=submit]")
        page.wait_for_url(f"{frontend.origin}/#/home")
        page.locator("#who").filter(has_text="피더블유에이").wait_for()
        assert not [line for line in console if "form-action" in line], console
        # CSP stays strict: the form may go to us and to the configured frontend only
        form_action = next(d for d in policies[0].split(";") if "form-action" in d).split()[1:]
        assert sorted(form_action) == sorted(["'self'", gateway.url, frontend.origin])
        cookies = {c["name"]: c for c in ctx.cookies(gateway.url)}
        assert {"s_access", "s_refresh"} <= set(cookies)
        assert cookies["s_access"]["httpOnly"] and cookies["s_access"]["sameSite"] == "Lax"
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "pwa-signin-from-another-origin.png"))
        ctx.close()
