"""``eco2 up --tls`` with the PWA's HTTPS dev server: the gateway process ``up`` runs serves
HTTPS with the local certificate from the data dir, and a page on another HTTPS origin
(``https://localhost:<port>``, as the PWA's Vite server) signs in and then makes credentialed
calls: the ``Secure`` cookies are set and sent back (same site, both HTTPS)."""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from infra.cli import processes
from infra.settings import Settings
from infra.tls import LocalCertificate, ensure_local_certificate
from tests.browser.conftest import ARTIFACTS
from tests.browser.stack import free_port
from tests.browser.test_pwa_signin import PWA_PAGE, Frontend
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.e2e]


@pytest.fixture
def settings(tmp_path: Path, namespace: str) -> Settings:
    return Settings(redis_url=REDIS_URL, namespace=namespace,
                    data_dir=tmp_path / "data", port=free_port(), tls=True)


@pytest.fixture
def certificate(settings: Settings) -> LocalCertificate:
    return ensure_local_certificate(settings.data_dir, settings.host)  # what `up --tls` does


@pytest.fixture
def frontend(certificate: LocalCertificate) -> Iterator[Frontend]:
    with Frontend(certificate) as running:
        yield running


@pytest.fixture
def gateway(settings: Settings, certificate: LocalCertificate, frontend: Frontend,
            tmp_path: Path) -> Iterator[str]:
    """The gateway process exactly as ``eco2 up --tls`` starts it."""
    spec = next(p for p in processes(settings) if p.name == "gateway")
    assert "--ssl-certfile" in spec.argv
    env = {**os.environ, **spec.env, "ECO2_NAMESPACE": settings.namespace,
           "ECO2_CORS_ORIGINS": frontend.origin, "ECO2_LOG_JSON": "false",
           "ECO2_SECRET_KEY": "pwa-tls-test-secret-0123456789"}
    env.pop("DATABASE_URL", None)
    base = f"https://localhost:{settings.port}"
    trust = ssl.create_default_context(cafile=str(certificate.ca))
    log = (tmp_path / "gateway.log").open("w")
    process = subprocess.Popen(spec.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                               cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 30
        while True:  # the client trusts only our local CA: the chain must verify
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", verify=trust, timeout=1).is_success:
                    break
            assert process.poll() is None and time.monotonic() < deadline, \
                (tmp_path / "gateway.log").read_text()
            time.sleep(0.2)
        frontend.page = PWA_PAGE.format(api=base)
        yield base
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_https_pwa_signs_in_and_sends_secure_cookies(
    browser: Browser, frontend: Frontend, gateway: str
) -> None:
    # The PWA's dev server certificate is self-signed; the user accepts ours the same way.
    ctx = browser.new_context(locale="ko-KR", ignore_https_errors=True)
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    try:
        page.goto(f"{frontend.origin}/#/login")
        page.click("#kakao")
        page.wait_for_url(f"{gateway}/api/v1/auth/dev/authorize**")
        page.fill("#nickname", "https사용자")
        page.click("button[type=submit]")
        page.wait_for_url(f"{frontend.origin}/#/home")
        # /users/me from the HTTPS page with credentials: the cookies came back
        page.locator("#who").filter(has_text="https사용자").wait_for()
        cookies = {c["name"]: c for c in ctx.cookies(gateway)}
        assert {"s_access", "s_refresh"} <= set(cookies)
        assert all(cookies[n]["secure"] for n in ("s_access", "s_refresh"))
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "pwa-https-dev-server.png"))
        ctx.close()
