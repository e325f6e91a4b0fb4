from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "portal"
urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="portal/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.inbox, name="inbox"),
    path("leads/<int:delivery_id>/", views.delivery_detail, name="delivery_detail"),
    path("leads/<int:delivery_id>/status/", views.delivery_status, name="delivery_status"),
]
