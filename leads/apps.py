"""Consumers and their leads: the public form and intake, consent, the qualification engine, lead quality."""

from django.apps import AppConfig

from core import staffconfig


class LeadsConfig(AppConfig):
    name = "leads"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from .models import GuidelineSet, StateHousingCost

        # Guidelines and housing costs are read through the per-process cache: a staff edit clears it.
        for model in (GuidelineSet, StateHousingCost):
            post_save.connect(
                staffconfig.clear, sender=model, dispatch_uid=f"staffconfig-{model.__name__}-save"
            )
            post_delete.connect(
                staffconfig.clear, sender=model, dispatch_uid=f"staffconfig-{model.__name__}-del"
            )
