"""Staff admin for the market: deliveries, price floors and the market settings singleton."""

from django.contrib import admin
from django.http import HttpRequest

from .models import Delivery, MarketSettings, PriceFloor


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


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "lead", "lender", "price", "exclusive", "status", "assigned_to", "created_at")
    list_filter = ("status", "exclusive", "created_at", "lender__status", NotificationSetAsideFilter)
    search_fields = ("=id", "=lead__id", "lender__name")
    list_select_related = ("lead", "lender", "assigned_to")
    raw_id_fields = ("lead", "lender", "subscription", "charge", "assigned_to")
    date_hierarchy = "created_at"
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
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the charge and the ledger point at it


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
