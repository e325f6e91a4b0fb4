"""Fixtures the portal's tests share with the API's (a lead sold to the buying lender)."""

from integrations.tests.conftest import delivery  # noqa: F401 - a fixture, used by name
