"""Celery tasks of the lenders app: invitation e-mails. Ids in, a service call."""

from celery import shared_task

from core.tasking import ReliableTask


@shared_task(base=ReliableTask, outbox=True)
def send_invitation(invitation_id: int) -> bool:
    from .team import invitation_send

    return invitation_send(invitation_id=invitation_id)
