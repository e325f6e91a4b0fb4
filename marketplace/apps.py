"""The market: price floors, matching and allocation, Delivery and its pipeline, returns, the qualify -> sell
batch."""

from django.apps import AppConfig

from core import staffconfig
from leads.signals import lead_waiting
from lenders.signals import lender_time_zone_changed, subscription_validating


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Market"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from . import services
        from .models import MarketSettings, PriceFloor
        from .rollup import rollup_rebuild_for_zone

        for model in (MarketSettings, PriceFloor):
            post_save.connect(
                staffconfig.clear, sender=model, dispatch_uid=f"staffconfig-{model.__name__}-save"
            )
            post_delete.connect(
                staffconfig.clear, sender=model, dispatch_uid=f"staffconfig-{model.__name__}-del"
            )
        # Lead intake dedupes within the window staff set in the market's settings.
        staffconfig.provide(
            "duplicate_window_days", lambda: services.market_settings_current().duplicate_window_days
        )
        # The result page and the consumer's confirmation say how many lenders may have a shared request.
        staffconfig.provide("shared_max_buyers", lambda: services.market_settings_current().shared_max_buyers)
        # A lead waiting (received, or released from hold) is the market's to qualify and sell.
        lead_waiting.connect(services.lead_waiting_queue, dispatch_uid="marketplace.lead_waiting_queue")
        # Analytics' rollup counts sales on the lender's local day: a new zone rebuilds it.
        lender_time_zone_changed.connect(
            rollup_rebuild_for_zone, dispatch_uid="marketplace.rollup_rebuild_for_zone"
        )
        # A subscription's bid is never below the staff's floor: the market's rule, checked with the others.
        subscription_validating.connect(
            services.subscription_price_check, dispatch_uid="marketplace.subscription_price_check"
        )
