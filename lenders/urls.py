"""The lender portal, mounted at /portal/."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

app_name = "portal"
urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="portal/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    # Django's LogoutView accepts POST only: a link or prefetch cannot sign a lender out.
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.inbox, name="inbox"),
    path("inbox/rows/", views.inbox_rows, name="inbox_rows"),
    path("leads/<int:delivery_id>/", views.delivery_detail, name="delivery_detail"),
    path("leads/<int:delivery_id>/status/", views.delivery_status, name="delivery_status"),
    # Sections built in their own modules (each owns its URL names; see the module docstrings).
    path("", include("lenders.urls_money")),
    path("", include("lenders.urls_integrations")),
]
