"""The lender API: deliveries (list, detail, status, activity, return) and the account's balance and ledger.

Every read starts from the key's lender (`Delivery.objects.for_lender`); another lender's objects are 404.
"""

from __future__ import annotations

from datetime import UTC

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import pagination, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from billing.models import Account, LedgerEntry
from billing.selectors import ledger_for_account
from compliance.models import ContactAccess
from compliance.services import contact_access_record
from core.clientip import client_ip
from core.problems import Conflict
from leads.choices import LoanPurpose
from marketplace.models import Activity, Delivery, ReturnRequest
from marketplace.returns import return_request_create
from marketplace.services import delivery_next_statuses

from .. import services
from ..auth import IsLender
from .common import (
    ERROR_HEADERS,
    ApiView,
    PositiveAmountField,
    RequiredWhen,
    ok,
    problems,
    replayed_header,
)
from .idempotency import IDEMPOTENCY_HEADER, idempotent
from .intake import QualificationOutput, qualification_data


class Cursor(CursorPagination):
    """DRF's cursor pages, with both query parameters checked: a bad one is a 400 naming it."""

    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = ("-created_at", "-id")

    def decode_cursor(self, request) -> pagination.Cursor | None:
        # DRF checks the cursor's offset and direction but not its position, which reaches the database as a
        # created_at bound: a forged `p=not-a-date` raised there (a 500). It is read back as a time here.
        try:
            cursor = super().decode_cursor(request)
            if cursor is None or cursor.position is None:
                return cursor
            position = parse_datetime(str(cursor.position))
            if position is None:
                raise ValueError(cursor.position)
            if timezone.is_naive(position):
                position = timezone.make_aware(position, UTC)
            # DRF's stubs say int; the position is the ordering field's value as text (a time here).
            return cursor._replace(position=position.astimezone(UTC).isoformat())  # type: ignore[arg-type]
        except (NotFound, ValueError, OverflowError):
            raise ValidationError(
                {"cursor": ["This is not a cursor from `next` or `previous`; start again without one."]}
            ) from None

    def get_page_size(self, request) -> int:
        # DRF ignores a page_size it cannot read (page_size=null, 0, 500) and answers the default page.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError({"page_size": [f"Use a whole number from 1 to {self.max_page_size}."]})
        return int(raw)


CURSOR_PARAMETERS = [
    OpenApiParameter("cursor", str, description="The opaque cursor from `next` or `previous`."),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": Cursor.max_page_size},
        description=f"Items per page, 1 to {Cursor.max_page_size}; default {Cursor.page_size}.",
    ),
]


def page_of(name: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    """The cursor page envelope that Cursor.get_paginated_response returns."""
    return inline_serializer(
        name,
        fields={
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


def _lender_delivery(request, delivery_id: int) -> Delivery:
    delivery = (
        Delivery.objects.for_lender(request.auth.lender_id)
        .select_related("lead", "lead__consumer", "lead__consent", "subscription")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        raise NotFound("No delivery with this id for your lender.")
    return delivery


def _django_errors(exc: DjangoValidationError) -> ValidationError | Conflict:
    """A service's refusal as an API error: field messages are 400s, a refused move of state is a 409."""
    if hasattr(exc, "error_dict"):
        return ValidationError({field: list(messages) for field, messages in exc.message_dict.items()})
    return Conflict(" ".join(exc.messages))


# Output amounts that are never negative say min_value=0, so the schema's pattern has no minus sign
# (integrations.schema.NonNegativeDecimalExtension).
class DeliveryListOutput(serializers.ModelSerializer):
    lead_id = serializers.UUIDField(source="lead.public_id")
    # The short reference the portal, ledger memos and e-mails show for the lead (the start of lead_id).
    lead_reference = serializers.CharField(source="lead.reference")
    purpose = serializers.ChoiceField(choices=LoanPurpose.choices, source="lead.purpose")
    city = serializers.CharField(source="lead.city")
    state = serializers.CharField(source="lead.state")
    zip_code = serializers.CharField(source="lead.zip_code")

    class Meta:
        model = Delivery
        fields = [
            "id",
            "lead_id",
            "lead_reference",
            "created_at",
            "status",
            "status_changed_at",
            "exclusive",
            "price",
            "purpose",
            "city",
            "state",
            "zip_code",
        ]
        extra_kwargs = {"price": {"min_value": 0}}


class ContactOutput(serializers.Serializer):
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()


class ConsentOutput(serializers.Serializer):
    text = serializers.CharField()
    text_sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()
    ip_address = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField(allow_blank=True)
    page_url = serializers.CharField(allow_blank=True)


class LoanOutput(serializers.Serializer):
    purpose = serializers.CharField()
    property_type = serializers.CharField()
    units = serializers.IntegerField()
    occupancy = serializers.CharField()
    property_value = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    purchase_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, allow_null=True)
    down_payment = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, allow_null=True)
    mortgage_balance = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, allow_null=True)
    cash_out = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    desired_loan_amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    credit_range = serializers.CharField(help_text="The consumer's credit range, e.g. 680_699.")
    credit_score = serializers.IntegerField(
        allow_null=True, help_text="The exact score, when the partner that sent the lead gave one."
    )
    annual_income = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    monthly_debts = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    military_service = serializers.BooleanField()
    first_time_buyer = serializers.BooleanField()
    timeline = serializers.CharField()
    zip_code = serializers.CharField()
    city = serializers.CharField()
    state = serializers.CharField()
    county = serializers.CharField()


class DeliveryDetailOutput(DeliveryListOutput):
    contact = ContactOutput(source="lead.consumer")
    loan = LoanOutput(source="lead")
    qualification = serializers.SerializerMethodField()
    consent = ConsentOutput(source="lead.consent", allow_null=True, read_only=True)
    next_statuses = serializers.SerializerMethodField()

    class Meta(DeliveryListOutput.Meta):
        fields = [
            *DeliveryListOutput.Meta.fields,
            "first_contact_at",
            "funded_amount",
            "lost_reason",
            "contact",
            "loan",
            "qualification",
            "consent",
            "next_statuses",
        ]
        extra_kwargs = {"price": {"min_value": 0}, "funded_amount": {"min_value": 0}}

    @extend_schema_field(QualificationOutput(allow_null=True))
    def get_qualification(self, delivery: Delivery) -> dict | None:
        return qualification_data(delivery.lead)

    @extend_schema_field(
        serializers.ListField(child=serializers.ChoiceField(choices=Delivery.Status.choices))
    )
    def get_next_statuses(self, delivery: Delivery) -> list[str]:
        return delivery_next_statuses(delivery)


DELIVERY_ERRORS = problems(401, 403, 404, 429)


class DeliveryListApi(ApiView):
    permission_classes = [IsLender]

    class FilterInput(serializers.Serializer):
        since = serializers.DateTimeField(
            required=False, help_text="Only deliveries created at or after this."
        )
        status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)
        purpose = serializers.ChoiceField(choices=LoanPurpose.choices, required=False)

    @extend_schema(
        operation_id="deliveries_list",
        summary="List your deliveries, newest first",
        tags=["Lender"],
        parameters=[FilterInput, *CURSOR_PARAMETERS, *ERROR_HEADERS],
        responses={
            **ok(200, page_of("DeliveryPage", DeliveryListOutput)),
            **problems(400, 401, 403, 404, 429),
        },
    )
    def get(self, request):
        # A plain dict, not the QueryDict: DRF reads an empty HTML-form value as "not given", so `?status=`
        # listed every delivery; the API's query string is not a form.
        filters = self.FilterInput(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        qs = Delivery.objects.for_lender(request.auth.lender_id).select_related("lead")
        f = filters.validated_data
        if "since" in f:
            qs = qs.filter(created_at__gte=f["since"])
        if f.get("status"):
            qs = qs.filter(status=f["status"])
        if f.get("purpose"):
            qs = qs.filter(lead__purpose=f["purpose"])
        paginator = Cursor()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(DeliveryListOutput(page, many=True).data)


class DeliveryDetailApi(ApiView):
    permission_classes = [IsLender]

    @extend_schema(
        operation_id="deliveries_retrieve",
        summary="A delivery with full contact and qualification",
        tags=["Lender"],
        parameters=ERROR_HEADERS,
        responses={**ok(200, DeliveryDetailOutput), **DELIVERY_ERRORS},
    )
    def get(self, request, delivery_id: int):
        delivery = _lender_delivery(request, delivery_id)
        # Full contact details leave the marketplace here: record who read them (compliance.ContactAccess).
        contact_access_record(
            lead_id=delivery.lead_id,
            channel=ContactAccess.Channel.API,
            lender_id=delivery.lender_id,
            path=request.path,
            ip_address=client_ip(request),
        )
        return Response(DeliveryDetailOutput(delivery).data)


class DeliveryStatusApi(ApiView):
    permission_classes = [IsLender]

    class StatusUpdateInput(RequiredWhen, serializers.Serializer):
        required_when = {"status": {"funded": ("funded_amount",), "lost": ("lost_reason",)}}

        status = serializers.ChoiceField(choices=Delivery.Status.choices)
        funded_amount = PositiveAmountField(
            required=False, help_text="The loan funded, in dollars. Required when the status is funded."
        )
        lost_reason = serializers.CharField(
            max_length=200, required=False, allow_blank=True, help_text="Required when the status is lost."
        )

    @extend_schema(
        operation_id="deliveries_status_update",
        summary="Move a delivery along the pipeline",
        description="Same rules as the portal: new → contacted → application → approved → funded, or "
        "lost from any open status. An illegal move is a 409.",
        tags=["Lender"],
        parameters=[IDEMPOTENCY_HEADER, replayed_header(200), *ERROR_HEADERS],
        request=StatusUpdateInput,
        responses={**ok(200, DeliveryDetailOutput), **problems(400, 401, 403, 404, 409, 413, 415, 422, 429)},
        examples=[
            OpenApiExample(
                "Funded", value={"status": "funded", "funded_amount": "350000.00"}, request_only=True
            )
        ],
    )
    def post(self, request, delivery_id: int):
        delivery = _lender_delivery(request, delivery_id)
        response = idempotent(request, lambda: self._move(request, delivery), lead_id=delivery.lead_id)
        if response.status_code < 400:
            # The answer (first or replayed) shows the full contact details, as a GET does: record the read.
            contact_access_record(
                lead_id=delivery.lead_id,
                channel=ContactAccess.Channel.API,
                lender_id=delivery.lender_id,
                path=request.path,
            )
        return response

    def _move(self, request, delivery: Delivery) -> Response:
        data = self.StatusUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            delivery = services.delivery_set_status_and_notify(delivery=delivery, **data.validated_data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from None
        return Response(DeliveryDetailOutput(delivery).data)


class ActivityApi(ApiView):
    permission_classes = [IsLender]

    class ActivityInput(RequiredWhen, serializers.Serializer):
        required_when = {
            "kind": {"call": ("outcome",), "email": ("outcome",), "text": ("outcome",), "note": ("note",)}
        }

        kind = serializers.ChoiceField(choices=Activity.Kind.choices)
        outcome = serializers.ChoiceField(
            choices=Activity.OFFICER_OUTCOMES,
            required=False,
            allow_blank=True,
            help_text="Required for call, email and text.",
        )
        note = serializers.CharField(
            max_length=2000, required=False, allow_blank=True, help_text="Required for a note."
        )

    class ActivityOutput(serializers.ModelSerializer):
        class Meta:
            model = Activity
            fields = ["id", "kind", "outcome", "note", "created_at"]

    @extend_schema(
        operation_id="deliveries_activities_create",
        summary="Log a call, e-mail, text or note",
        tags=["Lender"],
        parameters=[IDEMPOTENCY_HEADER, replayed_header(201), *ERROR_HEADERS],
        request=ActivityInput,
        responses={**ok(201, ActivityOutput), **problems(400, 401, 403, 404, 413, 415, 422, 429)},
    )
    def post(self, request, delivery_id: int):
        delivery = _lender_delivery(request, delivery_id)
        return idempotent(request, lambda: self._log(request, delivery), lead_id=delivery.lead_id)

    def _log(self, request, delivery: Delivery) -> Response:
        data = self.ActivityInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            activity = services.activity_log_and_notify(delivery=delivery, user=None, **data.validated_data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from None
        return Response(self.ActivityOutput(activity).data, status=status.HTTP_201_CREATED)


class ReturnApi(ApiView):
    permission_classes = [IsLender]

    class ReturnInput(RequiredWhen, serializers.Serializer):
        required_when = {"reason": {"other": ("note",)}}

        reason = serializers.ChoiceField(choices=ReturnRequest.Reason.choices)
        note = serializers.CharField(
            max_length=1000, required=False, allow_blank=True, help_text="Required when the reason is other."
        )

    class ReturnOutput(serializers.ModelSerializer):
        class Meta:
            model = ReturnRequest
            fields = [
                "id",
                "delivery",
                "reason",
                "note",
                "status",
                "created_at",
                "decided_at",
                "decision_note",
            ]

    @extend_schema(
        operation_id="deliveries_return_create",
        summary="Ask for a return (credit) of a bad lead",
        description="Refused with 409 outside the return window, for a second request, or over the "
        "monthly cap. The decision arrives later as the return.decided webhook and an e-mail.",
        tags=["Lender"],
        parameters=[IDEMPOTENCY_HEADER, replayed_header(201), *ERROR_HEADERS],
        request=ReturnInput,
        responses={**ok(201, ReturnOutput), **problems(400, 401, 403, 404, 409, 413, 415, 422, 429)},
    )
    def post(self, request, delivery_id: int):
        delivery = _lender_delivery(request, delivery_id)
        return idempotent(request, lambda: self._ask(request, delivery), lead_id=delivery.lead_id)

    def _ask(self, request, delivery: Delivery) -> Response:
        data = self.ReturnInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            rr = return_request_create(delivery=delivery, user=None, **data.validated_data)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from None
        return Response(self.ReturnOutput(rr).data, status=status.HTTP_201_CREATED)


def _account(request) -> Account:
    account = Account.objects.filter(lender_id=request.auth.lender_id).first()
    if account is None:
        raise NotFound("Your lender has no account yet.")
    return account


class AccountApi(ApiView):
    permission_classes = [IsLender]

    class AccountOutput(serializers.ModelSerializer):
        available = serializers.DecimalField(
            max_digits=13,
            decimal_places=2,
            help_text="Balance plus credit limit: what leads can be bought with.",
        )

        class Meta:
            model = Account
            fields = ["balance", "credit_limit", "available", "low_balance_threshold", "updated_at"]

    @extend_schema(
        operation_id="account_retrieve",
        summary="Your balance",
        tags=["Lender"],
        parameters=ERROR_HEADERS,
        responses={**ok(200, AccountOutput), **problems(401, 403, 404, 429)},
    )
    def get(self, request):
        return Response(self.AccountOutput(_account(request)).data)


class LedgerApi(ApiView):
    permission_classes = [IsLender]

    class LedgerEntryOutput(serializers.ModelSerializer):
        class Meta:
            model = LedgerEntry
            fields = ["id", "created_at", "kind", "amount", "balance_after", "memo"]

    @extend_schema(
        operation_id="account_ledger_list",
        summary="Your ledger, newest first",
        tags=["Lender"],
        parameters=[*CURSOR_PARAMETERS, *ERROR_HEADERS],
        responses={**ok(200, page_of("LedgerPage", LedgerEntryOutput)), **problems(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        paginator = Cursor()
        page = paginator.paginate_queryset(ledger_for_account(account=_account(request)), request, view=self)
        return paginator.get_paginated_response(self.LedgerEntryOutput(page, many=True).data)
