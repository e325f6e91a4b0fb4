"""The signed link to a consumer's result page that their confirmation e-mail carries (`/r/<token>/`).

Signed with SECRET_KEY rather than being the bare public id, so the e-mail's link names the request only
through a value we made; it does not expire, as the consumer may look for it weeks later."""

from __future__ import annotations

import uuid

from django.core import signing

RESULT_SALT = "leads.result-link"


def result_link_token(*, public_id: uuid.UUID) -> str:
    return signing.dumps(public_id.hex, salt=RESULT_SALT)


def result_link_read(token: str) -> uuid.UUID | None:
    """The public id a token we signed names; None for anything else."""
    try:
        return uuid.UUID(hex=str(signing.loads(token, salt=RESULT_SALT)))
    except (signing.BadSignature, TypeError, ValueError):
        return None
