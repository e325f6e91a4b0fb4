"""Portal URLs for API keys and webhook endpoints (names: api_keys, webhooks and their detail pages).
Included by lenders/urls.py under the `portal` namespace."""

urlpatterns: list = []
