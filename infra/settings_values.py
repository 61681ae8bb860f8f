"""Typed readers of the environment for ``infra.settings`` (which alone reads it and passes its
mapping here): of one value of a given type each (``env_int``, ``env_bool``, …), and of the
values with a format of their own (address lists, feeds, media and trace URLs, whether
OpenTelemetry's variables ask for traces). A present but malformed value raises
``SettingsError`` naming the variable."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
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


def env_float(
    env: Mapping[str, str], name: str, default: float, *, minimum: float | None = None
) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a number") from exc
    if minimum is not None and not value >= minimum:  # also refuses nan
        raise SettingsError(f"{name}={value} must be >= {minimum}")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean")


def env_str(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = env.get(name)
    return default if raw is None or raw == "" else raw


def env_choice(env: Mapping[str, str], name: str, default: str, allowed: set[str]) -> str:
    value = env_str(env, name, default) or default
    if value not in allowed:
        raise SettingsError(f"{name}={value!r} must be one of {sorted(allowed)}")
    return value


def env_networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env_str(env, name, "") or ""
    found = tuple(n.strip() for n in raw.split(",") if n.strip())
    for net in found:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise SettingsError(f"{name}: {net!r} is not an address or CIDR") from exc
    return found


def env_feeds(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env_str(env, "ECO2_NEWS_FEEDS", "") or ""
    entries = tuple(entry.strip() for entry in raw.split(";") if entry.strip())
    for entry in entries:
        url = entry.partition("=")[2] if "=" in entry.split("://", 1)[0] else entry
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"ECO2_NEWS_FEEDS entry {entry!r} is not [category=]http(s)://...")
    return entries


def env_media_url(env: Mapping[str, str]) -> str | None:
    raw = env_str(env, "ECO2_MEDIA_URL", None)
    if raw is None:
        return None
    bucket = raw.removeprefix("s3://").split("/", 1)[0]
    if not raw.startswith("s3://") or not bucket:
        raise SettingsError(f"ECO2_MEDIA_URL={raw!r} must be s3://bucket[/prefix]")
    return raw


def env_trace_url(env: Mapping[str, str]) -> str | None:
    raw = env_str(env, "ECO2_TRACE_URL", None)
    if raw is not None and "{trace_id}" not in raw:
        raise SettingsError(f"ECO2_TRACE_URL={raw!r} must contain {{trace_id}}")
    return raw


def tracing_requested(env: Mapping[str, str]) -> bool:
    """Whether the standard OpenTelemetry variables ask for traces to be exported."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter == "otlp"
    return any(env.get(name) for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
