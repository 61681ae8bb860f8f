"""The AsyncAPI document of the handler workers, served at ``/docs/asyncapi.json`` and, as a
dependency-free page listing its channels, at ``/docs/asyncapi``.

The gateway does not build it (it imports no handler code): the composition root generates it
from the FastStream brokers of the workers and hands it over in ``app.state.asyncapi``, as a
JSON-ready dict or as a function making one (called once, off the event loop, on the first
request: the gateway starts without loading the handlers' code). Without one, both routes
answer 404.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

STATE_ATTR = "asyncapi"


Document = dict[str, Any]
DocumentSource = Document | Callable[[], Document]


async def _document(request: Request) -> Document | None:
    state = request.app.state
    doc = getattr(state, STATE_ATTR, None)
    if callable(doc):
        doc = await asyncio.to_thread(doc)
        setattr(state, STATE_ATTR, doc)
    return doc if isinstance(doc, dict) else None


def _missing() -> JSONResponse:
    return JSONResponse(
        {"code": "NOT_FOUND", "message": "no AsyncAPI document was given to this gateway"},
        status_code=404,
    )


async def asyncapi_json(request: Request) -> Response:
    """GET /docs/asyncapi.json: the workers' AsyncAPI document."""
    doc = await _document(request)
    return JSONResponse(doc) if doc is not None else _missing()


async def asyncapi_page(request: Request) -> Response:
    """GET /docs/asyncapi: its channels and operations as a plain page."""
    doc = await _document(request)
    if doc is None:
        return _missing()
    info = doc.get("info", {})
    rows = []
    for name, channel in sorted(doc.get("channels", {}).items()):
        address = channel.get("address", name)
        about = channel.get("description", "")
        rows.append(f"<tr><td><code>{html.escape(str(address))}</code></td>"
                    f"<td>{html.escape(str(about))}</td></tr>")
    title = html.escape(str(info.get("title", "AsyncAPI")))
    body = (
        f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
        "</head><body>"
        f"<h1>{title} <small>{html.escape(str(info.get('version', '')))}</small></h1>"
        f"<p>{html.escape(str(info.get('description', '')))}</p>"
        "<p>AsyncAPI " + html.escape(str(doc.get("asyncapi", ""))) +
        " · <a href=\"/docs/asyncapi.json\">JSON</a></p>"
        "<table><thead><tr><th>channel</th><th>consumer</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
        "<details><summary>document</summary><pre>"
        + html.escape(json.dumps(doc, indent=2, ensure_ascii=False)) + "</pre></details>"
        "</body></html>"
    )
    return HTMLResponse(body)


# Not part of the PWA's HTTP contract (OpenAPI, /docs): the workers' message contract.
ASYNCAPI_ROUTES = [
    Route("/docs/asyncapi", asyncapi_page, methods=["GET"], include_in_schema=False),
    Route("/docs/asyncapi.json", asyncapi_json, methods=["GET"], include_in_schema=False),
]
