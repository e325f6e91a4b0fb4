"""LeadForm: what a consumer (or a partner's API call) may send, and what reaches lead_submit."""

from decimal import Decimal

import pytest

from leads.forms import LeadForm
from leads.services import CONSUMER_FIELDS, LEAD_FIELDS
from marketplace.tests.factories import FORM_DATA


def form_with(**changes) -> LeadForm:
    data = {**FORM_DATA, **changes}
    for key in [k for k, v in changes.items() if v is None]:
        del data[key]
    form = LeadForm(data)
    form.is_valid()
    return form


def refinance(**changes) -> dict:
    return {
        **FORM_DATA,
        "purpose": "refinance",
        "property_value": "500000",
        "mortgage_balance": "250000",
        "cash_out": "",
        "purchase_price": "",
        "down_payment": "",
        "desired_loan_amount": "",
        **changes,
    }


def home_equity(**changes) -> dict:
    return {**refinance(), "purpose": "home_equity", "line_amount": "50000", **changes}


def test_factory_submission_is_valid_and_gives_exactly_the_service_fields():
    form = form_with()
    assert form.is_valid(), form.errors
    assert set(form.cleaned_data) == set(LEAD_FIELDS + CONSUMER_FIELDS)
    data = form.cleaned_data
    assert data["property_value"] == Decimal("400000.00")
    assert data["property_value"].as_tuple().exponent == -2
    assert data["phone"] == "5125550142"
    assert data["cash_out"] == Decimal("0.00")
    assert data["mortgage_balance"] is None
    assert data["first_time_buyer"] is True
    assert data["military_service"] is False
    assert form.honeypot_tripped is False


@pytest.mark.parametrize(
    "phone", ["(512) 555-0142", "+1 512 555 0142", "512.555.0142", "15125550142", "5125550142"]
)
def test_us_phone_formats_are_normalised_to_ten_digits(phone):
    form = form_with(phone=phone)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["phone"] == "5125550142"


@pytest.mark.parametrize(
    "phone", ["555-0142", "(012) 555-0142", "512 155 0142", "call me", "+44 20 7946 0958", "٥١٢٥٥٥٠١٤٢"]
)
def test_bad_phones_are_refused(phone):
    form = form_with(phone=phone)
    assert "phone" in form.errors


def test_zip_plus_four_is_stored_as_five_digits():
    form = form_with(zip_code="78701-1234")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["zip_code"] == "78701"


def test_unknown_zip_is_refused_by_name():
    form = form_with(zip_code="00000")
    assert form.errors["zip_code"] == ["We could not find ZIP code 00000."]


@pytest.mark.parametrize("zip_code", ["7870", "ABCDE", "787011", "٧٨٧٠١"])
def test_malformed_zip_is_refused(zip_code):
    assert form_with(zip_code=zip_code).errors["zip_code"] == ["Enter a 5-digit ZIP code, like 78701."]


@pytest.mark.parametrize(
    "field",
    [
        "purpose", "zip_code", "property_type", "occupancy", "credit_range", "annual_income", "monthly_debts",
        "timeline", "first_name", "last_name", "email", "phone", "consent",
    ],
)  # fmt: skip
def test_each_required_field_has_its_own_message(field):
    form = form_with(**{field: None})
    assert list(form.errors) == [field]
    message = form.errors[field][0]
    assert message != "This field is required."
    assert message.endswith(".")


def test_consent_is_required():
    assert form_with(consent=None).errors["consent"] == [
        "Tick the box to agree to be contacted; we can't pass on your request without it."
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NaN", "Enter the home's value in dollars, like 250,000."),
        ("Infinity", "Enter the home's value in dollars, like 250,000."),
        ("-Infinity", "The home's value can't be negative."),
        ("1e6", "Enter the home's value in dollars, like 250,000."),
        ("-400000", "The home's value can't be negative."),
        ("9" * 5000, "The home's value must be $50,000,000 or less."),
        ("50000001", "The home's value must be $50,000,000 or less."),
        ("9999", "The home's value must be at least $10,000."),
        ("400000.555", "Use dollars and cents only (at most two decimal places)."),
        ("٤٠٠٠٠٠", "Enter the home's value in dollars, like 250,000."),
        ("4,00,000", "Enter the home's value in dollars, like 250,000."),
    ],
)
def test_hostile_money_is_refused_with_a_message(value, message):
    assert form_with(property_value=value).errors["property_value"] == [message]


@pytest.mark.parametrize("value", ["$400,000", "400,000.00", " 400000 ", "400000.5"])
def test_money_as_people_type_it_is_accepted(value):
    form = form_with(property_value=value)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["property_value"] == Decimal(
        value.strip().lstrip("$").replace(",", "")
    ).quantize(Decimal("0.01"))


@pytest.mark.parametrize("value", [["400000"], {"a": 1}, True, float("nan"), float("inf"), object()])
def test_json_shaped_values_from_the_api_do_not_crash(value):
    form = LeadForm({**FORM_DATA, "property_value": value, "first_name": value})
    assert not form.is_valid()
    assert "property_value" in form.errors


def test_api_numbers_are_accepted():
    form = LeadForm(
        {**FORM_DATA, "property_value": 400000, "annual_income": Decimal("120000.5"), "consent": True}
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["annual_income"] == Decimal("120000.50")


def test_income_and_debts_have_sane_maxima():
    form = form_with(annual_income="100000001", monthly_debts="10000001")
    assert form.errors["annual_income"] == ["Your yearly income must be $100,000,000 or less."]
    assert form.errors["monthly_debts"] == ["Your monthly debt payments must be $10,000,000 or less."]


@pytest.mark.parametrize("name", ["José", "O'Brien-Smith", "Mary Ann", "Nguyễn", "Jr."])
def test_real_names_are_accepted(name):
    assert form_with(first_name=name).is_valid()


@pytest.mark.parametrize(
    "name", ["<script>", "Robert'); DROP TABLE", "12345", "a\u202eb", "x" * 81, "a\x00b"]
)
def test_odd_names_are_refused(name):
    assert "first_name" in form_with(first_name=name).errors


def test_email_domain_is_lowered():
    form = form_with(email="Maria.G@Example.COM")
    assert form.is_valid()
    assert form.cleaned_data["email"] == "Maria.G@example.com"


# --- purchase: derive what is missing ---------------------------------------------------------------------


def test_purchase_loan_is_price_minus_down_payment_when_blank():
    form = form_with(desired_loan_amount="")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["desired_loan_amount"] == Decimal("360000.00")


def test_purchase_down_payment_is_derived_from_the_loan():
    form = form_with(down_payment="", desired_loan_amount="300000")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["down_payment"] == Decimal("100000.00")


def test_purchase_price_defaults_to_the_home_value_and_value_to_the_price():
    form = form_with(purchase_price="")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["purchase_price"] == Decimal("400000.00")
    form = form_with(property_value="")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["property_value"] == Decimal("400000.00")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"purchase_price": "", "property_value": ""},
            "purchase_price",
            "Enter the purchase price (or your estimate of the home's value).",
        ),
        (
            {"down_payment": "", "desired_loan_amount": ""},
            "down_payment",
            "Enter your down payment, or how much you would like to borrow.",
        ),
        (
            {"down_payment": "400000"},
            "down_payment",
            "Your down payment must be less than the price ($400,000).",
        ),
        (
            {"down_payment": "", "desired_loan_amount": "500000"},
            "desired_loan_amount",
            "The loan can't be more than the price ($400,000).",
        ),
        (
            {"property_value": "300000", "desired_loan_amount": ""},
            "desired_loan_amount",
            "The loan can't be more than the home's value ($300,000).",
        ),
        (
            {"desired_loan_amount": "380000"},
            "desired_loan_amount",
            "Your down payment plus the loan is more than the price; with $40,000 down the loan can be up to "
            "$360,000.",
        ),
        ({"down_payment": "395000"}, "desired_loan_amount", "The loan must be at least $10,000."),
    ],
)
def test_purchase_amounts_must_add_up(changes, field, message):
    if "down_payment" in changes and "desired_loan_amount" not in changes:
        changes = {**changes, "desired_loan_amount": ""}
    form = form_with(**changes)
    assert form.errors[field] == [message]


def test_purchase_ignores_a_slip_in_the_refinance_boxes():
    form = form_with(mortgage_balance="abc", cash_out="-5", line_amount="x")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["mortgage_balance"] is None


# --- refinance and home equity ----------------------------------------------------------------------------


def test_refinance_loan_is_balance_plus_cash_out():
    form = LeadForm(refinance(cash_out="30,000", purchase_price="garbage", first_time_buyer="on"))
    assert form.is_valid(), form.errors
    data = form.cleaned_data
    assert set(data) == set(LEAD_FIELDS + CONSUMER_FIELDS)
    assert data["desired_loan_amount"] == Decimal("280000.00")
    assert data["cash_out"] == Decimal("30000.00")
    assert data["purchase_price"] is None and data["down_payment"] is None
    assert data["first_time_buyer"] is False


def test_refinance_needs_value_and_balance():
    form = LeadForm(refinance(property_value="", mortgage_balance=""))
    assert not form.is_valid()
    assert form.errors["property_value"] == ["Enter your best estimate of the home's value."]
    assert form.errors["mortgage_balance"] == ["Enter what you still owe on your mortgage (0 if nothing)."]


def test_refinance_balance_far_above_value_is_questioned():
    form = LeadForm(refinance(mortgage_balance="2500000"))
    assert form.errors["mortgage_balance"] == [
        "This is far more than the home's value ($500,000); please check both amounts."
    ]


def test_refinance_cash_out_below_value():
    form = LeadForm(refinance(cash_out="500000"))
    assert form.errors["cash_out"] == ["The cash out must be less than the home's value ($500,000)."]


def test_home_equity_line_from_the_form_box():
    form = LeadForm(home_equity(desired_loan_amount="999"))  # the buying box is ignored
    assert form.is_valid(), form.errors
    assert form.cleaned_data["desired_loan_amount"] == Decimal("50000.00")
    assert "line_amount" not in form.cleaned_data


def test_home_equity_line_from_the_api_field():
    data = home_equity(desired_loan_amount="60000")
    del data["line_amount"]
    form = LeadForm(data)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["desired_loan_amount"] == Decimal("60000.00")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "Enter the size of the home equity line you would like."),
        ("5000", "A home equity line must be at least $10,000."),
        ("500000", "The line must be less than the home's value ($500,000)."),
    ],
)
def test_home_equity_line_is_checked_beside_its_box(line, message):
    assert LeadForm(home_equity(line_amount=line)).errors["line_amount"] == [message]


# --- honeypot ---------------------------------------------------------------------------------------------


def test_honeypot_is_reported_but_not_an_error():
    form = form_with(website="http://spam.example")
    assert form.is_valid()
    assert form.honeypot_tripped is True
    assert "website" not in form.cleaned_data


def test_empty_form_does_not_crash():
    form = LeadForm({})
    assert not form.is_valid()
    assert form.honeypot_tripped is False


def test_a_change_to_one_visitors_form_never_reaches_the_next():
    """Issue 13.5: `_SharedFields` gave every LeadForm the class's own field and widget objects (to save
    Django's per-form deep copy), so a change made to one request's form, such as focusing a field or
    relaxing one, showed in every later visitor's form, on every thread. Each form has its own fields."""
    first = LeadForm()
    first.fields["email"].widget.attrs["autofocus"] = True
    first.fields["phone"].required = False
    first.fields["zip_code"].error_messages["required"] = "A message for one visitor only."

    second = LeadForm({**FORM_DATA, "phone": "", "zip_code": ""})
    assert "autofocus" not in str(second["email"])
    assert not second.is_valid()
    assert second.errors["phone"] and second.errors["zip_code"] != ["A message for one visitor only."]
