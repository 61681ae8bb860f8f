"""Settings parse every variable and fail loudly on bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.settings import Settings, SettingsError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url is None and settings.database_url is None
    assert settings.aof_fsync == "everysec"
    assert settings.data_dir == Path(".eco2")


def test_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://h:1/0",
            "ECO2_SHARDS": "8",
            "ECO2_AOF_FSYNC": "always",
            "ECO2_PRODUCTION": "yes",
            "ECO2_SECRET_KEY": "s" * 32,
            "ECO2_IMAGE_HOSTS": "a.example, b.example,",
            "ECO2_DATA_DIR": "/var/eco2",
        }
    )
    assert settings.redis_url == "redis://h:1/0"
    assert settings.shards == 8
    assert settings.aof_fsync == "always"
    assert settings.production is True
    assert settings.image_hosts == ("a.example", "b.example")
    assert settings.data_dir == Path("/var/eco2")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ECO2_SHARDS": "four"}, "ECO2_SHARDS='four' is not an integer"),
        ({"ECO2_SHARDS": "0"}, "ECO2_SHARDS=0 must be >= 1"),
        ({"ECO2_AOF_FSYNC": "no"}, "ECO2_AOF_FSYNC='no' must be one of"),
        ({"ECO2_PRODUCTION": "maybe"}, "ECO2_PRODUCTION='maybe' is not a boolean"),
        ({"ECO2_PRODUCTION": "1"}, "ECO2_SECRET_KEY must be set"),
        ({"ECO2_SECRET_KEY": "short"}, "at least 16 characters"),
        ({"ECO2_LLM_TIMEOUT_S": "soon"}, "is not a number"),
    ],
)
def test_bad_values_fail_loudly(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        Settings.from_env(env)


def test_with_rejects_unknown_fields() -> None:
    settings = Settings.from_env({})
    assert settings.with_(port=9000).port == 9000
    with pytest.raises(SettingsError, match="unknown settings"):
        settings.with_(prot=9000)


def test_retry_budget_settings() -> None:
    defaults = Settings.from_env({})
    assert (defaults.retry_budget_s, defaults.retry_initial_s, defaults.retry_max_s) == (
        600.0, 0.25, 60.0
    )
    assert (defaults.reward_wait_s, defaults.redis_maxmemory) == (5.0, None)
    tuned = Settings.from_env({
        "ECO2_RETRY_BUDGET_S": "120", "ECO2_RETRY_INITIAL_S": "0.5", "ECO2_RETRY_MAX_S": "10",
        "ECO2_REWARD_WAIT_S": "0", "ECO2_REDIS_MAXMEMORY": "256mb",
    })
    assert (tuned.retry_budget_s, tuned.retry_initial_s, tuned.retry_max_s) == (120, 0.5, 10)
    assert (tuned.reward_wait_s, tuned.redis_maxmemory) == (0, "256mb")
    for name in ("ECO2_RETRY_INITIAL_S", "ECO2_RETRY_MAX_S"):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: "0"})
    with pytest.raises(SettingsError, match="ECO2_RETRY_BUDGET_S"):
        Settings.from_env({"ECO2_RETRY_BUDGET_S": "nan"})


def test_the_character_service_has_its_own_address() -> None:
    secret = {"ECO2_SECRET_KEY": "s" * 32}  # a non-loopback bind needs a real secret
    settings = Settings.from_env({"ECO2_HOST": "0.0.0.0", "ECO2_GRPC_PORT": "6000", **secret})
    assert settings.characters_target == "0.0.0.0:6000"  # one host: its own service
    elsewhere = Settings.from_env(
        {"ECO2_HOST": "0.0.0.0", "ECO2_CHARACTERS_ADDR": "characters.eco2.svc:50051", **secret}
    )
    assert elsewhere.characters_target == "characters.eco2.svc:50051"
    with pytest.raises(SettingsError, match="ECO2_CHARACTERS_ADDR"):
        Settings.from_env({"ECO2_CHARACTERS_ADDR": "characters"})


@pytest.mark.redis
async def test_workers_reach_the_character_service_at_its_address(redis_url: str) -> None:
    from characters.cache import CachedCharacters
    from infra.bootstrap import open_resources

    settings = Settings(redis_url=redis_url, host="10.0.0.7", characters_addr="chars:7000")
    async with open_resources(settings, redis_connections=2) as resources:
        cached = resources.characters
        assert isinstance(cached, CachedCharacters) and cached.ttl_s == 60
        assert getattr(cached.service, "target", None) == "chars:7000"
    async with open_resources(settings.with_(characters_cache_s=0), redis_connections=2) as bare:
        assert getattr(bare.characters, "target", None) == "chars:7000"
