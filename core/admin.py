"""Staff admin for the plumbing: the tasks set aside after their retries (replayed from here) and those
waiting in the outbox for the broker."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import FailedTask, OutboxTask
from .tasking import failed_tasks_replay


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
    """Tasks written with their change and not yet taken by the broker; outbox_flush publishes them. A row
    that stays here says the broker (or beat) is down."""

    list_display = ("created_at", "task_name", "args")
    list_filter = ("task_name",)
    readonly_fields = ("task_name", "args", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
