"""Top-level URLs: the public form, the lender portal, staff admin, health."""

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", include("leads.urls")),
    path("portal/", include("lenders.urls")),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
]
