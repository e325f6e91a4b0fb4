"""Beat job: erase personal data of unsold leads once the staff-set retention period ends."""

from core.tasking import ReliableTask, renamed_task
from marketplace.models import MarketSettings


# renamed_task: the quoted name is the task's name before issue 13.6, kept registered for one release so that
# tasks already queued in Redis (or set aside, to replay) under it still run; drop it in the release after.
@renamed_task("compliance.tasks.erase_expired_consumers", base=ReliableTask, max_retries=1)  # old name
def consumers_erase_expired() -> int:
    from . import services

    return services.consumers_erase_expired(retention_days=MarketSettings.load().retention_days)
