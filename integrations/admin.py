"""Staff tools: partners and their keys (a new key is shown once in a message), webhook endpoints and logs."""

from django.contrib import admin, messages

from core.readonly import ReadOnlyAdminMixin

from . import services
from .models import (
    ApiKey,
    LeadIntake,
    LeadSource,
    TextMessage,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)


@admin.register(LeadSource)
class LeadSourceAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "contact_email", "created_at"]
    search_fields = ["name"]
    list_filter = ["is_active"]
    actions = ["make_key"]

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
class LeadIntakeAdmin(admin.ModelAdmin):
    list_display = ["lead", "source", "consent_given_at", "created_at"]
    list_select_related = ["lead", "source"]
    raw_id_fields = ["lead", "api_key"]
    list_filter = ["source"]


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
class WebhookMessageAdmin(admin.ModelAdmin):
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
    list_filter = ["status", "event_type"]
    search_fields = ["event_id"]
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
