"""LeadForm: the one validator of a consumer's mortgage request, for the public form and the partner API.

It knows nothing of requests (no IP, no session): callers pass data in and read `cleaned_data`, whose keys are
exactly leads.services.LEAD_FIELDS + CONSUMER_FIELDS, ready for `lead_submit`. Every message is written for
the consumer and sits beside the field it is about.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from . import geo
from .choices import CreditRange, LoanPurpose, Occupancy, PropertyType, Timeline

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MIN_PROPERTY_VALUE = Decimal("10000")
MAX_PROPERTY_VALUE = Decimal("50000000")
MIN_LOAN = Decimal("10000")
MAX_INCOME = Decimal("100000000")
MAX_MONTHLY_DEBTS = Decimal("10000000")
# A balance far above the home's value is almost always a typing slip (an extra zero), not a borrower.
MAX_BALANCE_TO_VALUE = Decimal("1.5")

HONEYPOT = "website"
# The HTML form asks for a home equity line's size in its own section ("If you want a home equity line"), so
# that without JavaScript no input is shared between two purposes' sections. API clients send
# desired_loan_amount; `line_amount` is the form's alias for it and never reaches cleaned_data.
LINE_AMOUNT = "line_amount"

# Amounts that mean nothing for a purpose. Without JavaScript every section shows, so a person may type in
# another purpose's boxes: those values are ignored and a slip there never blocks the request.
IGNORED_FOR: dict[str, tuple[str, ...]] = {
    LoanPurpose.PURCHASE: ("mortgage_balance", "cash_out", LINE_AMOUNT),
    LoanPurpose.REFINANCE: (
        "purchase_price",
        "down_payment",
        "desired_loan_amount",
        LINE_AMOUNT,
        "first_time_buyer",
    ),
    LoanPurpose.HOME_EQUITY: ("purchase_price", "down_payment", "cash_out", "first_time_buyer"),
}

# ASCII digits only: Python's \d and Decimal() also accept Arabic-Indic and other digits, which we would then
# store and show back in a form lenders' systems do not expect.
_MONEY_RE = re.compile(r"\$?(?P<dollars>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
_ZIP_RE = re.compile(r"([0-9]{5})(?:[- ]?[0-9]{4})?")
_PHONE_RE = re.compile(r"[0-9()+.\- ]{7,25}")
_NAME_PUNCTUATION = frozenset(" '’-.")


def us_phone_digits(raw: str) -> str:
    """A US phone number as its 10 digits ("(512) 555-0142" -> "5125550142"), or a ValidationError saying
    what is expected. The one parser of a typed phone: the consumer's on the form, an officer's on their
    profile."""
    message = "Enter a 10-digit US phone number, like (512) 555-0142."
    if not _PHONE_RE.fullmatch(raw):
        raise ValidationError(message, code="invalid")
    digits = re.sub(r"[^0-9]", "", raw)
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) != 10:
        raise ValidationError(message, code="invalid")
    # North American numbering: area codes and exchanges never start with 0 or 1.
    if digits[0] in "01" or digits[3] in "01":
        raise ValidationError("That is not a valid US phone number; please check it.", code="invalid")
    return digits


def money(value: Decimal) -> str:
    """$1,234 or $1,234.50, as messages and pages show amounts."""
    return f"${value:,.0f}" if value == value.to_integral_value() else f"${value:,.2f}"


class MoneyField(forms.Field):
    """Dollars as a Decimal with two places. Accepts "250000", "250,000", "$250,000.50"; nothing else.

    Not forms.DecimalField: that one accepts "1e5", any Unicode digits and more than two places, and its
    messages talk about "digits" rather than dollars.
    """

    widget = forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "class": "input-money"})

    def __init__(
        self,
        *,
        min_value: Decimal = ZERO,
        max_value: Decimal,
        noun: str,
        required: bool = False,
        **kwargs: Any,
    ) -> None:
        self.min_value, self.max_value, self.noun = min_value, max_value, noun
        kwargs.setdefault("error_messages", {}).setdefault("required", f"Enter {noun.lower()}.")
        super().__init__(required=required, **kwargs)

    def to_python(self, value: Any) -> Decimal | None:
        if value in self.empty_values:
            return None
        invalid = ValidationError(f"Enter {self.noun.lower()} in dollars, like 250,000.", code="invalid")
        # The API may send JSON numbers; bool is an int in Python but never an amount.
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
            raise invalid
        if isinstance(value, str):
            text = value.strip().replace(" ", "")
            if text.startswith("-") and len(text) > 1:
                raise ValidationError(f"{self.noun} can't be negative.", code="negative")
            match = _MONEY_RE.fullmatch(text)
            if not match:
                raise invalid
            # Far beyond any maximum or any cent: say so rather than build a Decimal from megabytes of digits.
            if len(match["dollars"].replace(",", "").lstrip("0")) > 15:
                raise ValidationError(
                    f"{self.noun} must be {money(self.max_value)} or less.", code="max_value"
                )
            if len(text) > 40:
                raise ValidationError(
                    "Use dollars and cents only (at most two decimal places).", code="cents"
                )
            amount = Decimal(text.lstrip("$").replace(",", ""))
        else:
            try:
                amount = Decimal(str(value))
            except (InvalidOperation, ValueError):
                raise invalid from None
            if not amount.is_finite():
                raise invalid
            if amount < 0:
                raise ValidationError(f"{self.noun} can't be negative.", code="negative")
        # Range before quantize: quantizing a 40-digit amount would overflow the decimal context.
        if amount > self.max_value:
            raise ValidationError(f"{self.noun} must be {money(self.max_value)} or less.", code="max_value")
        if amount < self.min_value:
            raise ValidationError(f"{self.noun} must be at least {money(self.min_value)}.", code="min_value")
        if amount != amount.quantize(CENT):
            raise ValidationError("Use dollars and cents only (at most two decimal places).", code="cents")
        return amount.quantize(CENT)


class NameField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=80, **kwargs)

    def clean(self, value: Any) -> str:
        name = super().clean(value)
        # NFC first so "José" typed with a combining accent counts as letters.
        name = " ".join(unicodedata.normalize("NFC", name).split())
        if not any(ch.isalpha() for ch in name) or any(
            not (ch.isalpha() or ch in _NAME_PUNCTUATION) for ch in name
        ):
            raise ValidationError(
                "Use letters only (spaces, hyphens and apostrophes are fine).", code="invalid"
            )
        return name


def _required(message: str) -> dict[str, str]:
    return {"required": message, "invalid_choice": message}


class LeadForm(forms.Form):
    """A consumer's request for a mortgage. The purpose decides which amounts are needed; some are derived.

    Purchase: the price (or the home's value) and the down payment or loan amount; the rest is derived.
    Refinance: the home's value and the mortgage balance; the loan is the balance plus any cash out.
    Home equity: the home's value, the mortgage balance and the size of the line.
    Amounts that do not belong to the chosen purpose are ignored (without JavaScript every section shows).
    """

    purpose = forms.ChoiceField(
        label="What would you like to do?",
        choices=[
            (LoanPurpose.PURCHASE, "Buy a home"),
            (LoanPurpose.REFINANCE, "Refinance my mortgage"),
            (LoanPurpose.HOME_EQUITY, "Borrow against my home (home equity line)"),
        ],
        widget=forms.RadioSelect,
        error_messages=_required("Choose what you would like to do."),
    )
    zip_code = forms.CharField(
        label="ZIP code of the home",
        max_length=10,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "postal-code", "class": "input-zip"}
        ),
        error_messages={
            "required": "Enter the ZIP code of the home.",
            "max_length": "Enter a 5-digit ZIP code.",
        },
    )
    property_type = forms.ChoiceField(
        label="Type of home",
        choices=[("", "Choose…"), *PropertyType.choices],
        error_messages=_required("Choose the type of home."),
    )
    # Issue 12.7: 2-4 unit homes have loan limits of their own. Left blank, a multi-family home counts as two
    # units (the lowest 2-4 unit limit) and any other home as one.
    units = forms.TypedChoiceField(
        label="Number of units",
        choices=[("", "Choose…"), ("1", "1"), ("2", "2"), ("3", "3"), ("4", "4")],
        coerce=int,
        empty_value=None,
        required=False,
        help_text="For a multi-family home, how many homes it holds (2 to 4).",
        error_messages={"invalid_choice": "Choose 1, 2, 3 or 4 units."},
    )
    occupancy = forms.ChoiceField(
        label="How will you use it?",
        choices=[("", "Choose…"), *Occupancy.choices],
        error_messages=_required("Choose how you will use the home."),
    )
    property_value = MoneyField(
        label="Home's value (your best estimate)",
        noun="The home's value",
        min_value=MIN_PROPERTY_VALUE,
        max_value=MAX_PROPERTY_VALUE,
        help_text="Buying? You can leave this blank and we will use the price.",
    )
    purchase_price = MoneyField(
        label="Purchase price",
        noun="The purchase price",
        min_value=MIN_PROPERTY_VALUE,
        max_value=MAX_PROPERTY_VALUE,
    )
    down_payment = MoneyField(label="Down payment", noun="The down payment", max_value=MAX_PROPERTY_VALUE)
    mortgage_balance = MoneyField(
        label="What you still owe on your mortgage",
        noun="Your mortgage balance",
        max_value=MAX_PROPERTY_VALUE,
        help_text="If you are refinancing or want a home equity line. Enter 0 if the home is paid off.",
    )
    cash_out = MoneyField(
        label="Cash you would like to take out (optional)",
        noun="The cash out",
        max_value=MAX_PROPERTY_VALUE,
        help_text="Leave blank to refinance just what you owe.",
    )
    desired_loan_amount = MoneyField(
        label="Loan amount (optional)",
        noun="The loan amount",
        max_value=MAX_PROPERTY_VALUE,
        help_text="Leave blank and we will use the price minus your down payment.",
    )
    line_amount = MoneyField(
        label="Size of the line you would like",
        noun="The size of the line",
        max_value=MAX_PROPERTY_VALUE,
    )
    # A select, not eleven radio tiles: one tap opens the phone's own picker.
    credit_range = forms.ChoiceField(
        label="Your credit score",
        choices=[("", "Choose…"), *CreditRange.choices],
        help_text="Your best guess is fine; we do not check your credit.",
        error_messages=_required("Choose the range your credit score is in."),
    )
    annual_income = MoneyField(
        label="Household income per year, before tax",
        noun="Your yearly income",
        max_value=MAX_INCOME,
        required=True,
        error_messages={"required": "Enter your household income per year (0 if none)."},
    )
    monthly_debts = MoneyField(
        label="Monthly debt payments",
        noun="Your monthly debt payments",
        max_value=MAX_MONTHLY_DEBTS,
        required=True,
        help_text="Car, student loan and minimum card payments; not rent or a mortgage. 0 if none.",
        error_messages={"required": "Enter your monthly debt payments (0 if none)."},
    )
    military_service = forms.BooleanField(
        label="I served or serve in the U.S. military (VA loans)", required=False
    )
    first_time_buyer = forms.BooleanField(label="I am buying my first home", required=False)
    timeline = forms.ChoiceField(
        label="When would you like to get started?",
        choices=[("", "Choose…"), *Timeline.choices],
        error_messages=_required("Choose when you would like to get started."),
    )
    first_name = NameField(
        label="First name",
        widget=forms.TextInput(attrs={"autocomplete": "given-name"}),
        error_messages={"required": "Enter your first name.", "max_length": "Use 80 characters or fewer."},
    )
    last_name = NameField(
        label="Last name",
        widget=forms.TextInput(attrs={"autocomplete": "family-name"}),
        error_messages={"required": "Enter your last name.", "max_length": "Use 80 characters or fewer."},
    )
    email = forms.EmailField(
        label="E-mail",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={
            "required": "Enter your e-mail address.",
            "invalid": "Enter an e-mail address like name@example.com.",
            "max_length": "That e-mail address is too long.",
        },
    )
    phone = forms.CharField(
        label="Phone",
        max_length=25,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel-national", "inputmode": "tel"}),
        error_messages={
            "required": "Enter your phone number.",
            "max_length": "Enter a 10-digit US phone number, like (512) 555-0142.",
        },
    )
    consent = forms.BooleanField(
        # The label is the disclosure itself (leads.consent.CONSENT_TEXT), rendered by the template.
        label="I agree to be contacted",
        error_messages={
            "required": "Tick the box to agree to be contacted; we can't pass on your request without it."
        },
    )
    # Honeypot: hidden from people (CSS, aria-hidden, tabindex -1); bots that fill every input fill it.
    website = forms.CharField(
        label="Leave this field empty",
        required=False,
        strip=True,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )

    # The order the page asks in, so the error summary lists problems top to bottom.
    field_order = [
        "purpose", "timeline", "zip_code", "property_type", "units", "occupancy", "property_value",
        "mortgage_balance", "purchase_price", "down_payment", "desired_loan_amount", "first_time_buyer",
        "cash_out", LINE_AMOUNT,
        "credit_range", "annual_income", "monthly_debts", "military_service",
        "first_name", "last_name", "email", "phone", "consent", HONEYPOT,
    ]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._honeypot_tripped = False

    # --- single fields ------------------------------------------------------------------------------------

    def clean_zip_code(self) -> str:
        match = _ZIP_RE.fullmatch(self.cleaned_data["zip_code"])
        if not match:
            raise ValidationError("Enter a 5-digit ZIP code, like 78701.", code="invalid")
        zip5 = match.group(1)
        if geo.lookup_zip(zip5) is None:
            raise ValidationError(f"We could not find ZIP code {zip5}.", code="unknown")
        return zip5

    def clean_phone(self) -> str:
        return us_phone_digits(self.cleaned_data["phone"])

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        local, _, domain = email.rpartition("@")
        # Domains are case-insensitive; local parts, strictly, are not, so only the domain is lowered.
        return f"{local}@{domain.lower()}"

    # --- the request as a whole ---------------------------------------------------------------------------

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what Form.clean() returns; its stubs say Optional, for overrides
        self._honeypot_tripped = bool(data.pop(HONEYPOT, ""))
        data.pop("consent", None)  # required, so a valid form always consented; lead_submit stores the text
        line_amount = data.pop(LINE_AMOUNT, None)
        purpose = data.get("purpose") or ""  # "" when the purpose itself was refused
        ignored = list(IGNORED_FOR.get(purpose, ()))
        if purpose == LoanPurpose.HOME_EQUITY and LINE_AMOUNT in self.data:
            # The HTML form: the line's own box decides, and the buying section's loan box is ignored.
            ignored.append("desired_loan_amount")
        for name in ignored:
            self.errors.pop(name, None)
            if name != LINE_AMOUNT:
                data[name] = None
        if purpose == LoanPurpose.HOME_EQUITY and LINE_AMOUNT in self.data:
            data["desired_loan_amount"] = line_amount
        self._clean_units(data)
        if purpose == LoanPurpose.PURCHASE:
            self._clean_purchase(data)
        elif purpose == LoanPurpose.REFINANCE:
            self._clean_refinance(data)
        elif purpose == LoanPurpose.HOME_EQUITY:
            self._clean_home_equity(data)
        return data

    @property
    def honeypot_tripped(self) -> bool:
        """True when the hidden field was filled in: a bot. Read after is_valid()."""
        return self._honeypot_tripped

    def _any_error(self, *names: str) -> bool:
        # A field that already failed on its own would only produce confusing follow-on messages.
        return any(self.has_error(name) for name in names)

    def _clean_units(self, data: dict[str, Any]) -> None:
        if self._any_error("property_type", "units"):
            return
        multi = data.get("property_type") == PropertyType.MULTI_FAMILY
        units = data.get("units")
        if units is None:
            data["units"] = 2 if multi else 1
        elif multi and units == 1:
            self.add_error("units", "A multi-family home has 2 to 4 units; choose how many.")
        elif not multi and units > 1:
            self.add_error(
                "units", "Only a multi-family home has more than one unit; check the type of home."
            )

    def _clean_purchase(self, data: dict[str, Any]) -> None:
        names = ("property_value", "purchase_price", "down_payment", "desired_loan_amount")
        if self._any_error(*names):
            return
        value, price, down, loan = (data.get(n) for n in names)
        price = price if price is not None else value
        if price is None:
            self.add_error(
                "purchase_price", "Enter the purchase price (or your estimate of the home's value)."
            )
            return
        value = value if value is not None else price
        if down is None and loan is None:
            self.add_error("down_payment", "Enter your down payment, or how much you would like to borrow.")
            return
        if down is not None and down >= price:
            self.add_error("down_payment", f"Your down payment must be less than the price ({money(price)}).")
            return
        if loan is None:
            loan = price - down
        if loan > price:
            self.add_error("desired_loan_amount", f"The loan can't be more than the price ({money(price)}).")
            return
        if loan > value:
            self.add_error(
                "desired_loan_amount", f"The loan can't be more than the home's value ({money(value)})."
            )
            return
        if down is None:
            down = price - loan
        elif down + loan > price:
            self.add_error(
                "desired_loan_amount",
                f"Your down payment plus the loan is more than the price; with {money(down)} down "
                f"the loan can be up to {money(price - down)}.",
            )
            return
        if loan < MIN_LOAN:
            self.add_error("desired_loan_amount", f"The loan must be at least {money(MIN_LOAN)}.")
            return
        data.update(
            property_value=value,
            purchase_price=price,
            down_payment=down,
            desired_loan_amount=loan,
            mortgage_balance=None,
            cash_out=ZERO,
        )

    def _clean_owner_amounts(self, data: dict[str, Any]) -> tuple[Decimal, Decimal] | None:
        """Value and balance, which refinancing and home equity both need."""
        if self._any_error("property_value", "mortgage_balance"):
            return None
        value, balance = data.get("property_value"), data.get("mortgage_balance")
        if value is None:
            self.add_error("property_value", "Enter your best estimate of the home's value.")
        if balance is None:
            self.add_error("mortgage_balance", "Enter what you still owe on your mortgage (0 if nothing).")
        if value is None or balance is None:
            return None
        if balance > value * MAX_BALANCE_TO_VALUE:
            self.add_error(
                "mortgage_balance",
                f"This is far more than the home's value ({money(value)}); please check both amounts.",
            )
            return None
        return value, balance

    def _clean_refinance(self, data: dict[str, Any]) -> None:
        amounts = self._clean_owner_amounts(data)
        if amounts is None or self._any_error("cash_out"):
            return
        value, balance = amounts
        cash_out = data.get("cash_out") or ZERO
        if cash_out >= value:
            self.add_error("cash_out", f"The cash out must be less than the home's value ({money(value)}).")
            return
        loan = balance + cash_out
        if loan < MIN_LOAN:
            self.add_error(
                "mortgage_balance",
                f"A refinance needs a loan of at least {money(MIN_LOAN)}: your balance plus any cash out.",
            )
            return
        # The loan is what is owed plus the cash taken out; an amount typed in the loan box is ignored.
        data.update(
            purchase_price=None,
            down_payment=None,
            cash_out=cash_out,
            desired_loan_amount=loan,
            first_time_buyer=False,
        )

    def _clean_home_equity(self, data: dict[str, Any]) -> None:
        amounts = self._clean_owner_amounts(data)
        field = LINE_AMOUNT if LINE_AMOUNT in self.data else "desired_loan_amount"
        if amounts is None or self._any_error(field):
            return
        value, _balance = amounts
        line = data.get("desired_loan_amount")
        if line is None:
            self.add_error(field, "Enter the size of the home equity line you would like.")
            return
        if line < MIN_LOAN:
            self.add_error(field, f"A home equity line must be at least {money(MIN_LOAN)}.")
            return
        if line >= value:
            self.add_error(field, f"The line must be less than the home's value ({money(value)}).")
            return
        data.update(purchase_price=None, down_payment=None, cash_out=ZERO, first_time_buyer=False)
