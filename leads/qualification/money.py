"""Decimal money helpers for the qualification engine: parsing, rounding and amortization."""

from __future__ import annotations

import functools
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
TWELVE = Decimal(12)


def to_decimal(value: object, *, field: str = "value") -> Decimal:
    """A Decimal from a Decimal, int or numeric string. Floats are refused: money is never float."""
    if isinstance(value, bool):
        raise TypeError(f"{field} must be a Decimal, int or string, not bool")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except ArithmeticError as exc:
            raise ValueError(f"{field} is not a number: {value!r}") from exc
    else:
        raise TypeError(f"{field} must be a Decimal, int or string, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{field} must be a finite number")
    return result


def cents(amount: Decimal) -> Decimal:
    """Round to cents, half up: how payments, fees and taxes are quoted."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def cents_down(amount: Decimal) -> Decimal:
    """Round down to cents: used for loan amounts we say someone can borrow, so we never overstate them."""
    return amount.quantize(CENT, rounding=ROUND_DOWN)


@functools.lru_cache(maxsize=256)
def payment_factor(annual_rate: Decimal, years: int) -> Decimal:
    """Monthly payment per 1 of principal, unrounded. `annual_rate` is a percentage (6.5 means 6.5%).

    Remembered per (rate, term): a rate sheet has a handful, and the 360th power at 34 digits was the
    engine's costliest step, asked for several times per product."""
    if years <= 0:
        raise ValueError("years must be positive")
    if annual_rate < 0:
        raise ValueError("annual_rate must not be negative")
    months = years * 12
    with localcontext() as ctx:
        ctx.prec = 34
        r = Decimal(annual_rate) / HUNDRED / TWELVE
        if r == 0:
            return Decimal(1) / Decimal(months)
        growth = (1 + r) ** months
        return +(r * growth / (growth - 1))


def monthly_payment(principal: Decimal, annual_rate: Decimal, years: int) -> Decimal:
    """Standard amortized monthly payment (principal and interest), rounded half up to cents.

    `annual_rate` is a percentage (7.5 means 7.5%):
    monthly_payment(Decimal("200000"), Decimal("7.5"), 15) == Decimal("1854.02").
    """
    principal = to_decimal(principal, field="principal")
    annual_rate = to_decimal(annual_rate, field="annual_rate")
    if principal < 0:
        raise ValueError("principal must not be negative")
    if principal == 0:
        return ZERO
    return cents(principal * payment_factor(annual_rate, years))
