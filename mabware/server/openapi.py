"""``GET /openapi.json`` (OpenAPI 3.1, written by hand) and ``GET /docs``.

The document describes every endpoint of ``mabware.server.api`` and
``mabware.server.sync``: request schemas as strict as the server
(``_openapi_schemas``), every problem answer, the bearer security scheme
(when the server has a token) and links that chain the usual flow, so a
tool that follows them (schemathesis' stateful phase) walks it:
``POST /experiments`` -> ``GET /decision`` -> ``POST /reward``.

``/docs`` is the same document as a server-rendered page (``_docs``): each
operation with its parameters and schemas, a plain HTML form for the GET
operations and a curl line for the others. Nothing needs JavaScript.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import mabware
from mabware.server import _docs
from mabware.server._openapi_paths import PROBLEM, WHY, api_paths, json_ok, responses
from mabware.server._openapi_schemas import schemas
from mabware.server.sync import MAX_BODY as MAX_PUSH

__all__ = ["document", "routes"]


_PUSH = {
    "type": "object",
    "description": "merge.replica_to_wire: replica id, sequence number, and the "
    "replica's tallies: per experiment its arms, with one little-endian float64 block "
    "of sums as bytes (format 2)",
    "properties": {
        "replica": {"type": "string", "minLength": 1},
        "seq": {"type": "integer", "minimum": 0},
        # the replica's clock; the server stamps its own on arrival
        "seen": {"type": "number"},
        "tallies": {"type": "array", "items": {"type": "array"}},
    },
    "required": ["replica", "seq", "seen", "tallies"],
}
_STATE = {"description": "The merged state (merge.pack).", "content": {"application/msgpack": {}}}
_PUSHED = {
    "description": "Merged: the merged state (merge.pack), or {seq} for the push token.",
    "content": {"application/msgpack": {}},
}
_ETAG = {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}}


def _service_paths() -> dict[str, Any]:
    """/health, /metrics, /dashboard: for people and monitors, no token (``security: []``)."""

    def page(operation_id: str, summary: str, media_type: str) -> dict[str, Any]:
        ok = {"description": summary, "content": {media_type: {"schema": {"type": "string"}}}}
        return {
            "get": {
                "operationId": operation_id,
                "summary": summary,
                "tags": ["service"],
                "security": [],
                "responses": {"200": ok},
            }
        }

    health = json_ok("Health", 'Always {"status": "ok"} while it serves.')
    return {
        "/health": {
            "get": {
                "operationId": "getHealth",
                "summary": "Is the server up?",
                "tags": ["service"],
                "security": [],
                "responses": health,
            }
        },
        "/metrics": page("getMetrics", "Prometheus metrics", "text/plain"),
        # the dashboard is mounted: /dashboard redirects here
        "/dashboard/": page("getDashboard", "The dashboard (HTML, no JavaScript)", "text/html"),
    }


def _replication_paths() -> dict[str, Any]:
    """``mabware.server.sync``: for mabware processes (``HttpBackend``), the write token."""
    return {
        "/sync": {
            "post": {
                "operationId": "postSync",
                "summary": "Push a replica's totals; get the merged state",
                "tags": ["replication"],
                "requestBody": {
                    "required": True,
                    "content": {"application/msgpack": {"schema": _PUSH}},
                },
                "description": f"At most {MAX_PUSH} bytes of msgpack. With the write token "
                "the answer is the merged state; with the push token (edge clients) it is "
                '{"seq": <the seq pushed>}, and every tally must name an experiment, a '
                "version and arms the registry has (else 422, nothing merged).",
                "responses": responses({"200": _PUSHED}, 400, 401, 409, 413, 415, 422, 503),
            }
        },
        "/snapshot": {
            "get": {
                "operationId": "getSnapshot",
                "summary": "The merged state, with a strong ETag",
                "tags": ["replication"],
                "parameters": [_ETAG],
                "responses": responses(
                    {
                        "200": {**_STATE, "headers": {"ETag": {"schema": {"type": "string"}}}},
                        "304": {"description": "Unchanged since the ETag sent."},
                    },
                    401,
                    503,
                ),
            }
        },
    }


def _edge_paths() -> dict[str, Any]:
    """``mabware.server.edge``: the edge SDK's snapshot, the read or the write token."""
    signed = {
        "description": "The signed snapshot (spec mabware.edge.v1, mabware.edge_snapshot).",
        "content": {"application/msgpack": {}},
        "headers": {"ETag": {"schema": {"type": "string"}}},
    }
    return {
        "/edge/snapshot": {
            "get": {
                "operationId": "getEdgeSnapshot",
                "summary": "The signed snapshot of the published allocations, with an ETag",
                "description": "What the edge SDK decides from, and GET /decision walks: "
                "every experiment's allocation after guardrails, under a rising seq.",
                "tags": ["edge"],
                "parameters": [_ETAG],
                "responses": {
                    "200": signed,
                    "304": {"description": "Unchanged since the ETag sent."},
                    **responses({}, 401, 503),
                    "404": {
                        "description": "This server signs no snapshots (no signing key).",
                        "content": PROBLEM,
                    },
                },
            }
        }
    }


def document(*, secured: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document.

    Args:
        secured: the server has a token: every operation but ``/health``
            needs ``Authorization: Bearer``.
    """
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "mabware server",
            "version": mabware.__version__,
            "description": "Multi-armed bandit experiments over HTTP, compatible with "
            "the MAB E-Commerce Optimizer's API. Every error is an RFC 9457 problem.",
        },
        "paths": {**_service_paths(), **api_paths(), **_replication_paths(), **_edge_paths()},
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The write token changes and reads; the read token "
                    "only reads (GET /experiments, /decision, /snapshot, /edge/snapshot). "
                    "/sync takes the write token, or the push token (push only).",
                }
            },
        },
    }
    if secured:
        doc["security"] = [{"bearer": []}]
        for path in doc["paths"].values():
            for operation in path.values():
                if operation.get("security") != []:
                    operation["responses"].setdefault(
                        "401", {"description": WHY[401], "content": PROBLEM}
                    )
    else:  # nothing to send: an operation that says 401 would be wrong
        for path in doc["paths"].values():
            for operation in path.values():
                operation["responses"].pop("401", None)
    return doc


def routes(*, secured: bool) -> list[Route]:
    """``GET /openapi.json``, ``GET /docs`` and its form target.

    Public unless the server protects "docs": the API's shape is no secret.
    """
    doc = document(secured=secured)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(doc)

    async def docs(request: Request) -> Response:
        return await _docs.page(request, doc)

    async def try_operation(request: Request) -> Response:
        return await _docs.try_operation(request, doc)

    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/try/{operation_id}", try_operation, methods=["GET"]),
    ]
