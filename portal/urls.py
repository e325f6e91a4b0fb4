"""The lender portal, mounted at /portal/ under the `portal` namespace: one module of views per area."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import analytics, billing, inbox, integrations, lead, outreach, returns, subscriptions, team

app_name = "portal"
urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="portal/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    # Django's LogoutView accepts POST only: a link or prefetch cannot sign a lender out.
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # inbox
    path("", inbox.inbox, name="inbox"),
    path("inbox/rows/", inbox.inbox_rows, name="inbox_rows"),
    path("inbox/export.csv", inbox.inbox_export, name="inbox_export"),
    # my day: the call tasks of the sequences
    path("my-day/", outreach.my_day, name="my_day"),
    path("my-day/<int:run_id>/log/", outreach.call_task_log, name="call_task_log"),
    # settings: the first touch and sequences (owners and managers); a member's profile is under team
    path("settings/first-touch/", outreach.first_touch, name="first_touch"),
    path("settings/first-touch/preview/", outreach.first_touch_preview, name="first_touch_preview"),
    path("settings/sequences/", outreach.sequences, name="sequences"),
    path("settings/sequences/new/", outreach.sequence_edit, name="sequence_create"),
    path("settings/sequences/<int:sequence_id>/", outreach.sequence_edit, name="sequence_edit"),
    path("inbox/exports/<str:token>/", inbox.inbox_export_download, name="inbox_export_download"),
    # a lead
    path("leads/<int:delivery_id>/", lead.delivery_detail, name="delivery_detail"),
    path("leads/<int:delivery_id>/status/", lead.delivery_status, name="delivery_status"),
    path("leads/<int:delivery_id>/activity/", lead.delivery_activity, name="delivery_activity"),
    path("leads/<int:delivery_id>/followups/", lead.delivery_followup, name="delivery_followup"),
    path("leads/<int:delivery_id>/assign/", lead.delivery_assign, name="delivery_assign"),
    path("leads/<int:delivery_id>/letter.pdf", lead.delivery_letter, name="delivery_letter"),
    path("followups/<int:followup_id>/done/", lead.followup_done, name="followup_done"),
    # team
    path("team/", team.team_page, name="team"),
    path("team/members/<int:member_id>/", team.member_update, name="member_update"),
    path("team/members/<int:member_id>/profile/", team.member_profile, name="member_profile"),
    path("profile/", team.profile, name="profile"),
    path("team/invitations/<int:invitation_id>/", team.invitation_update, name="invitation_update"),
    path("team/assignment/", team.assignment_rules, name="assignment_rules"),
    path("team/assignment/<int:rule_id>/", team.assignment_rule_update, name="assignment_rule_update"),
    path("join/<str:token>/", team.invitation_accept, name="invitation_accept"),
    # subscriptions
    path("subscriptions/", subscriptions.subscriptions, name="subscriptions"),
    path("subscriptions/new/", subscriptions.subscription_create, name="subscription_create"),
    path(
        "subscriptions/forecast/", subscriptions.subscription_forecast_partial, name="subscription_forecast"
    ),
    path("subscriptions/<int:subscription_id>/", subscriptions.subscription_edit, name="subscription_edit"),
    path(
        "subscriptions/<int:subscription_id>/pause/",
        subscriptions.subscription_pause,
        name="subscription_pause",
    ),
    path(
        "subscriptions/<int:subscription_id>/resume/",
        subscriptions.subscription_resume,
        name="subscription_resume",
    ),
    # billing
    path("billing/", billing.billing, name="billing"),
    path("billing/ledger.csv", billing.billing_csv, name="billing_csv"),
    # returns
    path("returns/", returns.returns, name="returns"),
    path("leads/<int:delivery_id>/return/", returns.return_request, name="return_request"),
    # analytics
    path("analytics/", analytics.analytics, name="analytics"),
    path("analytics/export.csv", analytics.analytics_csv, name="analytics_csv"),
    # integrations
    path("integrations/keys/", integrations.api_keys, name="api_keys"),
    path("integrations/keys/<int:key_id>/revoke/", integrations.api_key_revoke, name="api_key_revoke"),
    path("integrations/webhooks/", integrations.webhooks, name="webhooks"),
    path("integrations/webhooks/<int:endpoint_id>/", integrations.webhook_detail, name="webhook_detail"),
    path(
        "integrations/webhooks/<int:endpoint_id>/rotate/", integrations.webhook_rotate, name="webhook_rotate"
    ),
    path(
        "integrations/webhooks/<int:endpoint_id>/toggle/", integrations.webhook_toggle, name="webhook_toggle"
    ),
    path(
        "integrations/webhooks/<int:endpoint_id>/messages/<int:message_id>/resend/",
        integrations.webhook_resend,
        name="webhook_resend",
    ),
]
