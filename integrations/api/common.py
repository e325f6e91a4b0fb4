"""What every API view shares: key authentication, per-key throttling, JSON in and out, problem responses."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from ..auth import ApiKeyAuthentication
from ..problems import problem
from ..renderers import PROBLEM_CONTENT_TYPE, ProblemJSONRenderer
from ..throttling import ApiKeyRateThrottle


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Each invalid field (dotted for nested fields) with its messages.",
    )


PROBLEM_EXAMPLE = OpenApiExample(
    "Validation error",
    value={
        "type": "https://leadmarket.example/problems/validation-error",
        "title": "Invalid request",
        "status": 400,
        "detail": "The request has errors; see `errors` for each field.",
        "errors": {"zip_code": ["Enter a 5-digit ZIP code, like 78701."]},
    },
    status_codes=["400"],
    media_type=PROBLEM_CONTENT_TYPE,
    response_only=True,
)

DESCRIPTIONS = {
    400: "Invalid request: a malformed body, or fields that failed validation (listed in `errors`).",
    401: "No key, or a key that is invalid or revoked.",
    403: "The key may not do this (a partner key on a lender endpoint, or a read-only key writing).",
    404: "No such object for this key's holder.",
    409: "The change is not allowed from the object's current state.",
    415: "The body is not application/json.",
    422: "The Idempotency-Key was already used with a different body.",
    429: "Too many requests for this key; wait the seconds in Retry-After.",
}


def problems(*codes: int) -> dict:
    """Problem responses for extend_schema, documented under application/problem+json."""
    return {
        (code, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description=DESCRIPTIONS[code])
        for code in codes
    }


class ApiView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    throttle_classes = [ApiKeyRateThrottle]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer, ProblemJSONRenderer]


def not_found(request, *args, **kwargs):
    """Unknown /api/v1/ paths (and ids that are not ids) answer in the API's own error format."""
    from django.http import JsonResponse

    body = problem(404, detail="There is no such endpoint or object.", code="not_found")
    return JsonResponse(body, status=404, content_type=PROBLEM_CONTENT_TYPE)


def ok(code: int, serializer) -> dict:
    """A success response, documented as application/json only (problem+json is for errors)."""
    return {(code, "application/json"): serializer}
