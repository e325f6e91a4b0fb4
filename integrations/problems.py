"""RFC 9457 problem details for every error the API returns (4xx from DRF, and our own conflicts)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .renderers import PROBLEM_CONTENT_TYPE

TYPE_BASE = "https://leadmarket.example/problems/"

TITLES = {
    400: "Invalid request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class IdempotencyMismatch(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used with a different request body."
    default_code = "idempotency_key_reused"


def _messages(value: Any) -> list[str]:
    if isinstance(value, list):
        return [m for item in value for m in _messages(item)]
    if isinstance(value, dict):
        return [f"{k}: {m}" for k, v in value.items() for m in _messages(v)]
    return [str(value)]


def _field_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """{"field": [messages]} with nested fields dotted ("consent.ip_address")."""
    errors: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                errors.update(_field_errors(value, prefix=f"{name}."))
            else:
                errors[name] = _messages(value)
    elif detail:
        errors["non_field_errors"] = _messages(detail)
    return errors


def problem(status_code: int, *, detail: str, code: str, errors: dict[str, list[str]] | None = None) -> dict:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code.replace("_", "-"),
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return body


def problem_response(status_code: int, *, detail: str, code: str, errors=None, headers=None) -> Response:
    response = Response(
        problem(status_code, detail=detail, code=code, errors=errors), status=status_code, headers=headers
    )
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def problem_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: a bug, left to Django's 500 handling and logging
    if isinstance(exc, exceptions.ValidationError):
        detail, code = "The request has errors; see `errors` for each field.", "validation-error"
        errors = _field_errors(exc.detail)
        non_field = errors.get("non_field_errors")
        if non_field and len(errors) == 1:
            detail = " ".join(non_field)
    else:
        detail = str(getattr(exc, "detail", "")) or TITLES.get(response.status_code, "Error")
        code = exc.default_code if isinstance(exc, exceptions.APIException) else "error"
        errors = None
    response.data = problem(response.status_code, detail=detail, code=str(code), errors=errors)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response
