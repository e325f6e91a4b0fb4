"""Top-level URLs: the public form, the lender portal, staff admin, health."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import views

urlpatterns = [
    path("", include("leads.urls")),
    path("portal/", include("portal.urls")),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    # The API (integrations.api), its OpenAPI schema and Swagger UI (assets from the sidecar, no CDN; the
    # split view serves its start-up script as a file: our Content-Security-Policy allows no inline script).
    path(
        "api/schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", authentication_classes=[], permission_classes=[]
        ),
        name="api_docs",
    ),
    path("api/", include("integrations.api.urls")),
    # Twilio's webhooks and the unsubscribe link of marketing e-mail (integrations.channels).
    path("", include("integrations.channels.urls")),
    # Inbound e-mail from the provider (django-anymail, e.g. /hooks/mail/postmark/inbound/), basic auth with
    # ANYMAIL_WEBHOOK_SECRET: unsubscribe e-mails sent to the List-Unsubscribe mailto.
    path("hooks/mail/", include("anymail.urls")),
]
