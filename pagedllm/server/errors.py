"""Errors the OpenAI way: ``{"error": {"message", "type", "param", "code"}}`` with the right status.

Every user mistake maps to a 4xx here (bad JSON, a wrong type, a value out of range, an unknown model
or route, a bad key); only a fault of the server itself is a 500.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pagedllm.engine.async_engine import EngineDeadError, QueueFullError, ServerShuttingDownError

logger = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    503: "service_unavailable_error",
}


class APIError(Exception):
    """Raised by a handler to answer with an OpenAI-shaped error."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }


def error_response(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status)


def bad_request(e: Exception, param: str | None = None) -> APIError:
    return APIError(HTTPStatus.BAD_REQUEST, str(e), param=param)


def from_engine_error(e: Exception) -> APIError:
    """The API error for an exception raised by ``AsyncEngine.add_request`` or a stream."""
    if isinstance(e, QueueFullError):
        return APIError(HTTPStatus.SERVICE_UNAVAILABLE, str(e), code="queue_full")
    if isinstance(e, (ValueError, TypeError)):
        return bad_request(e)
    if isinstance(e, ServerShuttingDownError):
        return APIError(HTTPStatus.SERVICE_UNAVAILABLE, str(e), code="server_shutting_down")
    if isinstance(e, EngineDeadError):
        return APIError(HTTPStatus.INTERNAL_SERVER_ERROR, str(e), code="engine_dead")
    return APIError(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(e).__name__}: {e}")


_UNION_BRANCH = {"str", "int", "float", "bool", "list", "dict"}


def _describe_validation(exc: RequestValidationError) -> tuple[str, str | None]:
    messages: list[str] = []
    union_fields: dict[str, list[str]] = {}  # field -> the types it accepts (one error per union branch)
    first_param: str | None = None
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            detail = err.get("ctx", {}).get("error", "")
            return f"the request body is not valid JSON: {detail}".rstrip(": "), None
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        first_param = first_param or (loc[0] if loc else None)
        if len(loc) >= 2 and loc[1].split("[")[0] in _UNION_BRANCH:
            branches = union_fields.setdefault(loc[0], [])
            if not branches:
                messages.append(f"{loc[0]}: got {err.get('input')!r:.80}, which is none of ")
            branches.append(loc[1])
            continue
        where = ".".join(loc) or "body"
        shown = "" if err.get("type") == "missing" else f" (got {err.get('input')!r:.80})"
        messages.append(f"{where}: {err.get('msg', 'invalid')}{shown}")
    for field, branches in union_fields.items():
        start = f"{field}: got "
        messages = [m + ", ".join(dict.fromkeys(branches)) if m.startswith(start) else m for m in messages]
    return "; ".join(messages) or "invalid request", first_param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _describe_validation(exc)
        return error_response(HTTPStatus.BAD_REQUEST, message, param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == HTTPStatus.NOT_FOUND:
            message = f"no route {request.method} {request.url.path}"
        return error_response(exc.status_code, message)

    @app.exception_handler(Exception)
    async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}")
