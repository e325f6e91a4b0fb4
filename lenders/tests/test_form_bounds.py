"""Issue 11.9 (the portal, the public site, admin where it matters): dates, time stamps and counts that
answered 500 are a 4xx with a message beside the field; a follow-up already stored with an absurd date no
longer breaks the lead page."""

import inspect
from datetime import UTC, date, datetime
from importlib import import_module
from zoneinfo import ZoneInfo

import pytest
from django import forms
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from integrations import forms as integration_forms
from leads import forms as public_forms
from lenders import forms as portal_forms
from lenders import forms_money
from lenders.models import Subscription
from marketplace.formfields import (
    BoundedDateField,
    BoundedDateTimeField,
    BoundedIntegerField,
    latest_date,
)
from marketplace.models import FollowUp
from marketplace.tests.factories import make_subscription

from .test_portal import sell
from .test_subscriptions_portal import form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivery(buying_lender):
    make_subscription(buying_lender, states=["TX"], price="40.00")
    return sell(buying_lender, first_name="Maria")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def _text(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


# --- follow-ups -----------------------------------------------------------------------------------------


def test_a_follow_up_in_year_9999_is_refused_beside_the_field(owner_client, delivery):
    """Issue 11.9: a follow-up dated 9999-12-31T23:59 was stored, and the lead page was a 500 from then on."""
    response = owner_client.post(
        reverse("portal:delivery_followup", args=[delivery.pk]), {"due_at": "9999-12-31T23:59", "note": "x"}
    )
    assert response.status_code == 400
    assert f"Choose a time no later than Dec 31, {latest_date().year}." in response.content.decode()
    assert not FollowUp.objects.exists()
    assert owner_client.get(reverse("portal:delivery_detail", args=[delivery.pk])).status_code == 200


def test_a_follow_up_inside_the_range_is_still_taken(owner_client, delivery):
    """Issue 11.9: the bounds refuse only the absurd; the last day of the range is a valid reminder."""
    due = f"{latest_date().isoformat()}T23:59"
    response = owner_client.post(reverse("portal:delivery_followup", args=[delivery.pk]), {"due_at": due})
    assert response.status_code == 302
    assert (
        timezone.localtime(FollowUp.objects.get().due_at, ZoneInfo(delivery.lender.time_zone)).date()
        == latest_date()
    )
    # A reminder years ahead says its year, on the page and in the confirmation.
    page = owner_client.get(response["Location"]).content.decode()
    assert f"Dec 31, {latest_date().year}, 11:59 PM" in page
    assert f"Follow-up set for Dec 31, {latest_date().year}, 11:59 PM." in page


def test_a_follow_up_before_2000_is_refused(owner_client, delivery):
    """Issue 11.9: year 1 is refused too (in a zone east of UTC it would not survive a conversion)."""
    response = owner_client.post(
        reverse("portal:delivery_followup", args=[delivery.pk]), {"due_at": "0001-01-01T00:00"}
    )
    assert response.status_code == 400
    assert "Choose a time from Jan 1, 2000 on." in response.content.decode()


def test_the_database_refuses_a_follow_up_after_2100(owner, delivery):
    """Issue 11.9: the check constraint guards every path that skips the form (shell, admin, a future API)."""
    with pytest.raises(IntegrityError), transaction.atomic():
        FollowUp.objects.create(delivery=delivery, user=owner, due_at=datetime(2100, 1, 1, tzinfo=UTC))


@pytest.mark.postgres
def test_a_follow_up_stored_in_year_10000_is_clamped_and_the_lead_page_opens(owner_client, owner, delivery):
    """Issue 11.9: rows stored before the fix (year 10000 in UTC, unreadable by Python) are moved by the data
    migration into the range, after which its check constraint holds and the lead page opens again."""
    migration = import_module("marketplace.migrations.0007_followup_due_at_in_range")
    constraint = next(c for c in FollowUp._meta.constraints if c.name == "followup_due_at_in_range")
    table = FollowUp._meta.db_table

    def alter(action) -> None:
        with connection.cursor() as cursor:  # ALTER TABLE waits for no deferred foreign-key check
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with connection.schema_editor() as editor:
            action(editor)

    alter(lambda editor: editor.remove_constraint(FollowUp, constraint))  # the table before the migration
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (delivery_id, user_id, due_at, note, created_at)"  # noqa: S608 - our table
            " VALUES (%s, %s, '10000-01-01 05:59:00+00', 'typo', now())",
            [delivery.pk, owner.pk],
        )
    page = reverse("portal:delivery_detail", args=[delivery.pk])
    owner_client.raise_request_exception = False
    assert owner_client.get(page).status_code == 500  # the defect, as stored data made it

    migration.clamp_absurd_due_times(apps, None)
    alter(lambda editor: editor.add_constraint(FollowUp, constraint))  # validates every row
    response = owner_client.get(page)
    assert response.status_code == 200
    due = FollowUp.objects.get().due_at
    assert due.year == timezone.now().year + 5 and "typo" in response.content.decode()


# --- the inbox, its live rows and its CSV ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["inbox", "inbox_rows", "inbox_export"])
@pytest.mark.parametrize(
    "query, message",
    [
        ({"delivered_to": "9999-12-31"}, "Choose a date no later than Dec 31, "),
        ({"delivered_from": "0001-01-01"}, "Choose a date from Jan 1, 2000 on."),
        ({"subscription": "99999999999999"}, "Ensure this value is less than or equal to 2147483647."),
    ],
)
def test_inbox_filters_out_of_range_answer_400_with_the_reason(owner_client, delivery, name, query, message):
    """Issue 11.9: `/portal/?delivered_to=9999-12-31`, the rows and the CSV with it were 500s (a day after
    9999-12-31 does not exist). The CSV no longer falls back to exporting every lead either."""
    response = owner_client.get(reverse(f"portal:{name}"), query)
    assert response.status_code == 400
    assert message in _text(response)
    if name != "inbox":  # the page shows the list unfiltered beside the reason; these answer only the reason
        assert "Maria" not in _text(response)


def test_inbox_filters_in_range_still_filter(owner_client, delivery):
    """Issue 11.9: a valid range is unaffected by the bounds."""
    today = timezone.localdate(timezone=ZoneInfo(delivery.lender.time_zone))
    response = owner_client.get(
        reverse("portal:inbox"), {"delivered_from": "2000-01-01", "delivered_to": today}
    )
    assert response.status_code == 200 and "Maria" in response.content.decode()


# --- analytics ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["analytics", "analytics_csv"])
@pytest.mark.parametrize("revenue", [{}, {"revenue": "3000"}])
def test_analytics_range_in_year_9999_answers_400_with_the_reason(owner_client, delivery, name, revenue):
    """Issue 11.9: `/portal/analytics/?start=9999-12-30&end=9999-12-31` was a 500 (its next day overflows)."""
    response = owner_client.get(
        reverse(f"portal:{name}"), {"start": "9999-12-30", "end": "9999-12-31", **revenue}
    )
    assert response.status_code == 400
    assert f"Choose a date no later than Dec 31, {latest_date().year}." in _text(response)


# --- subscriptions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, limit",
    [
        ("daily_cap", "99999999999999", "100000"),
        ("monthly_cap", "99999999999999", "3100000"),
        ("radius_miles", "99999999999999", "500"),
    ],
)
def test_a_subscription_count_out_of_range_is_refused_beside_the_field(
    owner_client, buying_lender, field, value, limit
):
    """Issue 11.9: `daily_cap=99999999999999` was a 500 (integer out of range in PostgreSQL)."""
    extra = {"radius_center_zip": "78701"} if field == "radius_miles" else {}
    response = owner_client.post(reverse("portal:subscription_create"), form_data(**{field: value}, **extra))
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [f"Ensure this value is less than or equal to {limit}."]
    assert not Subscription.objects.exists()


def test_a_subscription_at_the_cap_limits_is_saved(owner_client, buying_lender):
    """Issue 11.9: the business limits themselves are accepted."""
    response = owner_client.post(
        reverse("portal:subscription_create"), form_data(daily_cap="100000", monthly_cap="3100000")
    )
    assert response.status_code == 302
    sub = Subscription.objects.get()
    assert (sub.daily_cap, sub.monthly_cap) == (100000, 3100000)


# --- the invariant: every form takes its dates and counts from marketplace.formfields --------------------


def _form_classes():
    for module in (portal_forms, forms_money, integration_forms, public_forms):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, forms.BaseForm) and cls.__module__ == module.__name__:
                yield cls


@pytest.mark.parametrize("form_class", list(_form_classes()), ids=lambda c: c.__name__)
def test_every_portal_and_public_form_bounds_its_dates_and_counts(form_class):
    """Issue 11.9: one place bounds dates and counts; a plain DateField, DateTimeField or IntegerField in a
    portal or public form would take year 9999 or 10^14 again."""
    bounded = (BoundedDateField, BoundedDateTimeField, BoundedIntegerField)
    for name, field in form_class.base_fields.items():
        if isinstance(field, forms.DecimalField):  # its digits bound it, as its column's do
            assert field.max_digits is not None, f"{form_class.__name__}.{name} has no max_digits"
        elif isinstance(field, (forms.DateField, forms.DateTimeField, forms.IntegerField)):
            assert isinstance(field, bounded), f"{form_class.__name__}.{name} is unbounded"


def test_bounded_fields_say_what_is_allowed():
    """Issue 11.9: the messages name the limit, in words a lender reads."""
    field = BoundedDateField()
    with pytest.raises(forms.ValidationError) as late:
        field.clean("9999-12-31")
    assert late.value.messages == [f"Choose a date no later than Dec 31, {latest_date().year}."]
    assert field.clean(latest_date().isoformat()) == latest_date()
    assert field.clean("2000-01-01") == date(2000, 1, 1)
    with pytest.raises(ValueError):
        BoundedIntegerField(max_value=2**31)


# --- found by the form walker (test_form_walker.py) -----------------------------------------------------


def test_an_invitation_to_an_address_longer_than_its_column_is_refused(owner_client, buying_lender):
    """Issue 11.9, found by the walker: an e-mail address over 254 characters passed the invitation form and
    was a 500 (value too long for the column)."""
    email = "x" * 300 + "@example.com"
    response = owner_client.post(reverse("portal:team"), {"email": email, "role": "officer"})
    assert response.status_code == 400
    assert "Ensure this value has at most 254 characters" in response.content.decode()


# --- admin where it matters -----------------------------------------------------------------------------


def test_admin_refuses_a_lender_time_zone_that_is_not_one(client, staff, buying_lender):
    """Issue 11.9 (admin): a lender's time zone was free text; a typo stored there made every sale to the
    lender raise (its day and schedule are read in that zone). It is refused beside the field."""
    client.force_login(staff)
    page = reverse("admin:lenders_lender_change", args=[buying_lender.pk])
    form = client.get(page).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    inlines = {
        "licenses-TOTAL_FORMS": "0",
        "licenses-INITIAL_FORMS": "0",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    response = client.post(page, {**data, **inlines, "time_zone": "America/Chicag"})
    assert response.status_code == 200
    assert "Enter a time zone such as America/Chicago" in response.content.decode()
    buying_lender.refresh_from_db()
    assert buying_lender.time_zone == "America/Chicago"
    response = client.post(page, {**data, **inlines, "time_zone": " America/Denver "})
    assert response.status_code == 302
    buying_lender.refresh_from_db()
    assert buying_lender.time_zone == "America/Denver"
