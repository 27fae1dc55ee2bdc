"""The OpenAPI schema at ``/openapi.json``, made to say what the server answers.

FastAPI documents a 422 "Validation Error" on every route with a body, but ``server/errors.py`` turns
validation failures into OpenAI's 400 with ``{"error": {...}}``; and it cannot see that /health answers
an empty body, /metrics plain text and a streamed completion Server-Sent Events. A client generated from
the schema, or a schema-driven fuzzer (tests/test_server_fuzz.py checks every answer against it), should
see the statuses and bodies it will really get.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

# Statuses a route with a body can answer besides 200 (see server/errors.py, limits.py).
_ERRORS_WITH_A_BODY = {
    "400": "Invalid request: a wrong type, a value out of range, or over a server limit",
    "404": "Unknown model",
    "413": "Request body over --max-request-body-bytes",
}
# ... and the /v1 routes, which the API key guards (auth.py) and which queue work for the engine.
_ERRORS_ON_V1 = {
    "401": "Missing or wrong API key (only when the server runs with --api-key)",
    "503": "Overloaded (--max-waiting-requests), shutting down, or the engine failed",
}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def _describe_plain_routes(paths: dict[str, Any]) -> None:
    """Routes whose answers are not JSON: what FastAPI cannot see from their return type."""
    if "/health" in paths:
        paths["/health"]["get"]["responses"] = {
            "200": {"description": "The engine core is running (empty body)"},
            "503": _error_response("Shutting down, or the engine core is not running"),
        }
    if "/metrics" in paths:
        text = {"text/plain": {"schema": {"type": "string"}}}
        paths["/metrics"]["get"]["responses"] = {
            "200": {"description": "Prometheus text format", "content": text}
        }
    for path in ("/v1/completions", "/v1/chat/completions"):
        if path in paths:
            ok = paths[path]["post"]["responses"]["200"]
            ok["description"] = "The whole answer, or Server-Sent Events when `stream` is true"
            # NOTE: no schema: each event is one chunk object as JSON, and the last is `[DONE]`.
            ok.setdefault("content", {})["text/event-stream"] = {}


def install_openapi(app: FastAPI) -> None:
    """Serve a schema whose routes list the OpenAI-shaped errors instead of FastAPI's 422."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            components = document.setdefault("components", {}).setdefault("schemas", {})
            components["ErrorResponse"] = ERROR_SCHEMA
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            for path, path_item in document.get("paths", {}).items():
                for operation in path_item.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is None:
                        continue  # no body to validate: none of these errors
                    errors = {**_ERRORS_WITH_A_BODY, **(_ERRORS_ON_V1 if path.startswith("/v1/") else {})}
                    for status, description in sorted(errors.items()):
                        responses[status] = _error_response(description)
            _describe_plain_routes(document["paths"])
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]
