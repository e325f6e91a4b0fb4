from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Market"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from leads.models import GuidelineSet, StateHousingCost

        from . import staffconfig
        from .models import MarketSettings, PriceFloor

        for model in (MarketSettings, PriceFloor, GuidelineSet, StateHousingCost):
            post_save.connect(
                staffconfig.clear, sender=model, dispatch_uid=f"staffconfig-{model.__name__}-save"
            )
            post_delete.connect(
                staffconfig.clear, sender=model, dispatch_uid=f"staffconfig-{model.__name__}-del"
            )
