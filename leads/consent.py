"""The consent disclosure shown beside the form's checkbox and stored verbatim with every lead.

The text is legal evidence (TCPA): never edit a published version in place. To change the wording, add a
new version below, point CONSENT_VERSION / CONSENT_TEXT at it and keep the old one, so that every stored
ConsentRecord (which keeps the text and its SHA-256) can still be matched to the version it was shown as.
"""

import hashlib

CONSENT_VERSIONS: dict[str, str] = {
    "2025-01": (
        "By checking this box I agree that Lead Market and up to 3 lenders who buy my request may contact me "
        "at the phone number and e-mail I gave, including by autodialed calls and texts, about mortgage "
        "products. Consent is not a condition of any purchase. Message and data rates may apply. "
        "I can opt out at any time."
    ),
}

CONSENT_VERSION = "2025-01"
CONSENT_TEXT = CONSENT_VERSIONS[CONSENT_VERSION]


def consent_sha256(text: str) -> str:
    """The hash ConsentRecord stores for a text (same recipe as ConsentRecord.save)."""
    return hashlib.sha256(text.encode()).hexdigest()


def consent_version_for(text_sha256: str) -> str | None:
    """Which published version a stored ConsentRecord's hash belongs to, or None if it matches none."""
    for version, text in CONSENT_VERSIONS.items():
        if consent_sha256(text) == text_sha256:
            return version
    return None
