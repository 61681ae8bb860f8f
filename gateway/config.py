"""The values the gateway runs with: plain data that infra fills from its settings.

The gateway reads no environment and knows no other package's configuration: the composition
root (``infra.gateway_app``) builds one ``GatewayConfig`` from ``infra.settings.Settings`` and
the LLM catalogue and hands it down, next to the resources it opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# The JWT/upload secret of old releases and of the docs: public, so never accepted as a key.
DEV_SECRET = "dev-secret-change-me"
WELL_KNOWN_SECRETS = frozenset({DEV_SECRET, "change-me-change-me", "changeme-changeme", "secret" * 3})


@dataclass(frozen=True)
class OAuthClient:
    """The gateway's registration with one identity provider."""

    client_id: str
    client_secret: str | None = None
    base_url: str | None = None  # replaces the provider's hosts (tests, stubs)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway's routes, edge and auth need to know (see ``infra.settings`` for
    what each value means and which variable sets it)."""

    namespace: str
    shards: int
    secret_key: str
    # Where the log and the read models are (the admin rebuild starts a child process on them).
    redis_url: str | None = None
    database_url: str | None = None
    db_schema: str = "public"
    # Addresses and transport
    public_url: str | None = None
    tls: bool = False
    production: bool = False
    # Uploads
    upload_max_bytes: int = 10 * 1024 * 1024
    upload_ttl_s: int = 900
    image_hosts: tuple[str, ...] = ()
    # Model names a request may ask for: full-match patterns of the lower-cased name → provider.
    models: Mapping[str, str] = field(default_factory=dict)
    # Auth
    access_token_ttl_s: int = 3 * 3600
    refresh_token_ttl_s: int = 30 * 86400
    refresh_grace_s: int = 10
    oauth_state_ttl_s: int = 600
    oauth_timeout_s: float = 10.0
    oauth_clients: Mapping[str, OAuthClient] = field(default_factory=dict)
    dev_login: bool = True
    admins: tuple[str, ...] = ()
    # How long a request waits for the outcome of a command it appended (then 503).
    command_wait_s: float = 10.0
    # Edge
    cors_origins: tuple[str, ...] = ()
    rate_limit_window_s: int = 60
    rate_limit_user: int = 120
    rate_limit_ip: int = 600
    max_body_bytes: int = 1024 * 1024
    trust_forwarded: bool = False
    trusted_proxies: tuple[str, ...] = ()
    # Operations: a trace UI's address with ``{trace_id}`` in it (links on /ops), or None
    trace_url: str | None = None
