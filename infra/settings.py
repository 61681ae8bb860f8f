"""Typed settings: the only module that reads the environment.

Every value has a documented environment variable. A value that is present but malformed fails
loudly at start-up (``SettingsError``) rather than at first use.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from gateway.config import DEV_SECRET, WELL_KNOWN_SECRETS  # public secrets, never a key
from infra.settings_values import SettingsError as SettingsError
from infra.settings_values import (
    env_bool,
    env_choice,
    env_feeds,
    env_float,
    env_int,
    env_media_url,
    env_networks,
    env_str,
    env_trace_url,
    tracing_requested,
)

SECRET_FILE = "secret_key"  # under ECO2_DATA_DIR: the generated secret of a local run


# Where the PWA runs in development (vite and CRA dev servers); production lists its own.
DEV_ORIGINS = (
    "http://localhost:5173",
    "http://127.0.0.1:5173",
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    # the PWA's own Vite config serves HTTPS (a self-signed-certificate plugin): eco2 up --tls
    "https://localhost:5173",
    "https://127.0.0.1:5173",
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
    worker_nice: int = 5  # ECO2_WORKER_NICE: background workers yield the CPU to the edge
    scan_workers: int = 2  # ECO2_SCAN_WORKERS: scan worker processes ``eco2 up`` runs
    batch_linger_ms: int = 20  # ECO2_BATCH_LINGER_MS: a short batch's wait before the next read
    read_block_ms: int = 1000  # ECO2_READ_BLOCK_MS: a read's wait in Redis (a stop waits it out)
    retry_budget_s: float = 600.0  # ECO2_RETRY_BUDGET_S: RetryLater's, first failure → DLQ
    retry_initial_s: float = 0.25  # ECO2_RETRY_INITIAL_S: first back-off (doubles per retry)
    retry_max_s: float = 60.0  # ECO2_RETRY_MAX_S: longest single back-off
    reward_wait_s: float = 5.0  # ECO2_REWARD_WAIT_S: the job waits before deferring a reward
    command_wait_s: float = 10.0  # ECO2_COMMAND_WAIT_S: a request's wait for its command, then 503
    redis_maxmemory: str | None = None  # ECO2_REDIS_MAXMEMORY, embedded Redis (None: 1gb)

    # Retention: the archive tier in Postgres and Redis's hot window (README "Retention")
    hot_retention_s: float = 7 * 86400  # ECO2_HOT_RETENTION_S: events younger stay in Redis
    hot_max_events: int = 0  # ECO2_HOT_MAX_EVENTS: per shard, the newest kept at most; 0 = off
    idempotency_window_s: float = 86400  # ECO2_IDEMPOTENCY_WINDOW_S: event ids kept for dedupe
    archive_interval_s: float = 5.0  # ECO2_ARCHIVE_INTERVAL_S: pause of an idle archiver

    # Read models
    database_url: str | None = None  # DATABASE_URL; None → embedded Postgres under data_dir
    db_schema: str = "public"  # ECO2_DB_SCHEMA: where read models live (tests use their own)

    # Runtime
    data_dir: Path = field(default_factory=lambda: Path(".eco2"))  # ECO2_DATA_DIR
    host: str = "127.0.0.1"  # ECO2_HOST
    port: int = 8000  # ECO2_PORT
    public_url: str | None = None  # ECO2_PUBLIC_URL: absolute base for upload/cdn URLs
    tls: bool = False  # ECO2_TLS: the gateway serves HTTPS with a local certificate (dev)
    production: bool = False  # ECO2_PRODUCTION: turns the dev login off, cookies Secure
    log_level: str = "info"  # ECO2_LOG_LEVEL

    # Secrets. ECO2_SECRET_KEY signs JWTs and upload URLs. Unset: a random one generated once
    # into <data_dir>/secret_key, and only for a loopback bind outside production. The default
    # here is public (DEV_SECRET): tests only; admin routes refuse tokens it signs.
    secret_key: str = DEV_SECRET

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
    latency_profile: str = "none"  # ECO2_LATENCY: none | production | fast | short

    grpc_port: int = 50051  # ECO2_GRPC_PORT: the character gRPC service
    grpc_timeout_s: float = 2.0  # ECO2_GRPC_TIMEOUT_S
    characters_cache_s: float = 60.0  # ECO2_CHARACTERS_CACHE_S: answers kept (0: none)
    # ECO2_CHARACTERS_ADDR: host:port of the character service (unset: ECO2_HOST:ECO2_GRPC_PORT)
    characters_addr: str | None = None

    # Auth: JWT cookies, OAuth providers, the dev login
    access_token_ttl_s: int = 3 * 3600  # ECO2_ACCESS_TOKEN_TTL_S: lifetime of s_access
    refresh_token_ttl_s: int = 30 * 86400  # ECO2_REFRESH_TOKEN_TTL_S: lifetime of s_refresh
    # ECO2_REFRESH_GRACE_S: a spent refresh token presented again this soon gets the same
    # rotated pair (concurrent refreshes); later, reuse revokes the session. 0 = no grace.
    refresh_grace_s: int = 10
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

    # Edge: CORS, rate limits, body limits, logs
    cors_origins: tuple[str, ...] = DEV_ORIGINS  # ECO2_CORS_ORIGINS: comma list of origins
    rate_limit_window_s: int = 60  # ECO2_RATE_LIMIT_WINDOW_S
    rate_limit_user: int = 120  # ECO2_RATE_LIMIT_USER: commands per window per user; 0 = off
    rate_limit_ip: int = 600  # ECO2_RATE_LIMIT_IP: commands per window per client IP; 0 = off
    max_body_bytes: int = 1024 * 1024  # ECO2_MAX_BODY_BYTES (uploads: upload_max_bytes)
    trust_forwarded: bool = False  # ECO2_TRUST_FORWARDED: honour X-Forwarded-For/-Proto
    # ECO2_TRUSTED_PROXIES: comma list of proxy addresses/CIDRs. With ECO2_TRUST_FORWARDED the
    # client is the right-most X-Forwarded-For entry that is not one of them (empty: the
    # right-most entry, the one our single proxy added); a peer outside the list is the client.
    trusted_proxies: tuple[str, ...] = ()
    log_json: bool = True  # ECO2_LOG_JSON: one JSON object per log line
    # OpenTelemetry's own variables: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT or
    # OTEL_TRACES_EXPORTER=otlp turn tracing on (OTEL_SDK_DISABLED=true / =none keep it off)
    tracing: bool = False
    # ECO2_TRACE_URL: a trace UI's address with "{trace_id}" in it (e.g.
    # http://jaeger:16686/trace/{trace_id}); /ops links failed jobs to their trace. Empty: none.
    trace_url: str | None = None

    # Media on S3 (default: files under data_dir/media)
    media_url: str | None = None  # ECO2_MEDIA_URL: s3://bucket[/prefix] selects the S3 store
    s3_endpoint_url: str | None = None  # AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL
    s3_region: str | None = None  # AWS_REGION or AWS_DEFAULT_REGION
    s3_max_attempts: int = 3  # AWS_MAX_ATTEMPTS: tries of one S3 call (retried with backoff)
    aws_access_key_id: str | None = None  # AWS_ACCESS_KEY_ID (unset: the SDK's own chain)
    aws_secret_access_key: str | None = None  # AWS_SECRET_ACCESS_KEY
    aws_session_token: str | None = None  # AWS_SESSION_TOKEN

    # Operability of every process
    health_port: int = 0  # ECO2_HEALTH_PORT: /healthz, /readyz, /metrics of this process; 0 = off
    drain_grace_s: float = 25.0  # ECO2_DRAIN_GRACE_S: SIGTERM → finish in-flight work within this

    # News collector for the info screen
    news_feeds: tuple[str, ...] = ()  # ECO2_NEWS_FEEDS: ';'-separated "[category=]url" RSS/Atom
    news_timeout_s: float = 10.0  # ECO2_NEWS_TIMEOUT_S per feed request

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, overrides: Mapping[str, str] | None = None
    ) -> Settings:
        """Read every setting from ``env`` (default ``os.environ``) with ``overrides`` (e.g.
        command-line options, checked like the variables they replace), validating each."""
        base = os.environ if env is None else env
        e = {**base, **overrides} if overrides else base
        hosts = env_str(e, "ECO2_IMAGE_HOSTS", "") or ""
        return cls(
            redis_url=env_str(e, "REDIS_URL", None),
            namespace=env_str(e, "ECO2_NAMESPACE", "eco2") or "eco2",
            shards=env_int(e, "ECO2_SHARDS", 4, minimum=1),
            aof_fsync=env_choice(e, "ECO2_AOF_FSYNC", "everysec", {"everysec", "always"}),
            max_deliveries=env_int(e, "ECO2_MAX_DELIVERIES", 5, minimum=1),
            claim_idle_ms=env_int(e, "ECO2_CLAIM_IDLE_MS", 30_000, minimum=1),
            claim_interval_s=env_float(e, "ECO2_CLAIM_INTERVAL_S", 1.0),
            handler_workers=env_int(e, "ECO2_HANDLER_WORKERS", 64, minimum=1),
            worker_nice=env_int(e, "ECO2_WORKER_NICE", 5, minimum=0),
            scan_workers=env_int(e, "ECO2_SCAN_WORKERS", 2, minimum=1),
            batch_linger_ms=env_int(e, "ECO2_BATCH_LINGER_MS", 20, minimum=0),
            read_block_ms=env_int(e, "ECO2_READ_BLOCK_MS", 1000, minimum=1),
            retry_budget_s=env_float(e, "ECO2_RETRY_BUDGET_S", 600.0, minimum=0.0),
            retry_initial_s=env_float(e, "ECO2_RETRY_INITIAL_S", 0.25, minimum=0.001),
            retry_max_s=env_float(e, "ECO2_RETRY_MAX_S", 60.0, minimum=0.001),
            reward_wait_s=env_float(e, "ECO2_REWARD_WAIT_S", 5.0, minimum=0.0),
            command_wait_s=env_float(e, "ECO2_COMMAND_WAIT_S", 10.0, minimum=0.0),
            redis_maxmemory=env_str(e, "ECO2_REDIS_MAXMEMORY", None) or None,
            hot_retention_s=env_float(e, "ECO2_HOT_RETENTION_S", 7 * 86400),
            hot_max_events=env_int(e, "ECO2_HOT_MAX_EVENTS", 0),
            idempotency_window_s=env_float(e, "ECO2_IDEMPOTENCY_WINDOW_S", 86400),
            archive_interval_s=env_float(e, "ECO2_ARCHIVE_INTERVAL_S", 5.0),
            database_url=env_str(e, "DATABASE_URL", None),
            db_schema=env_str(e, "ECO2_DB_SCHEMA", "public") or "public",
            data_dir=Path(env_str(e, "ECO2_DATA_DIR", ".eco2") or ".eco2"),
            host=env_str(e, "ECO2_HOST", "127.0.0.1") or "127.0.0.1",
            port=env_int(e, "ECO2_PORT", 8000, minimum=0),
            public_url=env_str(e, "ECO2_PUBLIC_URL", None),
            tls=env_bool(e, "ECO2_TLS", False),
            production=env_bool(e, "ECO2_PRODUCTION", False),
            log_level=env_str(e, "ECO2_LOG_LEVEL", "info") or "info",
            secret_key=_secret(e, Path(env_str(e, "ECO2_DATA_DIR", ".eco2") or ".eco2")),
            upload_max_bytes=env_int(e, "ECO2_UPLOAD_MAX_BYTES", 10 * 1024 * 1024, minimum=1),
            upload_ttl_s=env_int(e, "ECO2_UPLOAD_TTL_S", 900, minimum=1),
            image_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()),
            default_model=env_str(e, "ECO2_MODEL", "local") or "local",
            openai_api_key=env_str(e, "OPENAI_API_KEY", None),
            openai_base_url=env_str(e, "OPENAI_BASE_URL", None),
            gemini_api_key=env_str(e, "GEMINI_API_KEY", None),
            gemini_base_url=env_str(e, "GOOGLE_GEMINI_BASE_URL", None),
            llm_timeout_s=env_float(e, "ECO2_LLM_TIMEOUT_S", 60.0),
            llm_retries=env_int(e, "ECO2_LLM_RETRIES", 2),
            latency_profile=env_choice(e, "ECO2_LATENCY", "none", {"none", "production", "fast", "short"}),
            grpc_port=env_int(e, "ECO2_GRPC_PORT", 50051),
            grpc_timeout_s=env_float(e, "ECO2_GRPC_TIMEOUT_S", 2.0),
            characters_cache_s=env_float(e, "ECO2_CHARACTERS_CACHE_S", 60.0, minimum=0),
            characters_addr=_address(e, "ECO2_CHARACTERS_ADDR"),
            access_token_ttl_s=env_int(e, "ECO2_ACCESS_TOKEN_TTL_S", 3 * 3600, minimum=1),
            refresh_token_ttl_s=env_int(e, "ECO2_REFRESH_TOKEN_TTL_S", 30 * 86400, minimum=1),
            refresh_grace_s=env_int(e, "ECO2_REFRESH_GRACE_S", 10),
            oauth_state_ttl_s=env_int(e, "ECO2_OAUTH_STATE_TTL_S", 600, minimum=1),
            oauth_timeout_s=env_float(e, "ECO2_OAUTH_TIMEOUT_S", 10.0),
            dev_login=env_bool(e, "ECO2_DEV_LOGIN", not env_bool(e, "ECO2_PRODUCTION", False)),
            admins=_admins(e),
            kakao_client_id=env_str(e, "ECO2_KAKAO_CLIENT_ID", None),
            kakao_client_secret=env_str(e, "ECO2_KAKAO_CLIENT_SECRET", None),
            kakao_base_url=env_str(e, "ECO2_KAKAO_BASE_URL", None),
            google_client_id=env_str(e, "ECO2_GOOGLE_CLIENT_ID", None),
            google_client_secret=env_str(e, "ECO2_GOOGLE_CLIENT_SECRET", None),
            google_base_url=env_str(e, "ECO2_GOOGLE_BASE_URL", None),
            naver_client_id=env_str(e, "ECO2_NAVER_CLIENT_ID", None),
            naver_client_secret=env_str(e, "ECO2_NAVER_CLIENT_SECRET", None),
            naver_base_url=env_str(e, "ECO2_NAVER_BASE_URL", None),
            cors_origins=_origins(e),
            rate_limit_window_s=env_int(e, "ECO2_RATE_LIMIT_WINDOW_S", 60, minimum=1),
            rate_limit_user=env_int(e, "ECO2_RATE_LIMIT_USER", 120),
            rate_limit_ip=env_int(e, "ECO2_RATE_LIMIT_IP", 600),
            max_body_bytes=env_int(e, "ECO2_MAX_BODY_BYTES", 1024 * 1024, minimum=1),
            trust_forwarded=env_bool(e, "ECO2_TRUST_FORWARDED", False),
            trusted_proxies=env_networks(e, "ECO2_TRUSTED_PROXIES"),
            log_json=env_bool(e, "ECO2_LOG_JSON", True),
            tracing=tracing_requested(e),
            trace_url=env_trace_url(e),
            news_feeds=env_feeds(e),
            news_timeout_s=env_float(e, "ECO2_NEWS_TIMEOUT_S", 10.0),
            media_url=env_media_url(e),
            s3_endpoint_url=env_str(e, "AWS_ENDPOINT_URL_S3", None) or env_str(e, "AWS_ENDPOINT_URL", None),
            s3_region=env_str(e, "AWS_REGION", None) or env_str(e, "AWS_DEFAULT_REGION", None),
            s3_max_attempts=env_int(e, "AWS_MAX_ATTEMPTS", 3, minimum=1),
            aws_access_key_id=env_str(e, "AWS_ACCESS_KEY_ID", None),
            aws_secret_access_key=env_str(e, "AWS_SECRET_ACCESS_KEY", None),
            aws_session_token=env_str(e, "AWS_SESSION_TOKEN", None),
            health_port=env_int(e, "ECO2_HEALTH_PORT", 0),
            drain_grace_s=env_float(e, "ECO2_DRAIN_GRACE_S", 25.0),
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
    raw = env_str(env, name, None)
    if raw is None:
        return None
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{name}: {raw!r} is not host:port")
    return raw


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env_str(env, "ECO2_CORS_ORIGINS", None)
    if raw is None:
        return () if env_bool(env, "ECO2_PRODUCTION", False) else DEV_ORIGINS
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            raise SettingsError(f"ECO2_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port])")
    return origins


def _admins(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env_str(env, "ECO2_ADMINS", None)
    if raw is None:
        # "admin" is a name anyone can claim at the dev sign-in: only for a loopback bind.
        local = not env_bool(env, "ECO2_PRODUCTION", False) and is_loopback(_host(env))
        return ("admin",) if local else ()
    return tuple(dict.fromkeys(a.strip() for a in raw.split(",") if a.strip()))


def _host(env: Mapping[str, str]) -> str:
    return env_str(env, "ECO2_HOST", "127.0.0.1") or "127.0.0.1"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name or 0.0.0.0-like wildcard: reachable from elsewhere


def _secret(env: Mapping[str, str], data_dir: Path) -> str:
    secret = env_str(env, "ECO2_SECRET_KEY", None)
    if secret is None:
        if env_bool(env, "ECO2_PRODUCTION", False):
            raise SettingsError("ECO2_SECRET_KEY must be set when ECO2_PRODUCTION is on")
        host = _host(env)
        if not is_loopback(host):
            raise SettingsError(
                f"ECO2_HOST={host} is reachable from other machines: set ECO2_SECRET_KEY to a "
                "random value of 32+ characters (e.g. `openssl rand -hex 32`)"
            )
        return local_secret(data_dir)
    if len(secret) < 16:
        raise SettingsError("ECO2_SECRET_KEY must be at least 16 characters")
    if secret in WELL_KNOWN_SECRETS:
        raise SettingsError("ECO2_SECRET_KEY is a well-known value: use a random one")
    return secret


def local_secret(data_dir: Path) -> str:
    """The secret of a local run: ``<data_dir>/secret_key``, created (random, mode 0600) by
    the first process that needs it. Every process of one data dir reads the same value."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        staged = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(staged, path)  # atomic, and never replaces a secret another process made
        except FileExistsError:
            pass
        finally:
            staged.unlink()
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise SettingsError(f"{path} holds no usable secret: delete it to generate a new one")
    return secret
