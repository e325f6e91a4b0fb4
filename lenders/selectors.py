"""Reads of lenders and their people shared by the portal and the apps above."""

from .models import Membership


def membership_of(*, lender_id: int, user_id: int) -> Membership | None:
    """The user's membership at this lender (active or not: a letter or a lead still names a former officer),
    with the user; None when they do not work there."""
    return Membership.objects.select_related("user").filter(lender_id=lender_id, user_id=user_id).first()
