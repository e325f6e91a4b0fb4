"""Portal URLs for subscriptions, billing, returns and analytics. Included by lenders/urls.py under the
`portal` namespace. Names other sections may link to: portal:subscriptions, portal:billing, portal:returns,
portal:analytics, and portal:return_request (delivery_id) from a lead's page."""

from django.urls import path

from . import views_money as v

urlpatterns = [
    path("subscriptions/", v.subscriptions, name="subscriptions"),
    path("subscriptions/new/", v.subscription_create, name="subscription_create"),
    path("subscriptions/forecast/", v.subscription_forecast_partial, name="subscription_forecast"),
    path("subscriptions/<int:subscription_id>/", v.subscription_edit, name="subscription_edit"),
    path("subscriptions/<int:subscription_id>/pause/", v.subscription_pause, name="subscription_pause"),
    path("subscriptions/<int:subscription_id>/resume/", v.subscription_resume, name="subscription_resume"),
    path("billing/", v.billing, name="billing"),
    path("billing/ledger.csv", v.billing_csv, name="billing_csv"),
    path("returns/", v.returns, name="returns"),
    path("leads/<int:delivery_id>/return/", v.return_request, name="return_request"),
    path("analytics/", v.analytics, name="analytics"),
    path("analytics/export.csv", v.analytics_csv, name="analytics_csv"),
]
