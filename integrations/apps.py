"""Machine-to-machine: partner lead intake, the lender API, signed webhooks and e-mail notifications."""

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"

    def ready(self) -> None:
        from . import schema  # noqa: F401 - registers the OpenAPI security scheme for ApiKeyAuthentication
