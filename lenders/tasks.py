"""Celery tasks of the lender portal: invitation e-mails and follow-up reminders. Ids in, a service call."""

from celery import shared_task

from marketplace.tasking import ReliableTask


@shared_task(base=ReliableTask, outbox=True)
def send_invitation(invitation_id: int) -> bool:
    from .team import invitation_send

    return invitation_send(invitation_id=invitation_id)


@shared_task(base=ReliableTask, max_retries=1)
def remind_overdue_followups() -> int:
    """Beat: e-mail each member about their overdue follow-ups, each item once."""
    from marketplace.services import followups_remind_overdue

    return followups_remind_overdue()
