"""The OpenAPI document served at ``/docs`` (JSON) and a minimal viewer at ``/docs/ui``.

``CATALOGUE`` (``gateway.openapi_catalogue``) describes every operation of the v1 contract
(API.md) and our operations endpoints. The document is built from the app's own routes: an
operation appears exactly when the app serves it, so the document can never promise a route
that is missing, and a served route without a catalogue entry is listed by ``undocumented``
(a contract test fails on it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Route

from gateway.openapi_catalogue import CATALOGUE, COMPONENTS, Schema

TITLE = "Eco² v1 API"
VERSION = "1.0.0"
_PARAM = re.compile(r"\{([^}:]+)(:[^}]+)?\}")


# ---- building the document from the app's routes --------------------------------------------
def template(path_: str) -> str:
    """'/a/{id:int}/b' → '/a/{id}/b' (Starlette convertors dropped)."""
    return _PARAM.sub(lambda m: "{" + m[1] + "}", path_)


def shape(path_: str) -> str:
    """'/a/{id:int}/b' → '/a/{}/b': parameter names do not matter for matching."""
    return _PARAM.sub("{}", path_)


def served(routes: Iterable[BaseRoute], *, hidden: bool = False) -> list[tuple[str, str]]:
    """(method, OpenAPI path) of every HTTP route (HEAD, implied by GET, left out). Routes
    declared ``include_in_schema=False`` (the operators' admin API) are left out unless
    ``hidden``."""
    out = []
    for route in routes:
        if isinstance(route, Route) and (hidden or route.include_in_schema):
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    out.append((method, template(route.path)))
    return out


_BY_SHAPE = {(method, shape(p)): (p, operation) for (method, p), operation in CATALOGUE.items()}


def undocumented(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """Served routes that the catalogue does not describe (the contract test lists them)."""
    return [(m, p) for m, p in served(routes) if (m, shape(p)) not in _BY_SHAPE]


def _renamed(operation: Schema, catalogue_path: str, served_path: str) -> Schema:
    """The operation with its path parameters named as the served route names them."""
    ours = [m[0] for m in _PARAM.findall(catalogue_path)]
    theirs = [m[0] for m in _PARAM.findall(served_path)]
    rename = dict(zip(ours, theirs, strict=True))
    if all(a == b for a, b in rename.items()):
        return operation
    params = [{**p, "name": rename.get(p["name"], p["name"])} if p.get("in") == "path" else p
              for p in operation.get("parameters", [])]
    return {**operation, "parameters": params}


def build_document(routes: Iterable[BaseRoute]) -> Schema:
    """The OpenAPI 3.0 document of exactly the documented operations the routes serve."""
    paths: dict[str, dict[str, Schema]] = {}
    for method, served_path in served(routes):
        found = _BY_SHAPE.get((method, shape(served_path)))
        if found is None:
            continue
        catalogue_path, operation = found
        paths.setdefault(served_path, {})[method.lower()] = _renamed(
            operation, catalogue_path, served_path
        )
    return {
        "openapi": "3.0.3",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "The Eco² PWA's v1 contract (API.md). Errors are "
                                "{\"detail\", \"code\"}; extra fields may appear anywhere."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "s_access"},
            },
        },
    }


async def openapi_json(request: Request) -> JSONResponse:
    """GET /docs: the OpenAPI document of this app."""
    return JSONResponse(build_document(request.app.routes))


VIEWER = Path(__file__).parent / "web" / "static" / "docs.html"


async def openapi_viewer(request: Request) -> HTMLResponse:
    """GET /docs/ui: a dependency-free page listing the operations of ``/docs``."""
    return HTMLResponse(VIEWER.read_text("utf-8"))
