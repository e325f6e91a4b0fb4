"""Factories for tests: build real rows through the same services the product uses."""

from decimal import Decimal

import factory
from django.contrib.auth.models import User

from billing.models import Account
from billing.services import account_top_up
from leads.models import Consumer, Lead
from lenders.models import Lender, Membership, Subscription
from lenders.services import lender_set_licenses, subscription_save

# A valid consumer form submission (Austin, TX purchase) that qualifies comfortably.
FORM_DATA = {
    "purpose": "purchase",
    "zip_code": "78701",
    "property_type": "single_family",
    "occupancy": "primary",
    "property_value": "400000",
    "purchase_price": "400000",
    "down_payment": "40000",
    "mortgage_balance": "",
    "cash_out": "",
    "desired_loan_amount": "360000",
    "credit_range": "660_679",
    "annual_income": "120000",
    "monthly_debts": "500",
    "military_service": "",
    "first_time_buyer": "on",
    "timeline": "3_months",
    "first_name": "Maria",
    "last_name": "Gonzalez",
    "email": "maria@example.com",
    "phone": "512-555-0142",
    "consent": "on",
}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pass-12345")


class LenderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lender
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Lender {n}")
    nmls_id = factory.Sequence(lambda n: str(100000 + n))
    time_zone = "America/Chicago"

    @factory.post_generation
    def states(obj, create, extracted, **kwargs):
        lender_set_licenses(lender=obj, states=extracted or ["TX"])

    @factory.post_generation
    def balance(obj, create, extracted, **kwargs):
        account = Account.objects.create(lender=obj)
        if extracted:
            account_top_up(account_id=account.pk, amount=Decimal(extracted), memo="Opening balance")


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    lender = factory.SubFactory(LenderFactory)
    role = Membership.Role.OWNER

    @classmethod
    def _create(cls, model_class, *args, username=None, **kwargs):
        if username:
            kwargs["user"] = UserFactory(username=username)
        return super()._create(model_class, *args, **kwargs)


def make_subscription(lender: Lender, *, states=("TX",), zips=(), **terms) -> Subscription:
    data = {"name": terms.pop("name", "All leads"), "price": Decimal(str(terms.pop("price", "40.00")))}
    data.update(terms)
    return subscription_save(lender=lender, data=data, states=list(states), zips=list(zips))


class ConsumerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consumer

    first_name = "Maria"
    last_name = "Gonzalez"
    email = factory.Sequence(lambda n: f"consumer{n}@example.com")
    phone = factory.Sequence(lambda n: f"512555{n:04d}")


class QualifiedLeadFactory(factory.django.DjangoModelFactory):
    """A lead as the engine leaves it: qualified and ready to sell (skips the engine for speed)."""

    class Meta:
        model = Lead

    consumer = factory.SubFactory(ConsumerFactory)
    status = "qualified"
    purpose = "purchase"
    zip_code = "78701"
    city = "Austin"
    state = "TX"
    county = "Travis County"
    property_type = "single_family"
    occupancy = "primary"
    property_value = Decimal("400000")
    purchase_price = Decimal("400000")
    down_payment = Decimal("40000")
    desired_loan_amount = Decimal("360000")
    requested_loan = Decimal("360000")
    estimate = Decimal("420000")
    qualified_loan = Decimal("360000")
    ltv = Decimal("90.00")
    dti = Decimal("35.00")
    credit_range = "660_679"
    annual_income = Decimal("120000")
    monthly_debts = Decimal("500")
    timeline = "3_months"
    products = ["conventional", "fha"]


def lender_mail(outbox: list) -> list:
    """The e-mails to lenders' people among `outbox` (django.core.mail.outbox): a sale also e-mails the
    consumer (the buyer's first touch and the marketplace's confirmation, integrations.outreach)."""
    consumers = set(Consumer.objects.values_list("email", flat=True))
    return [m for m in outbox if not set(m.to) & consumers]
