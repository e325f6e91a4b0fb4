"""/api/v1/: partner intake and the lender API; /api/problems/: the pages behind problem `type` URIs.
Anything else under /api/ is a problem+json 404, whatever the method."""

from django.urls import path, re_path

from . import intake, lender
from .common import not_found, problem_types

app_name = "api"
urlpatterns = [
    path("v1/leads/", intake.LeadCreateApi.as_view(), name="lead_create"),
    path("v1/leads/<uuid:lead_id>/", intake.LeadDetailApi.as_view(), name="lead_detail"),
    path("v1/deliveries/", lender.DeliveryListApi.as_view(), name="delivery_list"),
    path("v1/deliveries/<int:delivery_id>/", lender.DeliveryDetailApi.as_view(), name="delivery_detail"),
    path(
        "v1/deliveries/<int:delivery_id>/status/", lender.DeliveryStatusApi.as_view(), name="delivery_status"
    ),
    path(
        "v1/deliveries/<int:delivery_id>/activities/", lender.ActivityApi.as_view(), name="delivery_activity"
    ),
    path("v1/deliveries/<int:delivery_id>/return/", lender.ReturnApi.as_view(), name="delivery_return"),
    path("v1/account/", lender.AccountApi.as_view(), name="account"),
    path("v1/account/ledger/", lender.LedgerApi.as_view(), name="ledger"),
    path("problems/", problem_types, name="problem_types"),
    path("problems/<slug:slug>", problem_types, name="problem_type"),
    re_path(r"", not_found),
]
