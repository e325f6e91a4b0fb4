"""Reads of outreach for the portal: a member's call tasks (My day), a delivery's routine (the lead page), the
call-task counts analytics shows. Lender-facing reads start from the member's scoped deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet

from lenders.models import Membership
from marketplace.models import Delivery
from marketplace.selectors import deliveries_for_member

from .models import Action, Enrolment, Sequence, StepRun
from .requalify import requalify_open_q
from .services import STOP_STATUSES

# A call task more than this late is overdue; within it, it is due now.
DUE_NOW_GRACE = timedelta(minutes=15)
UPCOMING_WITHIN = timedelta(hours=24)


def call_tasks_for_member(*, membership: Membership, now: datetime) -> QuerySet[StepRun]:
    """The call tasks of the member's day: open or waiting, on running routines (a rate sheet's
    re-qualification task also on a finished one), due within the next 24 hours, oldest first. An officer's
    are those on their own leads; an owner's or manager's, those on their own leads and on leads nobody is
    assigned. One query, with what a row shows."""
    scope = deliveries_for_member(membership=membership).exclude(status__in=list(STOP_STATUSES))
    if membership.sees_all_leads:
        scope = scope.filter(Q(assigned_to=membership.user) | Q(assigned_to__isnull=True))
    return (
        StepRun.objects.filter(
            Q(enrolment__state=Enrolment.State.ACTIVE) | requalify_open_q(),
            action=Action.CALL,
            state__in=[StepRun.State.PENDING, StepRun.State.OPEN],
            due_at__lte=now + UPCOMING_WITHIN,
            enrolment__delivery__in=scope,
        )
        .select_related("enrolment__delivery__lead__consumer", "enrolment__delivery__lender")
        .order_by("due_at", "pk")
    )


def call_task_get_for_member(*, membership: Membership, run_id: int) -> StepRun | None:
    """A call task the member may close (on a lead they may open); None means 404."""
    return (
        StepRun.objects.filter(
            pk=run_id,
            action=Action.CALL,
            enrolment__delivery__in=deliveries_for_member(membership=membership),
        )
        .select_related("enrolment")
        .first()
    )


@dataclass(frozen=True)
class MyDay:
    overdue: list[StepRun]
    due_now: list[StepRun]
    upcoming: list[StepRun]


def my_day(*, membership: Membership, now: datetime) -> MyDay:
    """The member's call tasks by urgency, one per lead: its earliest (the open one, else the next), so a
    lead's later calls of the day wait behind the one to make now."""
    tasks, seen = [], set()
    for task in call_tasks_for_member(membership=membership, now=now):
        if task.enrolment_id not in seen:
            seen.add(task.enrolment_id)
            tasks.append(task)
    return MyDay(
        overdue=[t for t in tasks if t.due_at < now - DUE_NOW_GRACE],
        due_now=[t for t in tasks if now - DUE_NOW_GRACE <= t.due_at <= now],
        upcoming=[t for t in tasks if t.due_at > now],
    )


@dataclass(frozen=True)
class CallTaskCounts:
    due: int
    done: int
    missed: int
    open: int

    @property
    def done_rate(self) -> int | None:
        return round(100 * self.done / self.due) if self.due else None


def call_task_counts(*, deliveries: QuerySet[Delivery], now: datetime) -> CallTaskCounts:
    """Call tasks fallen due on these deliveries (the analytics range, scoped): done, missed (a later task
    replaced it), still open. A task cancelled because the routine stopped is not counted. One query."""
    counts = StepRun.objects.filter(
        action=Action.CALL, enrolment__delivery__in=deliveries, due_at__lte=now
    ).aggregate(
        done=Count("pk", filter=Q(state=StepRun.State.DONE)),
        missed=Count("pk", filter=Q(state=StepRun.State.MISSED)),
        open=Count("pk", filter=Q(state__in=[StepRun.State.OPEN, StepRun.State.PENDING])),
    )
    done, missed, still_open = counts["done"], counts["missed"], counts["open"]
    return CallTaskCounts(due=done + missed + still_open, done=done, missed=missed, open=still_open)


def delivery_outreach(*, delivery: Delivery) -> tuple[Enrolment | None, list[StepRun]]:
    """A delivery's routine for its lead page: the enrolment and its steps in order. Two queries."""
    enrolment = Enrolment.objects.filter(delivery=delivery).select_related("sequence").first()
    if enrolment is None:
        return None, []
    return enrolment, list(enrolment.runs.order_by("due_at", "pk"))


def sequences_for_lender(*, lender_id: int) -> QuerySet[Sequence]:
    return Sequence.objects.filter(lender_id=lender_id).prefetch_related("steps", "subscription_rows")
