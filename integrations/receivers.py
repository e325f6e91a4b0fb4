"""This app's receivers of the domain events of the apps below it (connected in integrations.apps)."""

import logging
from decimal import Decimal
from typing import Any

from core.tasking import enqueue

from . import services
from .channels.services import email_unsubscribe_by_mail
from .deliveries import deliveries_notify_now

logger = logging.getLogger(__name__)


def deliveries_created_notify(*, delivery_ids: list[int], now: bool, **kwargs: Any) -> None:
    """marketplace.signals.deliveries_created (sent on commit): tell the buyers, from this worker when the
    sale's worker asks (`now`), else in the notification task."""
    from .tasks import deliveries_notify  # the tasks module imports the services this module imports

    if now:
        deliveries_notify_now(delivery_ids=delivery_ids)
    else:
        enqueue(deliveries_notify, delivery_ids)


def balance_lowered_check(
    *, account_id: int, previous_balance: Decimal, balance: Decimal, **kwargs: Any
) -> None:
    """billing.signals.balance_lowered (inside the posting transaction)."""
    services.account_low_balance_check(
        account_id=account_id, previous_balance=previous_balance, balance=balance
    )


def return_decided_notify(*, return_request: Any, **kwargs: Any) -> None:
    """marketplace.signals.return_decided (inside the deciding transaction)."""
    services.return_decided_notify(return_request=return_request)


def inbound_mail_unsubscribe(*, event: Any, esp_name: str, **kwargs: Any) -> None:
    """anymail.signals.inbound: an e-mail the provider received for us. One to the List-Unsubscribe mailto
    carries its token in the subject and unsubscribes; nothing else is read (or kept) here."""
    message = getattr(event, "message", None)
    done = email_unsubscribe_by_mail(subject=getattr(message, "subject", "") or "")
    logger.info("inbound e-mail from %s: unsubscribe=%s", esp_name, done)
