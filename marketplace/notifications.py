"""Telling buyers about their leads. The portal shows a delivery at once; e-mail follows from a task."""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from integrations.services import webhooks_emit_delivery_created
from lenders.models import Membership

from .models import Delivery

logger = logging.getLogger(__name__)


def _recipients(delivery: Delivery) -> list[str]:
    if delivery.assigned_to_id and delivery.assigned_to.email and delivery.assigned_to.is_active:
        return [delivery.assigned_to.email]
    return list(
        Membership.objects.filter(
            lender_id=delivery.lender_id, is_active=True, role__in=[Membership.Role.OWNER, Membership.Role.MANAGER]
        )
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )


def delivery_notify(*, delivery_id: int) -> bool:
    """E-mail the buyer about a new lead, once. The row lock makes a concurrent second run wait and skip."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("lead", "lender", "assigned_to", "charge")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.notified_at is not None:
            return False
        to = _recipients(delivery)
        if to:
            context = {
                "delivery": delivery,
                "lead": delivery.lead,
                "url": settings.SITE_URL + reverse("portal:delivery_detail", args=[delivery.pk]),
            }
            message = EmailMultiAlternatives(
                subject=f"New {delivery.lead.get_purpose_display().lower()} lead in {delivery.lead.state}",
                body=render_to_string("email/new_lead.txt", context),
                to=to,
            )
            message.attach_alternative(render_to_string("email/new_lead.html", context), "text/html")
            message.send()
        webhooks_emit_delivery_created(delivery=delivery)  # signed webhooks, queued on this commit, once
        delivery.notified_at = timezone.now()
        delivery.save(update_fields=["notified_at"])
    logger.info("delivery %s notified (%d recipient(s))", delivery_id, len(to))
    return True
