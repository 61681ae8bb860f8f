"""``/api/v1/locations/…``: drop-off points near the user, text search, suggestions, detail.

Query strings are validated by pydantic models (422 naming the parameter). The read model
lives in ``readmodels.locations``; this module only shapes its answers for the client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import quote

import asyncpg
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.auth import current_user
from gateway.errors import NotFound, NotReady
from gateway.state import gateway_state
from readmodels import locations
from readmodels.locations import MAX_RADIUS_M, MIN_RADIUS_M, Center
from readmodels.locations_categories import (
    STORE_LABELS,
    pwa_pickup_categories,
    pwa_source,
    pwa_store_category,
)

if TYPE_CHECKING:
    from readmodels.db import Pool

DEFAULT_RADIUS_M = 5000
MAX_BIGINT = 2**63 - 1


def read_pool(request: Request) -> Pool:
    """The read-model pool; 503 when this gateway runs without Postgres."""
    pool = gateway_state(request).resources.pg
    if pool is None:
        raise NotReady("read models are not configured (DATABASE_URL)")
    return pool


@contextlib.contextmanager
def database_errors() -> Iterator[None]:
    """Postgres being down or restarting is a 503 for the client, not a 500."""
    try:
        yield
    except (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
            asyncpg.TooManyConnectionsError, OSError) as exc:
        raise NotReady("read models are unavailable") from exc


def radius_for_zoom(zoom: int) -> float:
    """The radius a Kakao map level shows (level 3 ≈ 250 m, each level doubles)."""
    return float(min(MAX_RADIUS_M, max(MIN_RADIUS_M, 125 * 2 ** (zoom - 2))))


class QueryModel(BaseModel):
    """Base of query-string models: strings stripped, no NaN/inf, no NUL."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # Postgres text cannot hold NUL: refuse it here (422) rather than fail in the driver
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


Q = TypeVar("Q", bound=QueryModel)


class CentersQuery(QueryModel):
    lat: float = Field(ge=-90, le=90, validation_alias=AliasChoices("lat", "latitude"))
    lon: float = Field(ge=-180, le=180, validation_alias=AliasChoices("lon", "lng", "longitude"))
    radius: float | None = Field(default=None, ge=MIN_RADIUS_M, le=MAX_RADIUS_M)
    zoom: int | None = Field(default=None, ge=1, le=20)
    store_category: str | None = Field(default=None, max_length=50)
    pickup_category: str | None = Field(default=None, max_length=50)
    limit: int = Field(default=100, ge=1, le=locations.MAX_LIMIT)

    def radius_m(self) -> float:
        if self.radius is not None:
            return self.radius
        return radius_for_zoom(self.zoom) if self.zoom is not None else DEFAULT_RADIUS_M


class OriginQuery(QueryModel):
    lat: float | None = Field(default=None, ge=-90, le=90,
                              validation_alias=AliasChoices("lat", "latitude"))
    lon: float | None = Field(default=None, ge=-180, le=180,
                              validation_alias=AliasChoices("lon", "lng", "longitude"))

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self

    def origin(self) -> tuple[float, float] | None:
        return None if self.lat is None or self.lon is None else (self.lat, self.lon)


class SearchQuery(OriginQuery):
    q: str = Field(min_length=1, max_length=100)
    radius: float | None = Field(default=None, ge=MIN_RADIUS_M, le=MAX_RADIUS_M)
    limit: int = Field(default=15, ge=1, le=50)


class SuggestQuery(QueryModel):
    q: str = Field(min_length=1, max_length=100)
    limit: int = Field(default=10, ge=1, le=20)


def parse_query(request: Request, model: type[Q]) -> Q:
    """The request's query string as ``model``."""
    # A ValidationError propagates: gateway.errors turns it into a 422 naming the parameter.
    return model.model_validate(dict(request.query_params))


def map_link(center: Center) -> str:
    """A Kakao Map link that pins the point (used when the dataset gives no page)."""
    return f"https://map.kakao.com/link/map/{quote(center.name, safe='')},{center.latitude},{center.longitude}"


def center_json(center: Center, now: datetime) -> dict[str, Any]:
    """The client's ``LocationListItem`` (API.md, "Locations and info": the PWA's ``source``,
    ``store_category`` and ``pickup_categories`` keys) plus the detail fields and extras:
    ``dataset`` (our source key), ``store_label`` and ``pickup_labels`` (Korean, for our own
    page)."""
    meters = center.distance_m
    return {
        "id": center.id,
        "name": center.name,
        "source": pwa_source(center.source),
        "road_address": center.road_address or center.lot_address,
        "latitude": center.latitude,
        "longitude": center.longitude,
        "distance_km": None if meters is None else round(meters / 1000, 3),
        "distance_text": center.distance_text,
        "store_category": pwa_store_category(center.store_category),
        "pickup_categories": pwa_pickup_categories(center.pickup_categories),
        "is_open": center.is_open(now),
        "is_holiday": None,  # no dataset lists closing days
        "start_time": center.start_time,
        "end_time": center.end_time,
        "phone": center.phone,
        "place_url": center.place_url or map_link(center),
        "kakao_place_id": None,
        # the detail's fields
        "lot_address": center.lot_address,
        "collection_items": "·".join(center.pickup_categories) or None,
        "introduction": center.detail,
        # extras
        "detail": center.detail,
        "agency": center.agency,
        "dataset": center.source,
        "store_label": STORE_LABELS.get(center.store_category, center.store_category),
        "pickup_labels": list(center.pickup_categories),
        "sample": center.sample,
    }


def place_json(center: Center) -> dict[str, Any]:
    """The client's place object for search and suggest."""
    return {
        "place_name": center.name,
        "address": center.address,
        "latitude": center.latitude,
        "longitude": center.longitude,
        "place_url": center.place_url or map_link(center),
        "id": center.id,
        "store_category": center.store_category,
        "distance_km": None if center.distance_m is None else round(center.distance_m / 1000, 3),
    }


async def list_centers(request: Request) -> JSONResponse:
    """GET /locations/centers: points within the radius, nearest first."""
    await current_user(request)
    query = parse_query(request, CentersQuery)
    pool = read_pool(request)
    with database_errors():
        found = await locations.nearest(
            pool, query.lat, query.lon, query.radius_m(), query.pickup_category, query.limit,
            store_category=query.store_category,
        )
    now = datetime.now(UTC)
    return JSONResponse([center_json(c, now) for c in found])


async def center_detail(request: Request) -> JSONResponse:
    """GET /locations/centers/{center_id}: one point (distance when lat/lon are given)."""
    await current_user(request)
    center_id: int = request.path_params["center_id"]
    origin = parse_query(request, OriginQuery).origin()
    if center_id > MAX_BIGINT:
        raise NotFound("no such center")
    with database_errors():
        found = await locations.get_center(read_pool(request), center_id, origin)
    if found is None:
        raise NotFound("no such center")
    return JSONResponse(center_json(found, datetime.now(UTC)))


async def search_places(request: Request) -> JSONResponse:
    """GET /locations/search: places whose name or address contains the words of ``q``, as
    the same list items as ``/locations/centers``."""
    await current_user(request)
    query = parse_query(request, SearchQuery)
    with database_errors():
        found = await locations.search(
            read_pool(request), query.q, origin=query.origin(), radius_m=query.radius,
            limit=query.limit,
        )
    now = datetime.now(UTC)
    return JSONResponse([center_json(c, now) for c in found])


async def suggest_places(request: Request) -> JSONResponse:
    """GET /locations/suggest: autocomplete for the search box."""
    await current_user(request)
    query = parse_query(request, SuggestQuery)
    with database_errors():
        found = await locations.suggest(read_pool(request), query.q, limit=query.limit)
    return JSONResponse([place_json(c) for c in found])

