"""RFC 7807 problem answers of the VTN (C1: Definition.md "Problem"; S1: no internals leak).

Every 4xx/5xx answer carries a ``problem`` object (``application/problem+json``): request
validation errors become 400 with a ``detail`` naming the field path and the rule, unknown
routes 404, unsupported methods 405, anything unexpected 500 with a generic detail (the
exception is logged, never sent).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from drready.openadr.models import problem, to_wire
from drready.openadr.vtn.wirebody import describe_errors

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "ApiError",
    "api_error_response",
    "describe_validation_errors",
    "install_error_handlers",
    "problem_response",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = logging.getLogger("drready.openadr.vtn")


class ApiError(Exception):
    """Raised by the routes: answered as a problem with ``status`` and ``detail``."""

    def __init__(
        self, status: int, detail: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def problem_response(
    status: int, detail: str | None = None, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A problem JSON response (``type: about:blank``, the standard reason phrase as title)."""
    title = HTTPStatus(status).phrase
    return JSONResponse(
        to_wire(problem(status, title, detail)),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def api_error_response(exc: ApiError) -> JSONResponse:
    """The answer to an :class:`ApiError` (what the app's handler sends)."""
    return problem_response(exc.status, exc.detail, headers=exc.headers)


def describe_validation_errors(errors: Sequence[Mapping[str, Any]], *, prefix: str = "") -> str:
    """One line per error: ``<field path>: <rule>``, joined by ``; `` (discriminator errors
    name the wire field, see :func:`drready.openadr.vtn.wirebody.describe_errors`)."""
    if prefix:
        errors = [{**err, "loc": (prefix, *err.get("loc", ()))} for err in errors]
    return describe_errors(errors)


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem handlers on ``app``."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return api_error_response(exc)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | ValidationError)
        errors = exc.errors()
        return problem_response(400, describe_validation_errors(errors))

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        if exc.status_code == 404:
            detail = "Unrecognized URL"
        return problem_response(exc.status_code, detail, headers=exc.headers)

    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        _log.error("unhandled error", exc_info=exc)
        return problem_response(500, "internal server error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
