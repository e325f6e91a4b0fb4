"""RFC 9457 problem details for every error the API returns (4xx from DRF, and our own conflicts)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .renderers import PROBLEM_CONTENT_TYPE

# Each problem's `type` is SITE_URL + this + its slug: a page the app serves explaining it
# (integrations.api.common.problem_types), so the URI is stable, resolvable and ours (no placeholder domain).
TYPE_PATH = "/api/problems/"
# A throttle that cannot say when the key may retry (its history outgrew a newly lowered limit) still owes
# the client a Retry-After: the longest window our API rates use (integrations.throttling) is a minute.
RETRY_AFTER_FALLBACK = 60


class ProblemType(NamedTuple):
    status: int
    title: str
    description: str


# Every `type` the API answers with, by slug; the problem pages and the schema's description list them.
PROBLEM_TYPES: dict[str, ProblemType] = {
    "validation-error": ProblemType(
        400, "Invalid request", "Fields failed validation; `errors` lists each (dotted for nested fields)."
    ),
    "parse-error": ProblemType(
        400, "Invalid request", "The body is not valid JSON, or is nested too deeply."
    ),
    "bad-request": ProblemType(400, "Invalid request", "The request could not be read."),
    "not-authenticated": ProblemType(401, "Authentication required", "No `Authorization: Bearer` key."),
    "authentication-failed": ProblemType(
        401, "Authentication required", "The key is invalid or revoked, or its partner is suspended."
    ),
    "permission-denied": ProblemType(
        403, "Forbidden", "The key may not do this (a partner key on a lender endpoint, or a read-only key)."
    ),
    "not-found": ProblemType(404, "Not found", "No such endpoint, or no such object for this key's holder."),
    "method-not-allowed": ProblemType(405, "Method not allowed", "The endpoint does not take this method."),
    "not-acceptable": ProblemType(
        406, "Not acceptable", "Ask for application/json or application/problem+json."
    ),
    "conflict": ProblemType(409, "Conflict", "The change is not allowed from the object's current state."),
    "request-too-large": ProblemType(413, "Request too large", "The body is over the size limit."),
    "unsupported-media-type": ProblemType(
        415, "Unsupported media type", "Send the body as application/json."
    ),
    "idempotency-key-reused": ProblemType(
        422, "Unprocessable request", "The Idempotency-Key was already used with a different body."
    ),
    "throttled": ProblemType(
        429, "Too many requests", "Too many requests for this key; wait the seconds in Retry-After."
    ),
    "error": ProblemType(400, "Error", "Any other refusal; `detail` says what went wrong."),
}

TITLES = {
    400: "Invalid request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
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


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def problem_type_uri(code: str) -> str:
    """The stable URI of a problem type; an unlisted code reads as the generic "error" type."""
    slug = code.replace("_", "-")
    return f"{settings.SITE_URL}{TYPE_PATH}{slug if slug in PROBLEM_TYPES else 'error'}"


def problem(status_code: int, *, detail: str, code: str, errors: dict[str, list[str]] | None = None) -> dict:
    body: dict[str, Any] = {
        "type": problem_type_uri(code),
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
    elif isinstance(exc, RequestDataTooBig):
        # Django's own answer to this is an HTML 400; API clients read problem+json.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = RequestTooLarge(f"The request body is over the limit of {limit} bytes." if limit else None)
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError("The request could not be read.", code="bad_request")
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
        code = str(
            getattr(getattr(exc, "detail", None), "code", None) or getattr(exc, "default_code", "error")
        )
        errors = None
    if isinstance(exc, exceptions.Throttled):
        # DRF sets Retry-After only when the throttle reports a wait, and truncates it (0.4 s -> "0").
        wait_s = getattr(exc, "wait", None)  # set by Throttled.__init__; absent from DRF's stubs
        wait = RETRY_AFTER_FALLBACK if wait_s is None else max(1, math.ceil(wait_s))
        response["Retry-After"] = str(wait)
    response.data = problem(response.status_code, detail=detail, code=str(code), errors=errors)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response
