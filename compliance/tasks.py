"""Beat job: erase personal data of unsold leads once the staff-set retention period ends."""

from celery import shared_task

from core.tasking import ReliableTask
from marketplace.models import MarketSettings


@shared_task(base=ReliableTask, max_retries=1)
def erase_expired_consumers() -> int:
    from .services import consumers_erase_expired

    return consumers_erase_expired(retention_days=MarketSettings.load().retention_days)
