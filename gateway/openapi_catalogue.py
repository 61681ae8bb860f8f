"""What the OpenAPI document of ``/docs`` says of each operation: ``CATALOGUE`` maps
(method, path) to the operation of the v1 contract (API.md) or of our operations endpoints,
``COMPONENTS`` holds the shared schemas, and the small helpers at the top write both.

Schemas name the fields the client relies on; extra fields are allowed everywhere. Which of
these operations the document lists is decided by the app's routes (``gateway.openapi``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Schema = dict[str, Any]

# ---- schema helpers -------------------------------------------------------------------------
STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
ANY_OBJ: Schema = {"type": "object"}


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these properties (``required`` must be present); extras allowed."""
    return {"type": "object", "required": list(required),
            "properties": {**required, **(optional or {})}}


def arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def query(name: str, schema: Schema, *, required: bool = False, example: Any = None) -> Schema:
    param = {"name": name, "in": "query", "required": required, "schema": schema}
    return param if example is None else {**param, "example": example}


def path(name: str, schema: Schema | None = None, *, example: Any = None) -> Schema:
    param = {"name": name, "in": "path", "required": True, "schema": schema or STR}
    return param if example is None else {**param, "example": example}


def json_body(schema: Schema, *, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def ok(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


SSE = {"description": "Server-sent events (named events; see API.md, SSE rules)",
       "content": {"text/event-stream": {"schema": STR}}}
ERROR = {"description": "Error", "content": {"application/json": {"schema": ref("Error")}}}
AUTH: list[Schema] = [{"bearerAuth": []}, {"cookieAuth": []}]


def op(summary: str, responses: dict[str, Schema], *, tag: str, params: Iterable[Schema] = (),
       body: Schema | None = None, auth: bool = True) -> Schema:
    operation: Schema = {"summary": summary, "tags": [tag],
                         "responses": {**responses, "default": ERROR}}
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = body
    operation["security"] = AUTH if auth else []
    return operation


# ---- components ----------------------------------------------------------------------------
COMPONENTS: dict[str, Schema] = {
    "Error": obj({"detail": STR, "code": STR},
                 {"errors": arr(obj({"field": STR, "message": STR}))}),
    "Center": obj({
        "id": INT, "name": STR, "source": {"type": "string", "enum": ["keco", "zerowaste", "kakao"]},
        "road_address": nullable(STR),
        "latitude": NUM, "longitude": NUM, "distance_km": nullable(NUM),
        "distance_text": nullable(STR), "store_category": STR, "pickup_categories": arr(STR),
        "is_open": nullable(BOOL), "is_holiday": nullable(BOOL), "start_time": nullable(STR),
        "end_time": nullable(STR), "phone": nullable(STR), "place_url": nullable(STR),
        "kakao_place_id": nullable(STR),
    }, {"lot_address": nullable(STR), "collection_items": nullable(STR),
        "introduction": nullable(STR), "detail": nullable(STR), "agency": nullable(STR),
        "dataset": STR, "store_label": STR, "pickup_labels": arr(STR), "sample": BOOL,
        "sample_label": nullable(STR)}),
    "Datasets": obj({"note": STR, "datasets": arr(obj(
        {"key": STR, "name": STR, "sample": BOOL, "reference_date": nullable(STR),
         "source": STR}, {"note": STR}))}),
    "Place": obj({"place_name": STR, "address": STR, "latitude": NUM, "longitude": NUM,
                  "place_url": nullable(STR)}, {"id": INT, "distance_km": nullable(NUM)}),
    "Article": obj({
        "id": STR, "title": STR, "url": STR, "snippet": STR,
        "source": {"type": "string", "enum": ["naver", "newsdata"]}, "source_name": STR,
        "published_at": {"type": "string", "format": "date-time"},
        "thumbnail_url": nullable(STR),
        "source_icon_url": nullable(STR), "video_url": nullable(STR),
        "keywords": nullable(arr(STR)), "ai_tag": nullable(STR),
        "category": {"type": "string", "enum": ["environment", "energy", "ai"]},
    }, {"topic": STR, "topic_label": STR, "feed": STR, "sample": BOOL}),
    "NewsPage": obj({"articles": arr(ref("Article")), "next_cursor": nullable(STR),
                     "has_more": BOOL, "meta": ANY_OBJ}),
    "Profile": obj({"username": STR, "nickname": nullable(STR), "display_name": nullable(STR),
                    "phone_number": nullable(STR), "provider": nullable(STR),
                    "last_login_at": nullable(STR)}),
    "OwnedCharacter": obj({"id": STR, "code": STR, "name": STR, "type": STR, "dialog": STR,
                           "acquired_at": nullable(STR)}),
    "CatalogCharacter": obj({"name": STR, "type": STR, "dialog": STR, "match": nullable(STR)}),
    "ScanResult": obj({
        "task_id": STR, "status": {"type": "string", "enum": ["completed", "failed"]},
        "message": nullable(STR), "pipeline_result": nullable(ANY_OBJ),
        "reward": nullable(obj({"name": STR, "dialog": STR, "match_reason": nullable(STR),
                                "type": STR})),
        "error": nullable(ANY_OBJ),
    }),
    "ChatSummary": obj({"id": STR, "title": nullable(STR), "preview": nullable(STR),
                        "message_count": INT, "last_message_at": nullable(STR),
                        "created_at": nullable(STR)}),
    "ChatMessage": obj({"id": STR, "role": {"type": "string", "enum": ["user", "assistant"]},
                        "content": STR, "image_url": nullable(STR), "intent": nullable(STR),
                        "metadata": nullable(ANY_OBJ), "created_at": nullable(STR)}),
}
SUCCESS = obj({"success": BOOL, "data": ANY_OBJ})
ORIGIN_HEADER = {"name": "X-Frontend-Origin", "in": "header", "required": False, "schema": STR}
COORD_LAT = {"type": "number", "minimum": -90, "maximum": 90}
COORD_LON = {"type": "number", "minimum": -180, "maximum": 180}
RADIUS = {"type": "number", "minimum": 100, "maximum": 50000}
LIMIT = {"type": "integer", "minimum": 1}
TEXT_Q = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"\S"}

# ---- the catalogue: (method, path) → operation ----------------------------------------------
_AUTH_PROVIDER = path("provider", {"type": "string", "enum": ["kakao", "google", "naver"]})
CATALOGUE: dict[tuple[str, str], Schema] = {
    # operations
    ("GET", "/health"): op("Liveness", {"200": ok(obj({"status": STR}))}, tag="ops", auth=False),
    ("GET", "/ready"): op("Readiness (Redis, live subscriptions)",
                          {"200": ok(obj({"status": STR}))}, tag="ops", auth=False),
    ("GET", "/metrics"): op("Prometheus metrics", {"200": {
        "description": "text exposition format", "content": {"text/plain": {"schema": STR}}}},
        tag="ops", auth=False),
    ("GET", "/docs"): op("This document", {"200": ok(ANY_OBJ)}, tag="ops", auth=False),
    ("GET", "/docs/ui"): op("A minimal viewer of this document", {"200": {
        "description": "HTML", "content": {"text/html": {"schema": STR}}}},
        tag="ops", auth=False),
    # the signed upload URL (no cookies: the URL is the credential) and stored images
    ("PUT", "/uploads/{key}"): op(
        "Store an image at a signed upload URL (query: expires, ct, sig)",
        {"200": ok(ANY_OBJ)}, tag="images", auth=False, params=[path("key")],
        body={"required": True, "content": {"image/*": {"schema": {
            "type": "string", "format": "binary"}}}}),
    ("GET", "/media/{key}"): op(
        "A stored image (the cdn_url)",
        {"200": {"description": "the image", "content": {"image/*": {"schema": {
            "type": "string", "format": "binary"}}}}},
        tag="images", auth=False, params=[path("key")]),
    # auth
    ("GET", "/api/v1/auth/{provider}"): op(
        "Start a login: the provider's authorization URL and its state",
        {"200": ok(obj({"success": BOOL, "data": obj({
            "provider": STR, "state": STR, "authorization_url": STR, "expires_at": STR})}))},
        tag="auth", auth=False,
        params=[_AUTH_PROVIDER, query("redirect_uri", STR), ORIGIN_HEADER]),
    ("GET", "/api/v1/auth/{provider}/callback"): op(
        "The provider's redirect: sets s_access/s_refresh, 302 to <origin>/#/home",
        {"302": {"description": "to the frontend (#/home, or #/login on failure)"}},
        tag="auth", auth=False,
        params=[_AUTH_PROVIDER, query("code", STR), query("state", STR)]),
    ("GET", "/api/v1/auth/dev/authorize"): op(
        "The built-in dev provider's sign-in page",
        {"200": {"description": "HTML form", "content": {"text/html": {"schema": STR}}}},
        tag="auth", auth=False, params=[query("state", STR)]),
    ("POST", "/api/v1/auth/dev/authorize"): op(
        "Submit the dev sign-in form (303 to the callback)",
        {"303": {"description": "to /auth/{provider}/callback"}}, tag="auth", auth=False,
        body={"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": obj({"state": STR}, {"nickname": STR})}}}),
    ("POST", "/api/v1/auth/refresh"): op(
        "Rotate the tokens (non-2xx when the refresh token is missing or invalid)",
        {"201": ok(SUCCESS)}, tag="auth", auth=False),
    ("POST", "/api/v1/auth/logout"): op(
        "Revoke both tokens and clear the cookies",
        {"200": ok(obj({"success": BOOL, "data": obj({"message": STR})}))},
        tag="auth", auth=False),
    # users and characters
    ("GET", "/api/v1/users/me"): op("The caller's profile", {"200": ok(ref("Profile"))},
                                    tag="users"),
    ("PATCH", "/api/v1/users/me"): op(
        "Change nickname and/or phone number", {"200": ok(ref("Profile"))}, tag="users",
        body=json_body({"type": "object", "properties": {
            "nickname": {"type": "string", "minLength": 1, "maxLength": 120},
            "phone_number": {"type": "string", "minLength": 10, "maxLength": 20}}})),
    ("DELETE", "/api/v1/users/me"): op("Delete the account (anonymised)",
                                       {"204": {"description": "deleted"}}, tag="users"),
    ("GET", "/api/v1/users/me/characters"): op(
        "Characters the caller owns (at least 이코)", {"200": ok(arr(ref("OwnedCharacter")))},
        tag="users"),
    ("GET", "/api/v1/users/me/characters/{character_name}/ownership"): op(
        "Whether the caller owns a character",
        {"200": ok(obj({"character_name": STR, "owned": BOOL}))}, tag="users",
        params=[path("character_name")]),
    ("GET", "/api/v1/character/catalog"): op(
        "The 13 collectible characters", {"200": ok(arr(ref("CatalogCharacter")))},
        tag="users"),
    # images
    ("POST", "/api/v1/images/{channel}"): op(
        "A signed, expiring upload URL for one image",
        {"200": ok(obj({"key": STR, "upload_url": STR, "cdn_url": STR, "expires_in": INT,
                        "required_headers": ANY_OBJ}))},
        tag="images", params=[path("channel", {"type": "string", "enum": ["scan", "chat", "my"]})],
        body=json_body(obj({"filename": {"type": "string", "minLength": 1, "maxLength": 255},
                            "content_type": {"type": "string", "minLength": 1,
                                             "maxLength": 100}}))),
    # scan
    ("POST", "/api/v1/scan"): op(
        "Submit a scan (202 at once)",
        {"202": ok(obj({"job_id": STR, "stream_url": STR, "result_url": STR, "status": STR}))},
        tag="scan",
        params=[{"name": "X-Idempotency-Key", "in": "header", "required": False,
                 "schema": STR}],
        body=json_body(obj({"image_url": {"type": "string", "minLength": 1, "maxLength": 2048}},
                           {"user_input": nullable({"type": "string", "maxLength": 2000}),
                            "model": nullable({"type": "string", "maxLength": 100})}))),
    ("GET", "/api/v1/scan/categories"): op("The top-level categories", {"200": ok(arr(STR))},
                                           tag="scan"),
    ("GET", "/api/v1/scan/{job_id}/events"): op(
        "The scan's progress stream", {"200": SSE}, tag="scan", params=[path("job_id")]),
    ("GET", "/api/v1/scan/{job_id}/result"): op(
        "The scan's result (202 while running)",
        {"200": ok(ref("ScanResult")),
         "202": ok(obj({"status": STR, "current_stage": nullable(STR),
                        "progress": nullable(NUM)}), "still processing")},
        tag="scan", params=[path("job_id")]),
    # chat
    ("GET", "/api/v1/chat"): op(
        "The caller's chats, newest first",
        {"200": ok(obj({"chats": arr(ref("ChatSummary")), "next_cursor": nullable(STR)}))},
        tag="chat", params=[query("limit", {**LIMIT, "maximum": 100}), query("cursor", STR)]),
    ("POST", "/api/v1/chat"): op(
        "Start a chat", {"201": ok(obj({"id": STR, "title": nullable(STR),
                                        "created_at": nullable(STR)}))},
        tag="chat", body=json_body({"type": "object", "properties": {
            "title": nullable({"type": "string", "maxLength": 200})}}, required=False)),
    ("GET", "/api/v1/chat/{chat_id}"): op(
        "A chat's history",
        {"200": ok(obj({"id": STR, "title": nullable(STR), "messages": arr(ref("ChatMessage")),
                        "has_more": BOOL, "next_cursor": nullable(STR),
                        "created_at": nullable(STR)}))},
        tag="chat", params=[path("chat_id"), query("limit", {**LIMIT, "maximum": 200}),
                            query("cursor", STR)]),
    ("PATCH", "/api/v1/chat/{chat_id}"): op(
        "Rename a chat", {"204": {"description": "renamed"}}, tag="chat",
        params=[path("chat_id")],
        body=json_body(obj({"title": {"type": "string", "minLength": 1, "maxLength": 200}}))),
    ("DELETE", "/api/v1/chat/{chat_id}"): op("Delete a chat", {"204": {"description": "gone"}},
                                             tag="chat", params=[path("chat_id")]),
    ("POST", "/api/v1/chat/{chat_id}/messages"): op(
        "Send a message (202; the answer streams)",
        {"202": ok(obj({"job_id": STR, "stream_url": STR, "status": STR}))},
        tag="chat", params=[path("chat_id")],
        body=json_body(obj({"message": {"type": "string", "minLength": 1, "maxLength": 4000}},
                           {"image_url": nullable(STR),
                            "user_location": nullable(obj({"latitude": COORD_LAT,
                                                           "longitude": COORD_LON})),
                            "model": nullable(STR)}))),
    ("POST", "/api/v1/chat/{job_id}/input"): op(
        "Answer a needs_input event", {"200": ok(obj({"status": STR, "job_id": STR}))},
        tag="chat", params=[path("job_id")],
        body=json_body(obj({"type": {"type": "string",
                                     "enum": ["location", "confirmation", "cancel"]}},
                           {"data": {}}))),
    ("GET", "/api/v1/chat/{job_id}/events"): op(
        "A chat turn's stream", {"200": SSE, "204": {"description": "already done"}},
        tag="chat", params=[path("job_id")]),
    # locations and info
    ("GET", "/api/v1/locations/centers"): op(
        "Drop-off points within the radius, nearest first", {"200": ok(arr(ref("Center")))},
        tag="locations", params=[
            query("lat", COORD_LAT, required=True, example=37.5665),
            query("lon", COORD_LON, required=True, example=126.978),
            query("radius", RADIUS, example=3000),
            query("zoom", {"type": "integer", "minimum": 1, "maximum": 20}),
            query("store_category", {"type": "string", "maxLength": 50}),
            query("pickup_category", {"type": "string", "maxLength": 50}),
            query("limit", {**LIMIT, "maximum": 200})]),
    ("GET", "/api/v1/locations/centers/{center_id}"): op(
        "One drop-off point", {"200": ok(ref("Center"))}, tag="locations",
        params=[path("center_id", {"type": "integer", "minimum": 0}, example=1),
                query("lat", COORD_LAT, example=37.5665), query("lon", COORD_LON, example=126.978)]),
    ("GET", "/api/v1/locations/search"): op(
        "Points whose name or address contains the words of q (the centers' list items)",
        {"200": ok(arr(ref("Center")))},
        tag="locations", params=[query("q", TEXT_Q, required=True, example="주민센터"),
                                 query("radius", RADIUS), query("lat", COORD_LAT),
                                 query("lon", COORD_LON), query("limit", {**LIMIT, "maximum": 50})]),
    ("GET", "/api/v1/locations/suggest"): op(
        "Autocomplete for the search box", {"200": ok(arr(ref("Place")))}, tag="locations",
        params=[query("q", TEXT_Q, required=True, example="리필"),
                query("limit", {**LIMIT, "maximum": 20})]),
    ("GET", "/api/v1/info/datasets"): op(
        "Which datasets are real or sample, with reference dates", {"200": ok(ref("Datasets"))},
        tag="info"),
    ("GET", "/api/v1/info/news"): op(
        "News for the info screen, newest first", {"200": ok(ref("NewsPage"))}, tag="info",
        params=[query("category", {"type": "string", "enum": [
                    "all", "recycling", "policy", "climate", "lifestyle"]}),
                query("cursor", {"type": "string", "maxLength": 200}),
                query("limit", {**LIMIT, "maximum": 50})]),
}
