"""``POST /api/v1/scan`` (append the command, answer 202 at once) and the category list."""

from __future__ import annotations

import hashlib
import uuid
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse

import schemas
from gateway.auth import current_user, current_user_reading, verified_claims
from gateway.bodies import parse_body
from gateway.config import GatewayConfig
from gateway.edge import command_metadata
from gateway.errors import InvalidRequest
from gateway.images import public_base
from gateway.job_reads import OWNER_ROLE
from gateway.models import CATALOGUE_KEY, check_model
from gateway.params import idempotency_key
from gateway.state import gateway_state
from media.keys import key_from_url
from media.owners import owner_record
from media.store import MediaStore
from schemas.scan import SCAN_JOB, RequestScan

# uuid5 namespace of job ids derived from (user, idempotency key): a retry gets the same id,
# hence the same shard, where the store finds the first command.
JOB_NAMESPACE = uuid.UUID("0c7f6a0e-52d3-5d1e-9b64-5f3c2a9e8d41")

# Top-level categories of the Korean separate-disposal taxonomy (DOMAIN.md); 미분류 is not one.
MAJOR_CATEGORIES = (
    "재활용폐기물",
    "일반종량제폐기물",
    "불연성종량제폐기물",
    "음식물류폐기물",
    "공사장생활폐기물",
    "대형폐기물",
    "생활계유해폐기물",
)
NOT_UPLOADED = "no image has been uploaded at this URL"


class ScanRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    image_url: str = Field(min_length=1, max_length=2048)
    user_input: str | None = Field(default=None, max_length=2000)
    model: str | None = Field(default=None, max_length=100)

    _known_model = field_validator("model")(check_model)  # 422 naming "model" if unknown


def job_id_for(user_id: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(JOB_NAMESPACE, f"{user_id}\x1f{idempotency_key}"))


def image_key(url: str, base: str, settings: GatewayConfig) -> str | None:
    """The media key of ``url`` when it names one of our images, None when it is on an allowed
    host; ``InvalidRequest`` for any other URL. Nothing is fetched or looked up here."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("image_url", "must be an absolute http(s) URL")
    own = urlsplit(base)
    key = key_from_url(url, settings)
    if key is not None and (parts.scheme, parts.netloc) == (own.scheme, own.netloc):
        return key
    if parts.hostname.lower() in {h.lower() for h in settings.image_hosts}:
        return None
    raise InvalidRequest(
        "image_url", "must be an image uploaded through /api/v1/images or on an allowed host"
    )


async def check_image_url(url: str, base: str, settings: GatewayConfig, media: MediaStore) -> None:
    """``url`` must be one of our uploaded images or on an allowed host; it is never fetched."""
    key = image_key(url, base, settings)
    if key is not None and not await media.exists(key):
        raise InvalidRequest("image_url", NOT_UPLOADED)


async def submit_scan(request: Request) -> JSONResponse:
    gw = gateway_state(request)
    res = gw.resources
    verified_claims(request)  # 401 before the body is read
    try:
        body = await parse_body(request, ScanRequest, context={CATALOGUE_KEY: res.settings.models})
        key = image_key(body.image_url, public_base(request, res.settings), res.settings)
    except Exception:
        await current_user(request)  # a revoked token is told so (403) before any 4xx
        raise
    # The image's owner record is read with the revocation check: one round trip for both.
    owner_keys = [] if key is None else [owner_record(res.settings.namespace, key)]
    user_id, owners = await current_user_reading(request, owner_keys)
    if key is not None and not await res.media.exists_owned(key, owners[0]):
        raise InvalidRequest("image_url", NOT_UPLOADED)
    idem = idempotency_key(request)
    job_id = job_id_for(user_id, idem)
    command = schemas.registry.envelope(
        RequestScan(
            job_id=job_id, user_id=user_id, image_url=body.image_url,
            user_input=body.user_input, model=body.model,
        ),
        aggregate_id=job_id,
        aggregate_type=SCAN_JOB,
        metadata=command_metadata(request, user_id),
    )
    store_key = None
    if idem is not None:
        digest = hashlib.sha256(f"{user_id}\x1f{idem}".encode()).hexdigest()[:40]
        store_key = f"scan:{digest}"
    # The pending owner goes with the command (written before it, in the same round trip), so
    # an SSE stream opened right after the 202 finds its owner (``job_reads``).
    receipt = await res.store.append_command(
        command, idempotency_key=store_key, document=(OWNER_ROLE, user_id)
    )
    job_id = receipt.aggregate_id
    return JSONResponse(
        {
            "job_id": job_id,
            "stream_url": f"/api/v1/scan/{job_id}/events",
            "result_url": f"/api/v1/scan/{job_id}/result",
            "status": "queued",
        },
        status_code=202,
    )


async def scan_categories(request: Request) -> JSONResponse:
    await current_user(request)
    return JSONResponse(list(MAJOR_CATEGORIES))
