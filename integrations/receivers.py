"""This app's receivers of the domain events of the apps below it (connected in integrations.apps)."""

import logging
from decimal import Decimal
from typing import Any

from core.tasking import enqueue, enqueue_on_commit
from marketplace.models import Delivery

from . import services
from .channels.services import email_unsubscribe_by_mail
from .deliveries import deliveries_notify_now
from .outreach import services as outreach
from .outreach.models import Enrolment
from .outreach.tasks import deliveries_outreach_start, guideline_set_requalify

logger = logging.getLogger(__name__)


def deliveries_created_notify(*, delivery_ids: list[int], now: bool, **kwargs: Any) -> None:
    """marketplace.signals.deliveries_created (sent on commit): tell the buyers, from this worker when the
    sale's worker asks (`now`), else in the notification task."""
    from .tasks import deliveries_notify  # the tasks module imports the services this module imports

    if now:
        deliveries_notify_now(delivery_ids=delivery_ids)
    else:
        enqueue(deliveries_notify, delivery_ids)
    # The consumer's first touch, on the outbound worker: a slow mail server or Twilio never holds a sale.
    # Lost, it is found again by outreach_run_due (deliveries without an enrolment).
    enqueue(deliveries_outreach_start, delivery_ids)


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


def delivery_status_changed_stop(*, delivery_id: int, status: str, **kwargs: Any) -> None:
    """marketplace.signals.delivery_status_changed (on commit): application, approved, funded or lost stop
    the automated routine; a person works the lead now."""
    reason = outreach.STOP_STATUSES.get(status)
    if reason:
        outreach.enrolments_stop(delivery_ids=[delivery_id], reason=reason)


def consumer_replied_stop(*, delivery_ids: list[int], **kwargs: Any) -> None:
    """integrations.signals.consumer_replied (on commit): a person takes over; the routine stops."""
    outreach.enrolments_stop(delivery_ids=delivery_ids, reason=Enrolment.StopReason.REPLIED)


def consumer_opted_out_stop(*, lead_id: int | None, **kwargs: Any) -> None:
    """compliance.signals.consumer_opted_out (on commit): the lead it came through stops its routines. (A
    text to the same number on another lead is refused when its step runs: the opt-out is checked then.)"""
    if lead_id is not None:
        outreach.enrolments_stop(
            delivery_ids=list(Delivery.objects.filter(lead_id=lead_id).values_list("pk", flat=True)),
            reason=Enrolment.StopReason.OPTED_OUT,
        )


def consumer_erased_stop(*, lead_ids: list[int], **kwargs: Any) -> None:
    """compliance.signals.consumer_erased (inside the erasing transaction): nothing more is sent."""
    outreach.enrolments_stop(
        delivery_ids=list(Delivery.objects.filter(lead_id__in=lead_ids).values_list("pk", flat=True)),
        reason=Enrolment.StopReason.ERASED,
    )


def return_decided_stop(*, return_request: Any, **kwargs: Any) -> None:
    """marketplace.signals.return_decided: an approved return is no longer the lender's lead to work."""
    if return_request.status == "approved":
        outreach.enrolments_stop(
            delivery_ids=[return_request.delivery_id], reason=Enrolment.StopReason.RETURNED
        )


def inbound_mail_unsubscribe(*, event: Any, esp_name: str, **kwargs: Any) -> None:
    """anymail.signals.inbound: an e-mail the provider received for us. One to the List-Unsubscribe mailto
    carries its token in the subject and unsubscribes; nothing else is read (or kept) here."""
    message = getattr(event, "message", None)
    done = email_unsubscribe_by_mail(subject=getattr(message, "subject", "") or "")
    logger.info("inbound e-mail from %s: unsubscribe=%s", esp_name, done)


def guideline_set_activated_requalify(*, guideline_set_id: int, **kwargs: Any) -> None:
    """leads.signals.guideline_set_activated (on commit): re-run the open leads' numbers on the worker."""
    enqueue_on_commit(guideline_set_requalify, guideline_set_id)
