"""Staff admin for the market: deliveries, price floors, the market settings singleton, returns, and the
lead admin with its sales (the lead's deliveries, the Redistribute action)."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from billing.services import InsufficientFunds
from core.admin_lists import LargeListMixin
from core.readonly import ReadOnlyInlineMixin
from leads import admin as leads_admin
from leads.models import LEAD_JSON_FIELDS, Lead
from leads.search import LEAD_SEARCH_HELP, MAX_ID, leads_search_q
from lenders.models import Membership
from marketplace.models import ReturnRequest

from .models import Delivery, MarketSettings, PriceFloor
from .returns import return_approve, return_deny
from .services import delivery_reassign, lead_redistribute


class DeliveryInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Delivery
    fields = readonly_fields = ("lender", "subscription", "exclusive", "price", "status", "created_at")
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("lender", "subscription", "subscription__lender")


# The lead's page with its sales: the leads app registers the lead's own fields and evidence; the market,
# above it, adds what it sold and the action that sells again.
admin.site.unregister(Lead)


@admin.register(Lead)
class LeadAdmin(leads_admin.LeadAdmin):
    inlines = (*leads_admin.LeadAdmin.inlines, DeliveryInline)
    actions = ("redistribute", *leads_admin.LeadAdmin.actions)

    @admin.action(description="Redistribute (qualified or unsold leads)", permissions=["change"])
    def redistribute(self, request: HttpRequest, queryset: QuerySet[Lead]) -> None:
        queued: list[int] = []
        refused: list[int] = []
        for lead_id in queryset.values_list("id", flat=True):
            (queued if lead_redistribute(lead_id=lead_id) else refused).append(lead_id)
        if queued:
            self.message_user(request, f"{len(queued)} lead(s) queued for distribution.", messages.SUCCESS)
        if refused:
            ids = ", ".join(f"#{i}" for i in refused)
            self.message_user(
                request,
                f"Not queued (only qualified or unsold leads can be redistributed): {ids}.",
                messages.WARNING,
            )


class NotificationSetAsideFilter(admin.SimpleListFilter):
    """Deliveries whose webhooks or e-mail raised on their own: their FailedTask replays them."""

    title = "notification"
    parameter_name = "notification"

    def lookups(self, request, model_admin):
        return (("set_aside", "Set aside (raised)"),)

    def queryset(self, request, queryset):
        if self.value() == "set_aside":
            return queryset.exclude(notify_error="")
        return queryset


def deliveries_search_q(term: str, *, path: str = "") -> Q | None:
    """A delivery by its number, or by its lead (leads.search: id, reference, the consumer's contacts)."""
    term = term.strip()
    if term.startswith("#") and term[1:].isdigit():  # "#42": the delivery itself
        return Q(**{f"{path}pk": int(term[1:])}) if int(term[1:]) <= MAX_ID else None
    return leads_search_q(term, path=f"{path}lead__")


class DeliveryAdminForm(forms.ModelForm):
    class Meta:
        model = Delivery
        fields = ("assigned_to",)

    def clean_assigned_to(self):
        user = self.cleaned_data["assigned_to"]
        if (
            user is not None
            and not Membership.objects.filter(
                user=user, lender_id=self.instance.lender_id, is_active=True
            ).exists()
        ):
            raise ValidationError("Choose an active member of the delivery's lender.")
        return user


@admin.register(Delivery)
class DeliveryAdmin(LargeListMixin, admin.ModelAdmin):
    form = DeliveryAdminForm
    list_display = ("id", "lead", "lender", "price", "exclusive", "status", "assigned_to", "created_at")
    # Fixed choices, and the lenders (a small table) rather than a search across it; dates instead of a
    # date hierarchy (core.admin_lists).
    list_filter = (
        "status",
        "exclusive",
        "created_at",
        "lender",
        "lender__status",
        NotificationSetAsideFilter,
    )
    search_fields = ("#delivery", "lead")
    search_help_text = "#42 for delivery 42; otherwise the lead: " + LEAD_SEARCH_HELP
    search_q = staticmethod(deliveries_search_q)
    list_select_related = ("lead", "lender", "assigned_to")
    list_defer = tuple(f"lead__{f}" for f in LEAD_JSON_FIELDS)
    raw_id_fields = ("lead", "lender", "subscription", "charge", "assigned_to")
    # Sales are made by lead_distribute and pipeline moves by delivery_set_status; staff only reassign.
    readonly_fields = (
        "lead",
        "lender",
        "subscription",
        "exclusive",
        "price",
        "charge",
        "status",
        "status_changed_at",
        "first_contact_at",
        "funded_amount",
        "lost_reason",
        "notified_at",
        "emailed_at",
        "notify_error",
        "created_at",
        "touched_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the charge and the ledger point at it

    def save_model(self, request: HttpRequest, obj: Delivery, form, change: bool) -> None:
        # Staff only reassign, through the service the portal uses (it keeps analytics' rollup right).
        if "assigned_to" in form.changed_data:
            member = (
                Membership.objects.filter(user_id=obj.assigned_to_id).first() if obj.assigned_to_id else None
            )
            delivery_reassign(delivery=obj, membership=member)


@admin.register(PriceFloor)
class PriceFloorAdmin(admin.ModelAdmin):
    list_display = ("purpose", "exclusive", "state", "price")
    list_filter = ("purpose", "exclusive")
    list_editable = ("price",)
    search_fields = ("=state",)


@admin.register(MarketSettings)
class MarketSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "shared_max_buyers", "unsold_retry_hours", "duplicate_window_days")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A single row (MarketSettings.load() uses pk=1): once it exists, staff edit it instead.
        return not MarketSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReturnDecisionForm(forms.ModelForm):
    class Meta:
        model = ReturnRequest
        fields = ("decision_note",)


@admin.register(ReturnRequest)
class ReturnRequestAdmin(LargeListMixin, admin.ModelAdmin):
    """Staff decide returns here: one at a time with the buttons on a return's page, or in bulk with the
    actions. Both call marketplace.returns, which lock the account and post the credit exactly once."""

    form = ReturnDecisionForm
    change_form_template = "admin/marketplace/returnrequest/change_form.html"
    list_display = ("created_at", "lender", "lead", "price", "reason", "status", "decided_by", "decided_at")
    list_filter = ("status", "reason", "created_at", "lender")
    search_fields = ("lead",)
    search_help_text = "The lead: " + LEAD_SEARCH_HELP
    search_q, search_path = staticmethod(leads_search_q), "delivery__lead__"
    list_select_related = ("lender", "delivery", "decided_by")
    actions = ("approve_selected", "deny_selected")
    fields = (
        "lender",
        "delivery",
        "lead",
        "price",
        "delivered_at",
        "reason",
        "note",
        "requested_by",
        "created_at",
        "status",
        "decided_by",
        "decided_at",
        "credit",
        "decision_note",
    )
    readonly_fields = tuple(f for f in fields if f != "decision_note")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # lenders ask from the portal

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        if obj is not None and obj.status != ReturnRequest.Status.REQUESTED:
            return self.fields
        return self.readonly_fields

    @admin.display(description="lead", ordering="delivery__lead_id")
    def lead(self, obj: ReturnRequest) -> str:
        return f"#{obj.delivery.lead_id}"

    @admin.display(description="price")
    def price(self, obj: ReturnRequest) -> Decimal:
        return obj.delivery.price

    @admin.display(description="delivered")
    def delivered_at(self, obj: ReturnRequest):
        return obj.delivery.created_at

    def _decide(self, request: HttpRequest, ids: list[int], decide, verb: str, note: str = "") -> None:
        done, refused = 0, []
        for rr_id in ids:  # each in its own transaction: one refusal does not undo the others
            try:
                decide(return_request_id=rr_id, user=request.user, note=note)
            except (ValidationError, InsufficientFunds) as exc:
                refused.append(f"#{rr_id}: {' '.join(getattr(exc, 'messages', [str(exc)]))}")
            else:
                done += 1
        if done:
            self.message_user(request, f"{verb} {done} return{'s' if done != 1 else ''}.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, f"Not {verb.lower()} {line}", messages.WARNING)

    @admin.action(description="Approve selected returns (credit the lead price)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[ReturnRequest]) -> None:
        self._decide(request, list(queryset.values_list("pk", flat=True)), return_approve, "Approved")

    @admin.action(description="Deny selected returns")
    def deny_selected(self, request: HttpRequest, queryset: QuerySet[ReturnRequest]) -> None:
        self._decide(request, list(queryset.values_list("pk", flat=True)), return_deny, "Denied")

    def response_change(self, request: HttpRequest, obj: ReturnRequest) -> HttpResponse:
        note = request.POST.get("decision_note", "")
        if "_approve" in request.POST:
            self._decide(request, [obj.pk], return_approve, "Approved", note)
            return HttpResponseRedirect(reverse("admin:marketplace_returnrequest_change", args=[obj.pk]))
        if "_deny" in request.POST:
            self._decide(request, [obj.pk], return_deny, "Denied", note)
            return HttpResponseRedirect(reverse("admin:marketplace_returnrequest_change", args=[obj.pk]))
        return super().response_change(request, obj)

    def save_model(self, request: HttpRequest, obj: ReturnRequest, form, change: bool) -> None:
        # The decision (status, credit) is the services' job; a note typed without deciding is kept as is.
        if not ({"_approve", "_deny"} & set(request.POST)):
            ReturnRequest.objects.filter(pk=obj.pk, status=ReturnRequest.Status.REQUESTED).update(
                decision_note=obj.decision_note
            )
