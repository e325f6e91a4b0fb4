"""Machine-to-machine and messages out: partner lead intake, the lender API, signed webhooks, e-mail to
lenders, alerts. It subscribes to the events of the apps below it and never is imported by them."""

from anymail.signals import inbound
from django.apps import AppConfig

from billing.signals import balance_lowered
from compliance.signals import consumer_erased, consumer_opted_out
from leads.signals import guideline_set_activated
from marketplace.signals import deliveries_created, delivery_status_changed, return_decided


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"

    def ready(self) -> None:

        from . import (
            receivers,
            schema,  # noqa: F401 - registers the OpenAPI security scheme for ApiKeyAuthentication
        )
        from .services import consumer_erased_scrub

        # An erasure scrubs the contact details this app keeps (stored API answers, webhook payloads).
        consumer_erased.connect(consumer_erased_scrub, dispatch_uid="integrations.consumer_erased_scrub")
        # A sale is announced to its buyers (webhooks, then e-mail).
        deliveries_created.connect(
            receivers.deliveries_created_notify, dispatch_uid="integrations.deliveries"
        )
        # A debit that crosses the lender's low-balance line: account.low_balance webhook and e-mail, once.
        balance_lowered.connect(receivers.balance_lowered_check, dispatch_uid="integrations.low_balance")
        # A decided return: return.decided webhook and the lender's e-mail.
        return_decided.connect(receivers.return_decided_notify, dispatch_uid="integrations.return_decided")
        # Outreach stops when a person takes over or the consumer says stop (integrations.outreach).
        from .signals import consumer_replied

        consumer_replied.connect(
            receivers.consumer_replied_stop, dispatch_uid="integrations.outreach.replied"
        )
        consumer_opted_out.connect(
            receivers.consumer_opted_out_stop, dispatch_uid="integrations.outreach.opted_out"
        )
        consumer_erased.connect(receivers.consumer_erased_stop, dispatch_uid="integrations.outreach.erased")
        return_decided.connect(receivers.return_decided_stop, dispatch_uid="integrations.outreach.returned")
        delivery_status_changed.connect(
            receivers.delivery_status_changed_stop, dispatch_uid="integrations.outreach.status"
        )
        # A new rate sheet: the open leads whose numbers improved get a call task (outreach.requalify).
        guideline_set_activated.connect(
            receivers.guideline_set_activated_requalify, dispatch_uid="integrations.outreach.requalify"
        )
        # An e-mail to the List-Unsubscribe mailto, through the provider's inbound webhook (anymail).
        inbound.connect(receivers.inbound_mail_unsubscribe, dispatch_uid="integrations.inbound_mail")
