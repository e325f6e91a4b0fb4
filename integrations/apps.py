"""Machine-to-machine: partner lead intake, the lender API, signed webhooks and e-mail notifications."""

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"

    def ready(self) -> None:
        from compliance.signals import consumer_erased

        from . import schema  # noqa: F401 - registers the OpenAPI security scheme for ApiKeyAuthentication
        from .services import consumer_erased_scrub

        # An erasure scrubs the contact details this app keeps (stored API answers, webhook payloads).
        consumer_erased.connect(consumer_erased_scrub, dispatch_uid="integrations.consumer_erased_scrub")
