"""Typed settings: the only module that reads the environment.

Every value has a documented environment variable. A value that is present but malformed fails
loudly at start-up (``SettingsError``) rather than at first use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not an integer") from exc
    if value < minimum:
        raise SettingsError(f"{name}={value} must be >= {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a number") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean")


def _str(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = env.get(name)
    return default if raw is None or raw == "" else raw


def _choice(env: Mapping[str, str], name: str, default: str, allowed: set[str]) -> str:
    value = _str(env, name, default) or default
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} must be one of {sorted(allowed)}")
    return value


# Where the PWA runs in development (vite and CRA dev servers); production lists its own.
DEV_ORIGINS = (
    "http://localhost:5173",
    "http://127.0.0.1:5173",
    "http://localhost:3000",
    "http://127.0.0.1:3000",
)


@dataclass(frozen=True)
class Settings:
    # The log
    redis_url: str | None = None  # ECO2 REDIS_URL; None → embedded redis-server under data_dir
    namespace: str = "eco2"  # ECO2_NAMESPACE; hash tags are {<namespace>:s<k>}
    shards: int = 4  # ECO2_SHARDS; fixed per deployment
    aof_fsync: str = "everysec"  # ECO2_AOF_FSYNC for the embedded Redis: everysec | always
    max_deliveries: int = 5  # ECO2_MAX_DELIVERIES before an entry is dead-lettered
    claim_idle_ms: int = 30_000  # ECO2_CLAIM_IDLE_MS: a pending entry idle this long is reclaimed
    claim_interval_s: float = 1.0  # ECO2_CLAIM_INTERVAL_S between claim sweeps
    handler_workers: int = 64  # ECO2_HANDLER_WORKERS: concurrent messages per subscriber

    # Read models
    database_url: str | None = None  # DATABASE_URL; None → embedded Postgres under data_dir
    db_schema: str = "public"  # ECO2_DB_SCHEMA: where read models live (tests use their own)

    # Runtime
    data_dir: Path = field(default_factory=lambda: Path(".eco2"))  # ECO2_DATA_DIR
    host: str = "127.0.0.1"  # ECO2_HOST
    port: int = 8000  # ECO2_PORT
    public_url: str | None = None  # ECO2_PUBLIC_URL: absolute base for upload/cdn URLs
    production: bool = False  # ECO2_PRODUCTION: turns the dev login off, cookies Secure
    log_level: str = "info"  # ECO2_LOG_LEVEL

    # Secrets (development defaults; production requires real ones)
    secret_key: str = "dev-secret-change-me"  # ECO2_SECRET_KEY signs JWTs and upload URLs

    # Uploads
    upload_max_bytes: int = 10 * 1024 * 1024  # ECO2_UPLOAD_MAX_BYTES
    upload_ttl_s: int = 900  # ECO2_UPLOAD_TTL_S
    image_hosts: tuple[str, ...] = ()  # ECO2_IMAGE_HOSTS: comma list of extra allowed hosts

    # LLM
    default_model: str = "local"  # ECO2_MODEL: local | gpt-* | gemini-*
    openai_api_key: str | None = None  # OPENAI_API_KEY
    openai_base_url: str | None = None  # OPENAI_BASE_URL
    gemini_api_key: str | None = None  # GEMINI_API_KEY
    gemini_base_url: str | None = None  # GOOGLE_GEMINI_BASE_URL
    llm_timeout_s: float = 60.0  # ECO2_LLM_TIMEOUT_S
    llm_retries: int = 2  # ECO2_LLM_RETRIES
    latency_profile: str = "none"  # ECO2_LATENCY: none | production | fast

    # Character gRPC service
    grpc_port: int = 50051  # ECO2_GRPC_PORT
    grpc_timeout_s: float = 2.0  # ECO2_GRPC_TIMEOUT_S
    # ECO2_CHARACTERS_ADDR: host:port where clients reach the character service (a Service
    # name on Kubernetes). Unset: the service of this host, ECO2_HOST:ECO2_GRPC_PORT.
    characters_addr: str | None = None

    # Auth: JWT cookies, OAuth providers, the dev login (issue 6)
    access_token_ttl_s: int = 3 * 3600  # ECO2_ACCESS_TOKEN_TTL_S: lifetime of s_access
    refresh_token_ttl_s: int = 30 * 86400  # ECO2_REFRESH_TOKEN_TTL_S: lifetime of s_refresh
    oauth_state_ttl_s: int = 600  # ECO2_OAUTH_STATE_TTL_S: how long a started login stays valid
    oauth_timeout_s: float = 10.0  # ECO2_OAUTH_TIMEOUT_S: token and userinfo calls
    dev_login: bool = True  # ECO2_DEV_LOGIN (default: on unless production); never in production
    # ECO2_ADMINS: comma list of user ids or usernames allowed on /ops and /api/v1/admin/*.
    # Unset: "admin" (the dev sign-in's nickname) unless production, where nobody is by default.
    admins: tuple[str, ...] = ()
    kakao_client_id: str | None = None  # ECO2_KAKAO_CLIENT_ID; unset → kakao uses the dev login
    kakao_client_secret: str | None = None  # ECO2_KAKAO_CLIENT_SECRET
    kakao_base_url: str | None = None  # ECO2_KAKAO_BASE_URL: replaces kauth/kapi.kakao.com
    google_client_id: str | None = None  # ECO2_GOOGLE_CLIENT_ID; unset → google uses the dev login
    google_client_secret: str | None = None  # ECO2_GOOGLE_CLIENT_SECRET
    google_base_url: str | None = None  # ECO2_GOOGLE_BASE_URL: replaces Google's OAuth hosts
    naver_client_id: str | None = None  # ECO2_NAVER_CLIENT_ID; unset → naver is unavailable
    naver_client_secret: str | None = None  # ECO2_NAVER_CLIENT_SECRET
    naver_base_url: str | None = None  # ECO2_NAVER_BASE_URL: replaces nid/openapi.naver.com

    # Edge: CORS, rate limits, body limits, logs (issue 6)
    cors_origins: tuple[str, ...] = DEV_ORIGINS  # ECO2_CORS_ORIGINS: comma list of origins
    rate_limit_window_s: int = 60  # ECO2_RATE_LIMIT_WINDOW_S
    rate_limit_user: int = 120  # ECO2_RATE_LIMIT_USER: commands per window per user; 0 = off
    rate_limit_ip: int = 600  # ECO2_RATE_LIMIT_IP: commands per window per client IP; 0 = off
    max_body_bytes: int = 1024 * 1024  # ECO2_MAX_BODY_BYTES (uploads: upload_max_bytes)
    trust_forwarded: bool = False  # ECO2_TRUST_FORWARDED: honour X-Forwarded-For/-Proto
    log_json: bool = True  # ECO2_LOG_JSON: one JSON object per log line

    # Media on S3 (default: files under data_dir/media)
    media_url: str | None = None  # ECO2_MEDIA_URL: s3://bucket[/prefix] selects the S3 store
    s3_endpoint_url: str | None = None  # AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL
    s3_region: str | None = None  # AWS_REGION or AWS_DEFAULT_REGION
    aws_access_key_id: str | None = None  # AWS_ACCESS_KEY_ID (unset: the SDK's own chain)
    aws_secret_access_key: str | None = None  # AWS_SECRET_ACCESS_KEY
    aws_session_token: str | None = None  # AWS_SESSION_TOKEN

    # Operability of every process
    health_port: int = 0  # ECO2_HEALTH_PORT: /healthz, /readyz, /metrics of this process; 0 = off
    drain_grace_s: float = 25.0  # ECO2_DRAIN_GRACE_S: SIGTERM → finish in-flight work within this

    # News collector for the info screen (issue 6)
    news_feeds: tuple[str, ...] = ()  # ECO2_NEWS_FEEDS: ';'-separated "[category=]url" RSS/Atom
    news_timeout_s: float = 10.0  # ECO2_NEWS_TIMEOUT_S per feed request

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``env`` (default ``os.environ``), validating each."""
        e = os.environ if env is None else env
        hosts = _str(e, "ECO2_IMAGE_HOSTS", "") or ""
        return cls(
            redis_url=_str(e, "REDIS_URL", None),
            namespace=_str(e, "ECO2_NAMESPACE", "eco2") or "eco2",
            shards=_int(e, "ECO2_SHARDS", 4, minimum=1),
            aof_fsync=_choice(e, "ECO2_AOF_FSYNC", "everysec", {"everysec", "always"}),
            max_deliveries=_int(e, "ECO2_MAX_DELIVERIES", 5, minimum=1),
            claim_idle_ms=_int(e, "ECO2_CLAIM_IDLE_MS", 30_000, minimum=1),
            claim_interval_s=_float(e, "ECO2_CLAIM_INTERVAL_S", 1.0),
            handler_workers=_int(e, "ECO2_HANDLER_WORKERS", 64, minimum=1),
            database_url=_str(e, "DATABASE_URL", None),
            db_schema=_str(e, "ECO2_DB_SCHEMA", "public") or "public",
            data_dir=Path(_str(e, "ECO2_DATA_DIR", ".eco2") or ".eco2"),
            host=_str(e, "ECO2_HOST", "127.0.0.1") or "127.0.0.1",
            port=_int(e, "ECO2_PORT", 8000, minimum=0),
            public_url=_str(e, "ECO2_PUBLIC_URL", None),
            production=_bool(e, "ECO2_PRODUCTION", False),
            log_level=_str(e, "ECO2_LOG_LEVEL", "info") or "info",
            secret_key=_secret(e),
            upload_max_bytes=_int(e, "ECO2_UPLOAD_MAX_BYTES", 10 * 1024 * 1024, minimum=1),
            upload_ttl_s=_int(e, "ECO2_UPLOAD_TTL_S", 900, minimum=1),
            image_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()),
            default_model=_str(e, "ECO2_MODEL", "local") or "local",
            openai_api_key=_str(e, "OPENAI_API_KEY", None),
            openai_base_url=_str(e, "OPENAI_BASE_URL", None),
            gemini_api_key=_str(e, "GEMINI_API_KEY", None),
            gemini_base_url=_str(e, "GOOGLE_GEMINI_BASE_URL", None),
            llm_timeout_s=_float(e, "ECO2_LLM_TIMEOUT_S", 60.0),
            llm_retries=_int(e, "ECO2_LLM_RETRIES", 2),
            latency_profile=_choice(e, "ECO2_LATENCY", "none", {"none", "production", "fast"}),
            grpc_port=_int(e, "ECO2_GRPC_PORT", 50051),
            grpc_timeout_s=_float(e, "ECO2_GRPC_TIMEOUT_S", 2.0),
            characters_addr=_address(e, "ECO2_CHARACTERS_ADDR"),
            access_token_ttl_s=_int(e, "ECO2_ACCESS_TOKEN_TTL_S", 3 * 3600, minimum=1),
            refresh_token_ttl_s=_int(e, "ECO2_REFRESH_TOKEN_TTL_S", 30 * 86400, minimum=1),
            oauth_state_ttl_s=_int(e, "ECO2_OAUTH_STATE_TTL_S", 600, minimum=1),
            oauth_timeout_s=_float(e, "ECO2_OAUTH_TIMEOUT_S", 10.0),
            dev_login=_bool(e, "ECO2_DEV_LOGIN", not _bool(e, "ECO2_PRODUCTION", False)),
            admins=_admins(e),
            kakao_client_id=_str(e, "ECO2_KAKAO_CLIENT_ID", None),
            kakao_client_secret=_str(e, "ECO2_KAKAO_CLIENT_SECRET", None),
            kakao_base_url=_str(e, "ECO2_KAKAO_BASE_URL", None),
            google_client_id=_str(e, "ECO2_GOOGLE_CLIENT_ID", None),
            google_client_secret=_str(e, "ECO2_GOOGLE_CLIENT_SECRET", None),
            google_base_url=_str(e, "ECO2_GOOGLE_BASE_URL", None),
            naver_client_id=_str(e, "ECO2_NAVER_CLIENT_ID", None),
            naver_client_secret=_str(e, "ECO2_NAVER_CLIENT_SECRET", None),
            naver_base_url=_str(e, "ECO2_NAVER_BASE_URL", None),
            cors_origins=_origins(e),
            rate_limit_window_s=_int(e, "ECO2_RATE_LIMIT_WINDOW_S", 60, minimum=1),
            rate_limit_user=_int(e, "ECO2_RATE_LIMIT_USER", 120),
            rate_limit_ip=_int(e, "ECO2_RATE_LIMIT_IP", 600),
            max_body_bytes=_int(e, "ECO2_MAX_BODY_BYTES", 1024 * 1024, minimum=1),
            trust_forwarded=_bool(e, "ECO2_TRUST_FORWARDED", False),
            log_json=_bool(e, "ECO2_LOG_JSON", True),
            news_feeds=_feeds(e),
            news_timeout_s=_float(e, "ECO2_NEWS_TIMEOUT_S", 10.0),
            media_url=_media_url(e),
            s3_endpoint_url=_str(e, "AWS_ENDPOINT_URL_S3", None) or _str(e, "AWS_ENDPOINT_URL", None),
            s3_region=_str(e, "AWS_REGION", None) or _str(e, "AWS_DEFAULT_REGION", None),
            aws_access_key_id=_str(e, "AWS_ACCESS_KEY_ID", None),
            aws_secret_access_key=_str(e, "AWS_SECRET_ACCESS_KEY", None),
            aws_session_token=_str(e, "AWS_SESSION_TOKEN", None),
            health_port=_int(e, "ECO2_HEALTH_PORT", 0),
            drain_grace_s=_float(e, "ECO2_DRAIN_GRACE_S", 25.0),
        )

    @property
    def characters_target(self) -> str:
        """The gRPC target of the character service (see ``characters_addr``)."""
        return self.characters_addr or f"{self.host}:{self.grpc_port}"

    def with_(self, **changes: Any) -> Settings:
        """A copy with some values replaced (tests, embedded services filling in URLs)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise SettingsError(f"unknown settings: {sorted(unknown)}")
        return replace(self, **changes)


def _address(env: Mapping[str, str], name: str) -> str | None:
    raw = _str(env, name, None)
    if raw is None:
        return None
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{name}: {raw!r} is not host:port")
    return raw


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _str(env, "ECO2_CORS_ORIGINS", None)
    if raw is None:
        return () if _bool(env, "ECO2_PRODUCTION", False) else DEV_ORIGINS
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            raise SettingsError(f"ECO2_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port])")
    return origins


def _admins(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _str(env, "ECO2_ADMINS", None)
    if raw is None:
        return () if _bool(env, "ECO2_PRODUCTION", False) else ("admin",)
    return tuple(dict.fromkeys(a.strip() for a in raw.split(",") if a.strip()))


def _secret(env: Mapping[str, str]) -> str:
    secret = _str(env, "ECO2_SECRET_KEY", None)
    if secret is None:
        if _bool(env, "ECO2_PRODUCTION", False):
            raise SettingsError("ECO2_SECRET_KEY must be set when ECO2_PRODUCTION is on")
        return "dev-secret-change-me"
    if len(secret) < 16:
        raise SettingsError("ECO2_SECRET_KEY must be at least 16 characters")
    return secret


def _feeds(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = _str(env, "ECO2_NEWS_FEEDS", "") or ""
    entries = tuple(entry.strip() for entry in raw.split(";") if entry.strip())
    for entry in entries:
        url = entry.partition("=")[2] if "=" in entry.split("://", 1)[0] else entry
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"ECO2_NEWS_FEEDS entry {entry!r} is not [category=]http(s)://...")
    return entries


def _media_url(env: Mapping[str, str]) -> str | None:
    raw = _str(env, "ECO2_MEDIA_URL", None)
    if raw is None:
        return None
    bucket = raw.removeprefix("s3://").split("/", 1)[0]
    if not raw.startswith("s3://") or not bucket:
        raise SettingsError(f"ECO2_MEDIA_URL={raw!r} must be s3://bucket[/prefix]")
    return raw
