"""Portal URLs for subscriptions, billing, returns and analytics (names: subscriptions, billing, returns,
analytics and their detail pages). Included by lenders/urls.py under the `portal` namespace."""

urlpatterns: list = []
