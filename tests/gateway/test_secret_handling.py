"""The signing secret: never a public value where it matters.

- outside production an unset ``ECO2_SECRET_KEY`` means a random secret generated once into the
  data dir (every process of the run reads the same file), and only for a loopback bind;
- a non-loopback bind without ``ECO2_SECRET_KEY`` refuses to start, and the default ``admin``
  operator is only given on loopback;
- a token signed with a well-known secret never reaches an admin route.
"""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.auth_tokens import bearer
from infra.gateway_app import create_gateway
from infra.settings import DEV_SECRET, SECRET_FILE, Settings, SettingsError
from tests.gateway.conftest import FAST
from tests.gateway.helpers import asgi_client
from tests.readmodels.pg import migrated_pool, new_schema

ROOT = "root-user"
PURGE = "/api/v1/admin/dlq/purge"


def test_an_unset_secret_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    env = {"ECO2_DATA_DIR": str(tmp_path)}
    first, again = Settings.from_env(env), Settings.from_env(env)
    assert first.secret_key == again.secret_key != DEV_SECRET
    assert len(first.secret_key) >= 32
    path = tmp_path / SECRET_FILE
    assert path.read_text().strip() == first.secret_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = Settings.from_env({"ECO2_DATA_DIR": str(tmp_path / "other")})
    assert other.secret_key != first.secret_key


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.0.7", "::", "eco2.example.org"])
def test_a_non_loopback_bind_needs_a_real_secret(tmp_path: Path, host: str) -> None:
    env = {"ECO2_DATA_DIR": str(tmp_path), "ECO2_HOST": host}
    with pytest.raises(SettingsError, match="ECO2_SECRET_KEY"):
        Settings.from_env(env)
    assert not (tmp_path / SECRET_FILE).exists()
    given = Settings.from_env({**env, "ECO2_SECRET_KEY": "k" * 40})
    assert given.secret_key == "k" * 40
    assert given.admins == ()  # "admin" is claimable at the dev sign-in: loopback only
    for loopback in ("127.0.0.1", "localhost", "::1"):
        local = Settings.from_env({**env, "ECO2_HOST": loopback})
        assert local.admins == ("admin",)


def test_a_well_known_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="well-known"):
        Settings.from_env({"ECO2_DATA_DIR": str(tmp_path), "ECO2_SECRET_KEY": DEV_SECRET})


@pytest.fixture
async def schema(database_url: str) -> AsyncIterator[str]:
    name = new_schema()
    async with migrated_pool(database_url, name):
        yield name


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_token_signed_with_the_public_secret_never_reaches_admin_routes(
    settings: Settings, database_url: str, schema: str
) -> None:
    public = settings.with_(secret_key=DEV_SECRET, database_url=database_url, db_schema=schema,
                            admins=(ROOT, "admin"))
    forged = bearer(public, ROOT)
    # A gateway still configured with the public value: the token verifies, admin is closed.
    async with asgi_client(create_gateway(public, live=FAST)) as client:
        r = await client.post(PURGE, json={"all": True}, headers=forged)
        assert r.status_code == 403, r.text
        assert (await client.get("/api/v1/admin/me", headers=forged)).json()["admin"] is False
    # A gateway configured from the environment generates its own secret: 401.
    generated = Settings.from_env({"ECO2_DATA_DIR": str(settings.data_dir)}).secret_key
    local = public.with_(secret_key=generated)
    async with asgi_client(create_gateway(local, live=FAST)) as client:
        r = await client.post(PURGE, json={"all": True}, headers=forged)
        assert r.status_code == 401, r.text
        r = await client.post(PURGE, json={"all": True, "dry_run": True},
                              headers=bearer(local, ROOT))
        assert r.status_code == 200, r.text  # the real operator still gets in
