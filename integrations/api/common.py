"""What every API view shares: key authentication, per-key throttling, JSON in and out, problem responses."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from core.problems import PROBLEM_TYPES, TYPE_PATH, problem, problem_type_uri
from core.renderers import PROBLEM_CONTENT_TYPE, ProblemJSONRenderer

from ..auth import ApiKeyAuthentication
from ..throttling import ApiKeyRateThrottle

# No request body of ours nests deeper than 3 (a lead, its consent); this leaves room and stays far from the
# interpreter's recursion limit, which json.loads and json.dumps (the idempotency fingerprint) both hit.
MAX_JSON_DEPTH = 32


# A positive amount of dollars with at most two decimal places, as a string; the schema's pattern is the rule.
POSITIVE_AMOUNT_PATTERN = r"^([1-9][0-9]{0,9}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9]))$"


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": POSITIVE_AMOUNT_PATTERN, "example": "350000.00"}
)
class PositiveAmountField(serializers.DecimalField):
    """Dollars more than zero, sent as a string like "350000.00" (as the API writes amounts). Exactly what the
    schema's pattern says: DRF's DecimalField alone also takes numbers, "1e3", " 5" and "5.", which a client
    reading the schema could not know."""

    default_error_messages = {
        "format": 'Send a positive amount of dollars as a string, like "350000.00" (at most two decimals).'
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=12, decimal_places=2, min_value=Decimal("0.01"), **kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        if not isinstance(data, str) or not re.fullmatch(POSITIVE_AMOUNT_PATTERN, data):
            self.fail("format")
        return super().to_internal_value(data)


# Put first in an input serializer's bases: fields that another field's value makes required, declared once in
# `required_when` for both the validation (here) and the schema (integrations.schema adds a oneOf of the
# cases). {"status": {"funded": ("funded_amount",)}}: with status funded, funded_amount must be given and, for
# text, not blank. (A comment, not a docstring: drf-spectacular would show a docstring as each serializer's.)
class RequiredWhen(serializers.Serializer):
    required_when: ClassVar[dict[str, dict[str, tuple[str, ...]]]] = {}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        errors: dict[str, list[str]] = {}
        for field, cases in self.required_when.items():
            given = attrs.get(field)
            # The cases are keyed by choice values (text); any other value requires nothing more.
            needed = cases.get(given, ()) if isinstance(given, str) else ()
            for name in needed:
                value = attrs.get(name)
                if value is None or (isinstance(value, str) and not value.strip()):
                    errors[name] = [f"Required when {field} is {attrs[field]}."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.URLField(
        help_text=f"A stable URI naming the kind of problem: `{TYPE_PATH}<slug>` on this site, a page that "
        f"explains it. Slugs: {', '.join(f'`{slug}`' for slug in PROBLEM_TYPES)}."
    )
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # `errors` joins here rather than as a declared attribute, which would shadow Serializer.errors (the
        # validation result) as far as any reader or type checker can tell: DRF's metaclass moves declared
        # fields off the class, which the stubs cannot follow.
        fields = super().get_fields()
        fields["errors"] = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            required=False,
            help_text="Each invalid field (dotted for nested fields) with its messages.",
        )
        return fields


PROBLEM_EXAMPLE = OpenApiExample(
    "Validation error",
    value={
        "type": "https://leadmarket.example/api/problems/validation-error",  # SITE_URL + the type's path
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
    413: "The body is over the size limit.",
    415: "The body is not application/json.",
    422: "The Idempotency-Key was already used with a different body.",
    429: "Too many requests for this key; wait the seconds in Retry-After.",
}


# Response headers, documented on each operation (drf-spectacular takes them as response parameters).
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    required=True,
    description="Seconds to wait before this key's next request.",
)
WWW_AUTHENTICATE = OpenApiParameter(
    "WWW-Authenticate",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[401],
    required=True,
    description='The scheme to authenticate with: `Bearer realm="api"`.',
)
ERROR_HEADERS = [RETRY_AFTER, WWW_AUTHENTICATE]


def replayed_header(*codes: int) -> OpenApiParameter:
    """Idempotent-Replayed on a POST's success codes (integrations.api.idempotency sets it on a replay)."""
    return OpenApiParameter(
        "Idempotent-Replayed",
        {"type": "string", "enum": ["true"]},
        OpenApiParameter.HEADER,
        response=list(codes),
        description="`true` when this is the stored answer to an earlier request with the same "
        "Idempotency-Key and body (no second effect); absent on a first answer.",
    )


def problems(*codes: int) -> dict:
    """Problem responses for extend_schema, documented under application/problem+json."""
    return {
        (code, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description=DESCRIPTIONS[code])
        for code in codes
    }


def _depth(value: Any) -> int:
    """How deep lists and objects nest in parsed JSON, walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class ApiJSONParser(JSONParser):
    """DRF's JSON parser, with a 400 for nesting that would exhaust the stack (a body of 100,000 `[` raised
    RecursionError, a 500) or that is deep enough to do so further on."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
        else:
            if _depth(data) <= MAX_JSON_DEPTH:
                return data
        raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep.")


class ApiView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    throttle_classes = [ApiKeyRateThrottle]
    parser_classes = [ApiJSONParser]
    renderer_classes = [JSONRenderer, ProblemJSONRenderer]


@csrf_exempt  # API clients send no CSRF token: without this a POST answered Django's HTML 403, not a 404
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under /api/ (any method, and ids that are not ids) answer in the API's own error
    format. A path that exists with a trailing slash says so: partners try `/api/v1/leads`."""
    detail = "There is no such endpoint or object."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path_info + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not not_found:
            detail = f"There is no such endpoint. Did you mean {request.path}/ (with the trailing slash)?"
    body = problem(404, detail=detail, code="not_found")
    return JsonResponse(body, status=404, content_type=PROBLEM_CONTENT_TYPE)


@csrf_exempt  # so that a POST is answered 405 in the API's format, not with Django's HTML CSRF page
def problem_types(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """The page behind each problem `type` URI: what each kind of problem means and what to do."""
    if request.method not in ("GET", "HEAD"):
        body = problem(405, detail=f'Method "{request.method}" not allowed.', code="method_not_allowed")
        response = JsonResponse(body, status=405, content_type=PROBLEM_CONTENT_TYPE)
        response["Allow"] = "GET, HEAD"
        return response
    if slug is not None and slug not in PROBLEM_TYPES:
        return not_found(request)
    entries = [
        {"slug": s, "uri": problem_type_uri(s), **t._asdict()}
        for s, t in PROBLEM_TYPES.items()
        if slug is None or s == slug
    ]
    return render(request, "integrations/problem_types.html", {"entries": entries, "slug": slug})


def ok(code: int, serializer) -> dict:
    """A success response, documented as application/json only (problem+json is for errors)."""
    return {(code, "application/json"): serializer}
