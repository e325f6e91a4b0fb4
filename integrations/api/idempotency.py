"""Idempotency-Key on the API's POSTs: a retry with the same key and body gets the first answer again, never a
second effect; the same key with another body is a 422. A key is scoped by its holder (a partner's source or
a lender), the method and the path, as Stripe scopes them: two holders never see each other's answers, and
the same key sent to another URL is another request, performed, never answered with the first URL's reply."""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.problems import IdempotencyMismatch

from .. import services
from ..models import IdempotencyRecord

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255},  # as idempotency_key() enforces
    OpenApiParameter.HEADER,
    required=False,
    description="Any unique string up to 255 characters. A retry with the same key and body to the same URL "
    "gets the first response again (header Idempotent-Replayed: true) for 72 hours; the same key with "
    "another body is a 422. The same key on another URL is another request.",
)


def idempotency_key(request) -> str | None:
    """The request's Idempotency-Key, if it sent one; a 400 when it is empty or too long."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise ValidationError({"Idempotency-Key": ["Use 1 to 255 characters."]})
    return key


def idempotency_replay(
    *, scope: dict[str, str], fingerprint: str, headers: Callable[[dict], dict] | None = None
) -> Response | None:
    """The stored first answer to this request (holder, method, path and key), or None; a 422 when the key
    came with another body."""
    record = services.idempotency_find(**scope)
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
    request,
    perform: Callable[[], Response],
    *,
    headers: Callable[[dict], dict] | None = None,
    lead_id: int | None = None,
) -> Response:
    """Answer with perform() once per Idempotency-Key: its effect and the stored answer commit together, so a
    retry after a lost response replays the answer, and of two concurrent requests with one key the second
    is rolled back and replays the first's. Requests without the header just perform(). Refusals (4xx) are
    not stored: a retry tries again. `headers(body)` rebuilds a replay's headers that are not in the body
    (Location). `lead_id` names the lead an answer is about when it may carry the consumer's contact details
    or a lender's notes: erasing the consumer deletes it."""
    key = idempotency_key(request)
    if key is None:
        return perform()
    scope = {"holder": request.user.holder, "method": request.method, "path": request.path, "key": key}
    fingerprint = services.request_fingerprint(request.data)
    replay = idempotency_replay(scope=scope, fingerprint=fingerprint, headers=headers)
    if replay is not None:
        return replay
    try:
        with transaction.atomic():
            response = perform()
            if response.status_code < 400:
                IdempotencyRecord.objects.create(
                    **scope,
                    request_sha256=fingerprint,
                    response_status=response.status_code,
                    response_body=response.data,
                    lead_id=lead_id,
                )
    except IntegrityError:
        replay = idempotency_replay(scope=scope, fingerprint=fingerprint, headers=headers)
        if replay is None:
            raise
        return replay
    return response
