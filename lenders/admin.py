"""Staff admin for lenders, their people and their subscriptions. Status changes and subscription saves go
through lenders.services so the admin applies the same rules (floors, licences, ranges) as the portal."""

import re
from typing import Any
from zoneinfo import available_timezones

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest

from leads.choices import LoanPurpose

from .models import Lender, LenderLicense, Membership, Subscription, SubscriptionState, SubscriptionZip
from .services import SUBSCRIPTION_FIELDS, lender_set_status, subscription_save, subscription_validate
from .signals import lender_time_zone_changed


class LenderLicenseInline(admin.TabularInline):
    model = LenderLicense
    extra = 1


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)
    fields = ("user", "role", "is_active", "created_at")
    readonly_fields = ("created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user")


class LenderAdminForm(forms.ModelForm):
    class Meta:
        model = Lender
        fields = "__all__"  # noqa: DJ007 - the admin's own fields and read-only fields decide what shows

    def clean_time_zone(self) -> str:
        # Sales read the lender's day and schedule in this zone: a mistyped one would make every lead that
        # reaches the lender's subscriptions fail to sell, so it is refused here, beside the field.
        zone = self.cleaned_data["time_zone"].strip()
        if zone not in available_timezones():
            raise ValidationError("Enter a time zone such as America/Chicago (an IANA name).")
        return zone


@admin.register(Lender)
class LenderAdmin(admin.ModelAdmin):
    form = LenderAdminForm
    list_display = ("name", "status", "nmls_id", "states", "balance", "time_zone", "last_served_at")
    list_filter = ("status",)
    search_fields = ("name", "=nmls_id")
    list_select_related = ("account",)
    # Status moves through the Pause/Resume actions (lender_set_status), not by editing the field.
    readonly_fields = ("status", "last_served_at", "created_at")
    inlines = (LenderLicenseInline, MembershipInline)
    actions = ("pause", "resume")

    def save_model(self, request: HttpRequest, obj: Lender, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "time_zone" in form.changed_data:
            # The admin's save is one transaction: what depends on the lender's day is redone inside it.
            lender_time_zone_changed.send(sender=Lender, lender_id=obj.pk)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Lender]:
        # One extra query for every row's licences, instead of one per row.
        return super().get_queryset(request).prefetch_related("licenses")

    @admin.display(description="licensed states")
    def states(self, obj: Lender) -> str:
        return ", ".join(obj.licensed_states) or "—"

    @admin.display(description="balance")
    def balance(self, obj: Lender) -> str:
        account = getattr(obj, "account", None)
        return f"${account.balance:,}" if account is not None else "no account"

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Lender], status: str, verb: str) -> None:
        for lender in queryset:
            lender_set_status(lender=lender, status=status)
        self.message_user(request, f"{verb} {queryset.count()} lender(s).", messages.SUCCESS)

    @admin.action(description="Pause lender (stop selling them leads)", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Lender]) -> None:
        self._set_status(request, queryset, Lender.Status.PAUSED, "Paused")

    @admin.action(description="Resume lender", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Lender]) -> None:
        self._set_status(request, queryset, Lender.Status.ACTIVE, "Resumed")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "lender", "role", "is_active", "created_at")
    list_filter = ("role", "is_active")
    search_fields = ("user__username", "user__email", "lender__name")
    list_select_related = ("user", "lender")
    raw_id_fields = ("user", "lender")
    # A booking link typed without its scheme is an https one (Django 6's default; the portal's form too).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


def _split(text: str) -> list[str]:
    return [t for t in re.split(r"[\s,;]+", text or "") if t]


class SubscriptionAdminForm(forms.ModelForm):
    """States and ZIPs are rows of their own; staff type them, and the form checks the whole order with
    the same subscription_validate the portal uses before anything is saved."""

    purposes = forms.MultipleChoiceField(
        label="Loan purposes", choices=LoanPurpose.choices, widget=forms.CheckboxSelectMultiple
    )
    states = forms.CharField(help_text="Two-letter codes, separated by commas, e.g. TX, CA.")
    zip_codes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional ZIP filter: five-digit ZIPs separated by spaces, commas or lines. "
        "ZIPs within the radius below are added automatically.",
    )

    class Meta:
        model = Subscription
        fields = ("lender", *SUBSCRIPTION_FIELDS)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        sub = self.instance
        if sub.pk:
            self.fields["states"].initial = ", ".join(sub.states)
            self.fields["zip_codes"].initial = "\n".join(
                z.zip_code for z in sub.zip_rows.all() if not z.from_radius
            )

    def clean_states(self) -> list[str]:
        states = sorted({s.upper() for s in _split(self.cleaned_data["states"])})
        bad = [s for s in states if not re.fullmatch(r"[A-Z]{2}", s)]
        if bad:
            raise ValidationError(f"Not a two-letter state code: {', '.join(bad)}.")
        return states

    def clean_zip_codes(self) -> list[str]:
        return _split(self.cleaned_data["zip_codes"])

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what clean() returns; its stubs say Optional, for overrides
        lender = data.get("lender") or (self.instance.lender if self.instance.lender_id else None)
        if lender is None or "states" not in data:
            return data
        try:
            subscription_validate(
                lender=lender,
                data=self.subscription_data(),
                states=data["states"],
                zips=data.get("zip_codes", []),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                # The service names a few rules after groups of checkboxes; those go on top of the form.
                self.add_error(field if field in self.fields else None, errors)
        return data

    def subscription_data(self) -> dict:
        return {f: self.cleaned_data[f] for f in SUBSCRIPTION_FIELDS if f in self.cleaned_data}


class PurposeFilter(admin.SimpleListFilter):
    """Subscriptions taking one loan purpose (the purposes are a JSON list: one choice per LoanPurpose)."""

    title = "loan purpose"
    parameter_name = "purpose"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(LoanPurpose.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() not in LoanPurpose.values:
            return queryset
        # The quoted value inside the list's JSON text: works on SQLite too (no JSON `contains` there), and
        # the quotes keep one value from matching inside another.
        return queryset.filter(purposes__icontains=f'"{self.value()}"')


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionAdminForm
    list_display = (
        "name",
        "lender",
        "is_active",
        "exclusive",
        "price",
        "daily_cap",
        "monthly_cap",
        "monthly_budget",
        "state_list",
        "zip_filter",
    )
    list_filter = (
        "is_active",
        "exclusive",
        "lender__status",
        PurposeFilter,
    )
    search_fields = ("name", "lender__name")
    list_select_related = ("lender",)
    raw_id_fields = ("lender",)
    readonly_fields = ("zip_summary", "usage", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("lender", "name", "is_active", "exclusive", "price")}),
        (
            "Leads wanted",
            {
                "fields": (
                    "purposes",
                    "min_credit_score",
                    ("min_loan_amount", "max_loan_amount"),
                    ("max_ltv", "max_dti"),
                )
            },
        ),
        (
            "Geography",
            {
                "fields": (
                    "states",
                    "zip_codes",
                    ("radius_center_zip", "radius_miles"),
                    "zip_summary",
                )
            },
        ),
        (
            "Caps and schedule",
            {
                "fields": (
                    ("daily_cap", "monthly_cap", "monthly_budget"),
                    "schedule_days",
                    ("schedule_start", "schedule_end"),
                    "usage",
                )
            },
        ),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("state_rows", queryset=SubscriptionState.objects.order_by("state")))
        )

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        # A standing order belongs to one lender for life; its deliveries and spend counters point at it.
        return (*self.readonly_fields, "lender") if obj is not None else self.readonly_fields

    @admin.display(description="states")
    def state_list(self, obj: Subscription) -> str:
        return ", ".join(obj.states)

    @admin.display(description="ZIP filter", boolean=True)
    def zip_filter(self, obj: Subscription) -> bool:
        return obj.has_zip_filter

    @admin.display(description="ZIPs matched")
    def zip_summary(self, obj: Subscription) -> str:
        if obj.pk is None or not obj.has_zip_filter:
            return "Any ZIP in the states above."
        rows = SubscriptionZip.objects.filter(subscription=obj)
        listed = rows.filter(from_radius=False).count()
        radius = rows.filter(from_radius=True).count()
        return f"{listed} listed ZIP(s) and {radius} more within the radius."

    @admin.display(description="this period")
    def usage(self, obj: Subscription) -> str:
        if obj.pk is None:
            return "—"
        return (
            f"{obj.day_count} on {obj.day_key or '—'}; {obj.month_count} and ${obj.month_spend} "
            f"in the month from {obj.month_key or '—'}"
        )

    def save_model(
        self, request: HttpRequest, obj: Subscription, form: SubscriptionAdminForm, change: bool
    ) -> None:
        # The form has already run subscription_validate; subscription_save writes the order and its rows.
        lender = obj.lender
        subscription_save(
            lender=lender,
            data=form.subscription_data(),
            states=form.cleaned_data["states"],
            zips=form.cleaned_data["zip_codes"],
            subscription=obj,
        )
