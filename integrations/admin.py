"""Staff tools: partners and their keys (a new key is shown once in a message), webhook endpoints and logs."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.admin_lists import LargeListMixin
from core.readonly import ReadOnlyAdminMixin, ReadOnlyInlineMixin
from leads.models import LEAD_JSON_FIELDS
from leads.search import LEAD_SEARCH_HELP, leads_search_q

from . import services
from .models import (
    ApiKey,
    Enrolment,
    LeadIntake,
    LeadSource,
    MessageTemplate,
    Sequence,
    SequenceStep,
    StepRun,
    TextMessage,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from .outreach import services as outreach


@admin.register(LeadSource)
class LeadSourceAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "is_active", "paused_at", "payout_model", "payout_amount", "created_at"]
    search_fields = ["name"]
    list_filter = ["is_active", "kind", "payout_model"]
    readonly_fields = ["paused_at"]
    actions = ["make_key", "pause", "resume"]

    @admin.action(description="Pause (refuse new leads)")
    def pause(self, request, queryset):
        for source in queryset:
            services.lead_source_set_paused(source=source, paused=True)

    @admin.action(description="Resume")
    def resume(self, request, queryset):
        for source in queryset:
            services.lead_source_set_paused(source=source, paused=False)

    @admin.action(description="Make an API key (shown once)")
    def make_key(self, request, queryset):
        for source in queryset:
            new = services.api_key_create(
                source=source, name="Partner intake", scope="write", user=request.user
            )
            self.message_user(
                request, f"{source.name}: {new.key}  (copy it now; it is not shown again)", messages.WARNING
            )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "source", "lender", "scope", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["source", "lender"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "source__name", "lender__name"]
    raw_id_fields = ["lender", "source", "created_by"]
    readonly_fields = ["prefix", "key_sha256", "last_used_at", "created_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # keys are made by the LeadSource action or in the portal, so the key is shown once

    @admin.action(description="Revoke")
    def revoke(self, request, queryset):
        for key in queryset:
            services.api_key_revoke(api_key=key)


@admin.register(LeadIntake)
class LeadIntakeAdmin(LargeListMixin, admin.ModelAdmin):
    list_display = ["lead", "source", "consent_given_at", "created_at"]
    list_select_related = ["lead", "source"]
    list_defer = [f"lead__{f}" for f in LEAD_JSON_FIELDS]
    raw_id_fields = ["lead", "api_key"]
    list_filter = ["source", "created_at"]
    search_fields = ["lead"]
    search_help_text = "The lead: " + LEAD_SEARCH_HELP
    search_q, search_path = staticmethod(leads_search_q), "lead__"


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["attempted_at", "status_code", "latency_ms", "error", "response_excerpt", "succeeded"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "lender", "is_active", "failure_count", "disabled_at"]
    list_select_related = ["lender"]
    list_filter = ["is_active"]
    search_fields = ["url", "lender__name"]
    raw_id_fields = ["lender"]
    exclude = ["secret", "previous_secret"]


@admin.register(WebhookMessage)
class WebhookMessageAdmin(LargeListMixin, admin.ModelAdmin):
    list_display = [
        "event_id",
        "event_type",
        "endpoint",
        "status",
        "attempt_count",
        "next_attempt_at",
        "created_at",
    ]
    list_select_related = ["endpoint"]
    # The payload (the lead's details) is on the message's page, not in the list.
    list_defer = ["payload"]
    list_filter = ["status", "event_type", "created_at"]
    search_fields = ["=event_id"]  # the webhook-id header a lender quotes; unique, so indexed
    raw_id_fields = ["endpoint"]
    inlines = [AttemptInline]


@admin.register(TextMessage)
class TextMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Texts sent and received, as the provider reported them. Read-only: the provider's callbacks move them.
    Neither the number nor the words are shown: contact details are read on the consumer's admin page, where
    each view is logged (compliance), or by the buyer on the lead page."""

    list_display = ["id", "direction", "status", "provider", "error_code", "lead", "delivery", "created_at"]
    list_filter = ["direction", "status", "provider"]
    list_select_related = ["lead", "delivery"]
    search_fields = ["=provider_id", "=lead__id", "=delivery__id"]
    raw_id_fields = ["lead", "delivery"]
    exclude = ["phone", "body"]
    show_full_result_count = False


# --- Outreach ---------------------------------------------------------------------------------------------


class MessageTemplateForm(forms.ModelForm):
    """Staff write merge fields only (integrations.outreach.merge); a field we cannot fill is refused here."""

    class Meta:
        model = MessageTemplate
        fields = ["send_email", "email_subject", "email_body", "send_text", "text_body"]

    def clean(self):
        data = super().clean()
        try:
            outreach.templates_check(
                {k: data.get(k) or "" for k in ("email_subject", "email_body", "text_body")}
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field, errors)
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    """The marketplace's default first touch (what every lender without its own sends) and, to look at,
    lenders' own. Lenders edit theirs in the portal (Settings → First touch)."""

    form = MessageTemplateForm
    list_display = ["__str__", "lender", "send_email", "send_text", "updated_at"]
    list_select_related = ["lender"]
    list_filter = ["is_default"]
    search_fields = ["lender__name"]

    def has_add_permission(self, request):
        return False  # the default ships (a data migration); lenders write their own in the portal

    def has_delete_permission(self, request, obj=None):
        return obj is not None and not obj.is_default

    def save_model(self, request, obj, form, change):
        obj.updated_at, obj.updated_by = timezone.now(), request.user
        super().save_model(request, obj, form, change)


class SequenceStepInline(admin.TabularInline):
    model = SequenceStep
    extra = 0
    fields = ["position", "action", "timing", "delay_minutes", "skip_if_reached", "subject"]


@admin.register(Sequence)
class SequenceAdmin(admin.ModelAdmin):
    list_display = ["name", "lender", "is_default", "is_active", "updated_at"]
    list_select_related = ["lender"]
    list_filter = ["is_default", "is_active"]
    search_fields = ["name", "lender__name"]
    raw_id_fields = ["lender"]
    inlines = [SequenceStepInline]
    exclude = ["subscriptions"]


class StepRunInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = StepRun
    fields = ["key", "title", "action", "due_at", "state", "attempts", "finished_at", "result"]
    ordering = ["due_at", "pk"]


@admin.register(Enrolment)
class EnrolmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Each delivery's outreach, step by step (what ran, when, and why a step was skipped or waited)."""

    list_display = ["delivery", "sequence", "state", "stop_reason", "created_at"]
    list_select_related = ["delivery", "sequence"]
    list_filter = ["state", "stop_reason"]
    search_fields = ["=delivery__id"]
    raw_id_fields = ["delivery", "sequence"]
    inlines = [StepRunInline]
    show_full_result_count = False
