"""Celery tasks of the lenders app: invitation e-mails. Ids in, a service call."""

from core.tasking import ReliableTask, renamed_task


# renamed_task: the quoted name is the task's name before issue 13.6, kept registered for one release so that
# tasks already queued in Redis (or set aside, to replay) under it still run; drop it in the release after.
@renamed_task("lenders.tasks.send_invitation", base=ReliableTask, outbox=True)  # old name
def invitation_send(invitation_id: int) -> bool:
    from . import team

    return team.invitation_send(invitation_id=invitation_id)
