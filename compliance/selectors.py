"""Reads of the compliance app shared by the send paths and the portal: whether a consumer may be reached."""

from functools import reduce
from operator import or_

from django.db.models import Q

from .models import OptOut
from .services import optout_address_hash


def optout_active(*, channel: str, address: str) -> bool:
    """Has the consumer at `address` stopped `channel`? One indexed query."""
    digest = optout_address_hash(channel=channel, address=address)
    return (
        bool(digest)
        and OptOut.objects.filter(channel=channel, address_sha256=digest, revoked_at__isnull=True).exists()
    )


def optouts_for_contact(*, phone: str, email: str) -> set[str]:
    """The channels a consumer with this phone and e-mail has stopped (the lead page's badges): one query."""
    wanted = [
        Q(channel=channel, address_sha256=digest)
        for channel, address in ((OptOut.Channel.SMS, phone), (OptOut.Channel.EMAIL, email))
        if (digest := optout_address_hash(channel=channel, address=address))
    ]
    if not wanted:
        return set()
    return set(
        OptOut.objects.filter(reduce(or_, wanted), revoked_at__isnull=True)
        .values_list("channel", flat=True)
        .distinct()
    )
