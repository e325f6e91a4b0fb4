"""Portal URLs for API keys and webhook endpoints (names: api_keys, webhooks and their detail pages).
Included by lenders/urls.py under the `portal` namespace. Views live in integrations.views."""

from django.urls import path

from integrations import views as v

urlpatterns = [
    path("integrations/keys/", v.api_keys, name="api_keys"),
    path("integrations/keys/<int:key_id>/revoke/", v.api_key_revoke, name="api_key_revoke"),
    path("integrations/webhooks/", v.webhooks, name="webhooks"),
    path("integrations/webhooks/<int:endpoint_id>/", v.webhook_detail, name="webhook_detail"),
    path("integrations/webhooks/<int:endpoint_id>/rotate/", v.webhook_rotate, name="webhook_rotate"),
    path("integrations/webhooks/<int:endpoint_id>/toggle/", v.webhook_toggle, name="webhook_toggle"),
    path(
        "integrations/webhooks/<int:endpoint_id>/messages/<int:message_id>/resend/",
        v.webhook_resend,
        name="webhook_resend",
    ),
]
