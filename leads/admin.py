"""Staff admin for leads, consent and guidelines. Leads and consent are evidence: read-only here; their state
changes through services (Release: leads.services). The market adds a lead's sales to this page
(marketplace.admin) and compliance the consumer's page (compliance.admin)."""

import json
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.admin_lists import LargeListMixin, fixed_choices_filter
from core.readonly import ReadOnlyAdminMixin, ReadOnlyInlineMixin

from .choices import LeadStatus
from .geo import US_STATES
from .models import LEAD_JSON_FIELDS, ConsentRecord, CountyLoanLimit, GuidelineSet, Lead, StateHousingCost
from .search import LEAD_SEARCH_HELP, leads_search_q
from .services import guideline_set_save, lead_release


def _cell(value: Any) -> Any:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) or "—"
    return value


def qualification_html(qualification: dict) -> SafeString:
    """The engine's result as two tables: the summary, then one row per product. Everything is escaped."""
    if not qualification:
        return format_html("<p>{}</p>", "Not qualified yet.")
    summary_keys = (
        "qualified",
        "best_product",
        "products",
        "estimate",
        "requested_loan",
        "qualified_loan",
        "fits_request",
        "minimum_loan",
        "ltv",
        "dti",
        "binding_constraint",
        "reasons",
        "notes",
        "guidelines_version",
    )
    gap = qualification.get("gap")
    steps = [g.get("text") for g in gap if isinstance(g, dict)] if isinstance(gap, list) else []
    summary = format_html_join(
        "",
        "<tr><th scope='row'>{}</th><td>{}</td></tr>",
        (
            *((k.replace("_", " "), _cell(qualification.get(k))) for k in summary_keys if k in qualification),
            *((("what would close the gap", _cell(steps)),) if steps else ()),
        ),
    )
    cols = (
        "product",
        "eligible",
        "fits_request",
        "max_loan",
        "loan",
        "rate_term_max",
        "cash_out_max",
        "binding_constraint",
        "obstacle",
        "ltv",
        "dti",
        "front_end_dti",
        "rate",
        "monthly_payment",
        "reasons",
        "notes",
    )
    head = format_html_join("", "<th scope='col'>{}</th>", ((c.replace("_", " "),) for c in cols))
    rows = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((_cell(r.get(c)),) for c in cols)),)
            for r in qualification.get("results", [])
            if isinstance(r, dict)
        ),
    )
    return format_html(
        "<table><tbody>{}</tbody></table><table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>",
        summary,
        head,
        rows,
    )


def distribution_trace_html(trace: list) -> SafeString:
    """Every sale attempt: when, how it sold, and why each matching subscription won, lost or was skipped."""
    if not trace:
        return format_html("<p>{}</p>", "No distribution attempts yet.")
    cols = (
        "subscription",
        "name",
        "lender_name",
        "price",
        "exclusive",
        "median_contact_s",
        "outcome",
        "reason",
    )
    head = format_html_join("", "<th scope='col'>{}</th>", ((c.replace("_", " "),) for c in cols))
    parts = []
    for attempt in trace:
        if not isinstance(attempt, dict):
            continue
        rows = format_html_join(
            "",
            "<tr>{}</tr>",
            (
                (format_html_join("", "<td>{}</td>", ((_cell(row.get(c)),) for c in cols)),)
                for row in attempt.get("considered", [])
                if isinstance(row, dict)
            ),
        )
        parts.append(
            format_html(
                "<table><caption>Attempt {} at {}: {}, revenue ${}{}</caption><thead><tr>{}</tr></thead>"
                "<tbody>{}</tbody></table>",
                _cell(attempt.get("attempt")),
                _cell(attempt.get("at")),
                _cell(attempt.get("mode")),
                _cell(attempt.get("revenue")),
                format_html(" ({})", attempt["note"]) if attempt.get("note") else "",
                head,
                rows or format_html("<tr><td>{}</td></tr>", "No candidates."),
            )
        )
    return format_html_join("", "{}", ((p,) for p in parts))


class ConsentInline(ReadOnlyInlineMixin, admin.StackedInline):
    model = ConsentRecord
    fields = readonly_fields = ("text", "text_sha256", "created_at", "ip_address", "user_agent", "page_url")


StateFilter = fixed_choices_filter(title="state", field="state", choices=[(s, s) for s in US_STATES])


@admin.register(Lead)
class LeadAdmin(LargeListMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "status",
        "purpose",
        "state",
        "estimate",
        "product_list",
        "distribution_attempts",
        "status_reason",
    )
    # "Held for review" among the statuses: leads whose processing raised, waiting for staff to release them.
    # Every filter's choices are fixed (core.admin_lists); the dates replace a date hierarchy.
    list_filter = ("status", "purpose", StateFilter, "credit_range", "created_at")
    # Shown in the search box; the search itself is get_search_results, exact on indexes (leads.search).
    search_fields = ("id", "reference", "consumer e-mail", "phone", "last name")
    search_help_text = LEAD_SEARCH_HELP
    search_q = staticmethod(leads_search_q)
    list_defer = LEAD_JSON_FIELDS
    raw_id_fields = ("consumer",)
    # Declared wide, as ModelAdmin does: the marketplace's LeadAdmin extends both with its own.
    inlines: ClassVar[tuple[type[InlineModelAdmin], ...]] = (ConsentInline,)
    actions: tuple[str, ...] = ("release",)
    fieldsets = (
        (None, {"fields": ("public_id", "consumer", "status", "status_reason", "created_at", "updated_at")}),
        (
            "Property and loan",
            {
                "fields": (
                    "purpose",
                    ("zip_code", "city", "state", "county"),
                    ("property_type", "units", "occupancy"),
                    ("property_value", "purchase_price", "down_payment"),
                    ("mortgage_balance", "cash_out"),
                    "desired_loan_amount",
                    ("credit_range", "credit_score"),
                    ("annual_income", "monthly_debts"),
                    ("military_service", "first_time_buyer"),
                    "timeline",
                )
            },
        ),
        (
            "Qualification",
            {
                "fields": (
                    ("guideline_version", "qualified_at"),
                    ("loan_limit", "loan_limit_source"),
                    ("fha_limit", "fha_limit_source"),
                    ("requested_loan", "estimate", "qualified_loan"),
                    ("ltv", "dti", "binding_constraint"),
                    "qualification_table",
                )
            },
        ),
        (
            "Distribution",
            {
                "fields": (
                    ("distribution_attempts", "retry_until", "sold_at"),
                    "distribution_trace_table",
                )
            },
        ),
    )

    # A lead is the consumer's request and its evidence: staff read it; changes go through services.
    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [f.name for f in Lead._meta.fields] + ["qualification_table", "distribution_trace_table"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # leads arrive through the public form and the API

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="products")
    def product_list(self, obj: Lead) -> str:
        return ", ".join(obj.products or []) or "—"

    @admin.display(description="qualification")
    def qualification_table(self, obj: Lead) -> SafeString:
        return qualification_html(obj.qualification)

    @admin.display(description="distribution trace")
    def distribution_trace_table(self, obj: Lead) -> SafeString:
        return distribution_trace_html(obj.distribution_trace)

    @admin.action(description="Release held leads (once the cause is fixed)", permissions=["change"])
    def release(self, request: HttpRequest, queryset: QuerySet[Lead]) -> None:
        released: dict[str, int] = {}
        refused = []
        for lead_id in queryset.values_list("id", flat=True):
            status = lead_release(lead_id=lead_id)
            if status is None:
                refused.append(lead_id)
            else:
                released[status] = released.get(status, 0) + 1
        for status, count in released.items():
            self.message_user(
                request,
                f"{count} lead(s) released to {LeadStatus(status).label.lower()}; their work is queued.",
                messages.SUCCESS,
            )
        if refused:
            ids = ", ".join(f"#{i}" for i in refused)
            self.message_user(request, f"Not released (only held leads can be): {ids}.", messages.WARNING)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(LargeListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Consent is proof for regulators; nobody may add, change or delete it, staff included."""

    list_display = ("lead", "created_at", "ip_address", "short_hash")
    list_filter = ("created_at",)
    search_fields = ("lead",)
    search_help_text = "The lead: " + LEAD_SEARCH_HELP
    search_q, search_path = staticmethod(leads_search_q), "lead__"
    list_select_related = ("lead",)
    list_defer = tuple(f"lead__{f}" for f in LEAD_JSON_FIELDS)
    fields = readonly_fields = (
        "lead",
        "text",
        "text_sha256",
        "created_at",
        "ip_address",
        "user_agent",
        "page_url",
    )

    @admin.display(description="SHA-256")
    def short_hash(self, obj: ConsentRecord) -> str:
        return obj.text_sha256[:12] + "…"


class PrettyJSONField(forms.JSONField):
    """Rules are edited by people: show them indented, one key a line, instead of one long line."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


class GuidelineSetForm(forms.ModelForm):
    rules = PrettyJSONField(
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "class": "vLargeTextField"})
    )

    class Meta:
        model = GuidelineSet
        fields = ("version", "is_active", "notes", "rules")


@admin.register(GuidelineSet)
class GuidelineSetAdmin(admin.ModelAdmin):
    # Model.clean() reads the rules with the engine's parser, so a set that cannot be used is refused here.
    form = GuidelineSetForm
    list_display = ("version", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("version",)
    readonly_fields = ("created_at",)

    def save_model(self, request: HttpRequest, obj: GuidelineSet, form: Any, change: bool) -> None:
        # Saved active, outreach re-runs the open leads' numbers (leads.signals.guideline_set_activated).
        guideline_set_save(guideline_set=obj)


@admin.register(CountyLoanLimit)
class CountyLoanLimitAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Imported from FHFA's file by `import_loan_limits` (shipped in leads/data/) and HUD's by
    `import_fha_limits`; staff look them up, the imports change them."""

    list_display = (
        "county_name",
        "state",
        "fips",
        "one_unit_limit",
        "fha_one_unit_limit",
        "year",
        "fha_year",
    )
    list_filter = ("state", "year", "fha_year")
    search_fields = ("county_name", "county_key", "=fips", "=state")


@admin.register(StateHousingCost)
class StateHousingCostAdmin(admin.ModelAdmin):
    """The engine's property-tax and insurance rates by state (shipped data; source in leads/data/README.md).
    Staff correct a state here; a state without a row uses the guideline set's national figures."""

    list_display = ("state", "property_tax_rate", "insurance_rate", "average_premium", "source")
    search_fields = ("=state",)
    ordering = ("state",)
