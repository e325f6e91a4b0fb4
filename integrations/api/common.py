"""What every API view shares: key authentication, per-key throttling, JSON in and out, problem responses."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import relations, serializers
from rest_framework.fields import SkipField
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from ..auth import ApiKeyAuthentication
from ..problems import problem
from ..renderers import PROBLEM_CONTENT_TYPE, ProblemJSONRenderer
from ..throttling import ApiKeyRateThrottle


class PlainOutput:
    """Put first in an output serializer's bases where it runs hot (a webhook batch, a page of deliveries).

    The representation is DRF's own: the same declared fields, in order, with their sources and formats. Only
    the walk is plainer: getattr (or [] on a dict) along each field's source, where DRF's general
    get_attribute checks every step for Mappings and callables; that cost several times the formatting. A
    step the plain walk cannot take (a missing relation, a callable, a None part-way) goes to DRF's
    get_attribute, which answers as it always does (None, a default, SkipField or its error). Related
    fields always go to DRF: their pk-only optimisation saves a query. A test compares both walks."""

    def to_representation(self, instance):
        plan = self.__dict__.get("_plain_plan")
        if plan is None:
            plan = self._plain_plan = [
                (
                    field.field_name,
                    None
                    if isinstance(field, relations.RelatedField | relations.ManyRelatedField)
                    else tuple(field.source_attrs),
                    field,
                )
                for field in self._readable_fields
            ]
        out = {}
        for name, attrs, field in plan:
            try:
                if attrs is None:
                    raise LookupError
                value = instance
                for attr in attrs:
                    value = value[attr] if type(value) is dict else getattr(value, attr)
                    if callable(value):
                        raise LookupError
            except Exception:  # noqa: BLE001 - DRF's walk decides what this means, as it always has
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
                if isinstance(value, relations.PKOnlyObject) and value.pk is None:
                    value = None
            out[name] = None if value is None else field.to_representation(value)
        return out


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
