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
    path("inbox/export.csv", views.inbox_export, name="inbox_export"),
    path("leads/<int:delivery_id>/", views.delivery_detail, name="delivery_detail"),
    path("leads/<int:delivery_id>/status/", views.delivery_status, name="delivery_status"),
    path("leads/<int:delivery_id>/activity/", views.delivery_activity, name="delivery_activity"),
    path("leads/<int:delivery_id>/followups/", views.delivery_followup, name="delivery_followup"),
    path("leads/<int:delivery_id>/assign/", views.delivery_assign, name="delivery_assign"),
    path("leads/<int:delivery_id>/letter.pdf", views.delivery_letter, name="delivery_letter"),
    path("followups/<int:followup_id>/done/", views.followup_done, name="followup_done"),
    path("team/", views.team_page, name="team"),
    path("team/members/<int:member_id>/", views.member_update, name="member_update"),
    path("team/invitations/<int:invitation_id>/", views.invitation_update, name="invitation_update"),
    path("team/assignment/", views.assignment_rules, name="assignment_rules"),
    path("team/assignment/<int:rule_id>/", views.assignment_rule_update, name="assignment_rule_update"),
    path("join/<str:token>/", views.invitation_accept, name="invitation_accept"),
    # Sections built in their own modules (each owns its URL names; see the module docstrings).
    path("", include("lenders.urls_money")),
    path("", include("lenders.urls_integrations")),
]
