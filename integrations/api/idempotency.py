"""Idempotency-Key on the API's POSTs: a retry with the same key and body gets the first answer again, never a
second effect; the same key with another body is a 422. Keys belong to the key's holder (a partner's source or
a lender), so two holders never see each other's answers."""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from .. import services
from ..models import IdempotencyRecord
from ..problems import IdempotencyMismatch

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255},  # as idempotency_key() enforces
    OpenApiParameter.HEADER,
    required=False,
    description="Any unique string up to 255 characters. A retry with the same key and body gets the first "
    "response again (header Idempotent-Replayed: true); the same key with another body is a 422.",
)


def idempotency_key(request) -> str | None:
    """The request's Idempotency-Key, if it sent one; a 400 when it is empty or too long."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise ValidationError({"Idempotency-Key": ["Use 1 to 255 characters."]})
    return key


def idempotency_replay(
    *, holder: str, key: str, fingerprint: str, headers: Callable[[dict], dict] | None = None
) -> Response | None:
    """The stored first answer to this holder's key, or None; a 422 when the key came with another body."""
    record = services.idempotency_find(holder=holder, key=key)
    if record is None:
        return None
    if record.request_sha256 != fingerprint:
        raise IdempotencyMismatch()
    return Response(
        record.response_body,
        status=record.response_status,
        headers={"Idempotent-Replayed": "true", **(headers(record.response_body) if headers else {})},
    )


def idempotent(
    request, perform: Callable[[], Response], *, headers: Callable[[dict], dict] | None = None
) -> Response:
    """Answer with perform() once per Idempotency-Key: its effect and the stored answer commit together, so a
    retry after a lost response replays the answer, and of two concurrent requests with one key the second
    is rolled back and replays the first's. Requests without the header just perform(). Refusals (4xx) are
    not stored: a retry tries again. `headers(body)` rebuilds a replay's headers that are not in the body
    (Location)."""
    key = idempotency_key(request)
    if key is None:
        return perform()
    holder = request.user.holder
    fingerprint = services.request_fingerprint(request.data)
    replay = idempotency_replay(holder=holder, key=key, fingerprint=fingerprint, headers=headers)
    if replay is not None:
        return replay
    try:
        with transaction.atomic():
            response = perform()
            if response.status_code < 400:
                IdempotencyRecord.objects.create(
                    holder=holder,
                    key=key,
                    method=request.method,
                    path=request.path,
                    request_sha256=fingerprint,
                    response_status=response.status_code,
                    response_body=response.data,
                )
    except IntegrityError:
        replay = idempotency_replay(holder=holder, key=key, fingerprint=fingerprint, headers=headers)
        if replay is None:
            raise
        return replay
    return response
