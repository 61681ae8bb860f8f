"""The pages themselves: served with their own CSP, /ops gated, static files only, every
translated label defined, and the sample pictures real PNGs the local vision model reads."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from agents.knowledge import KnowledgeBase
from agents.llm.local import LocalVision
from gateway.web import draw_samples
from gateway.web_routes import STATIC
from infra.gateway_app import create_gateway
from infra.media import sniff_image_type
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.helpers import as_user, asgi_client

pytestmark = pytest.mark.redis


async def test_user_page_allows_its_scripts_and_geolocation(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe" not in csp
    assert "geolocation=(self)" in page.headers["permissions-policy"]
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        served = await client.get(asset)
        assert served.status_code == 200, asset
    script = await client.get("/static/app.js")
    assert "javascript" in script.headers["content-type"]


async def test_only_static_files_are_served(client: httpx.AsyncClient) -> None:
    for path in ("/static/../web_routes.py", "/static/%2e%2e/admin_auth.py", "/static/nope.js"):
        assert (await client.get(path)).status_code == 404, path
    assert {p.suffix for p in STATIC.rglob("*") if p.is_file()} <= {".html", ".js", ".css", ".png"}


async def test_ops_page_is_for_operators(client: httpx.AsyncClient, settings: Settings) -> None:
    anonymous = await client.get("/ops")
    assert anonymous.status_code == 401 and "로그인이 필요해요" in anonymous.text
    other = await client.get("/ops", headers=as_user(settings, "alice"))
    assert other.status_code == 403 and 'data-testid="ops-denied"' in other.text
    assert "/static/ops.js" not in other.text


async def test_ops_page_for_an_admin(settings: Settings) -> None:
    async with asgi_client(create_gateway(settings.with_(admins=("boss",)), live=FAST)) as client:
        page = await client.get("/ops", headers=as_user(settings, "boss"))
    assert page.status_code == 200 and "/static/ops.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(("html", "scripts"), [
    ("index.html", ("common.js", "app.js")), ("ops.html", ("common.js", "ops.js")),
])
def test_every_label_is_translated(html: str, scripts: tuple[str, ...]) -> None:
    text = (STATIC / html).read_text("utf-8")
    code = "".join((STATIC / s).read_text("utf-8") for s in scripts)
    keys = set(re.findall(r'data-i18n(?:-placeholder)?="([^"]+)"', text))
    assert keys
    missing = [k for k in keys if f'"{k}": [' not in code]
    assert not missing, f"labels without Korean/English text: {missing}"


def test_sample_pictures_are_pngs_the_local_vision_reads(tmp_path: Path) -> None:
    expected = {
        "pet_bottle": "무색페트병", "can": "금속류", "cardboard_box": "종이",
        "milk_carton": "종이팩", "glass_bottle": "유리병", "battery": "전지",
    }
    vision = LocalVision(KnowledgeBase.load())
    for name, middle in expected.items():
        data = (STATIC / "samples" / f"{name}.png").read_bytes()
        assert sniff_image_type(data[:32]) == "image/png" and len(data) < 4096
        assert vision.classify_text(None, name).classification.middle_category == middle
    # The committed pictures are exactly what the drawing code produces.
    draw_samples.main(tmp_path)
    for name in expected:
        assert (tmp_path / f"{name}.png").read_bytes() == (STATIC / "samples" / f"{name}.png").read_bytes()
