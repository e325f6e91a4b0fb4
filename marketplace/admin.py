"""Staff admin for the market: deliveries, price floors, the market settings singleton, and the tasks set
aside after their retries (replayed from here) or waiting in the outbox for the broker."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Delivery, FailedTask, MarketSettings, OutboxTask, PriceFloor
from .tasking import failed_tasks_replay


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


class ReplayedFilter(admin.SimpleListFilter):
    title = "replayed"
    parameter_name = "replayed"

    def lookups(self, request, model_admin):
        return (("no", "Not yet"), ("yes", "Replayed"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(replayed_at__isnull=self.value() == "no")
        return queryset


@admin.register(FailedTask)
class FailedTaskAdmin(admin.ModelAdmin):
    """Tasks whose retries ran out. Fix the cause (the exception says what failed), then replay: the task runs
    again with its arguments (ids only). Tasks are idempotent, so replaying work already done does nothing."""

    list_display = ("failed_at", "task_name", "args", "exception", "retries", "replayed_at")
    list_filter = (ReplayedFilter, "task_name", "failed_at")
    search_fields = ("task_name", "=task_id", "exception")
    date_hierarchy = "failed_at"
    actions = ("replay",)
    readonly_fields = (
        "task_name",
        "task_id",
        "args",
        "kwargs",
        "exception",
        "retries",
        "failed_at",
        "replayed_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written by ReliableTask.on_failure

    @admin.action(description="Replay selected tasks", permissions=["change"])
    def replay(self, request: HttpRequest, queryset: QuerySet[FailedTask]) -> None:
        queued, refused = failed_tasks_replay(failed_task_ids=list(queryset.values_list("pk", flat=True)))
        if queued:
            self.message_user(
                request, f"Replayed {queued} task{'s' if queued != 1 else ''}.", messages.SUCCESS
            )
        if refused:
            self.message_user(
                request,
                f"{refused} task{'s' if refused != 1 else ''} could not be queued: the broker is not "
                "answering. Nothing was marked; replay them again once it is back.",
                messages.WARNING,
            )


@admin.register(OutboxTask)
class OutboxTaskAdmin(admin.ModelAdmin):
    """Tasks written with their change and not yet taken by the broker; sweep_outbox publishes them. A row
    that stays here says the broker (or beat) is down."""

    list_display = ("created_at", "task_name", "args")
    list_filter = ("task_name",)
    readonly_fields = ("task_name", "args", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
