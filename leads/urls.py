from django.urls import path

from . import views

app_name = "leads"
urlpatterns = [
    path("", views.lead_form, name="form"),
    path("result/<uuid:public_id>/", views.lead_result, name="result"),
    path("result/<uuid:public_id>/status/", views.lead_result_status, name="result_status"),
    # The signed link in the consumer's confirmation e-mail (leads.links).
    path("r/<str:token>/", views.lead_result_signed, name="result_signed"),
]
