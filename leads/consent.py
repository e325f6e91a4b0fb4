"""The consent disclosure shown beside the form's checkbox and stored verbatim with every lead.

The text is legal evidence (TCPA): never edit a published version in place. To change the wording, add a
new version below, point CONSENT_VERSION / CONSENT_TEXT at it and keep the old one, so that every stored
ConsentRecord (which keeps the text and its SHA-256) can still be matched to the version it was shown as.
"""

import hashlib
import re

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


# Which published versions the consumer agreed to texts in (TCPA: texts need the consumer's express consent,
# and the disclosure must say so). A new version says here whether it covers texts; one missing from this
# table covers none.
CONSENT_COVERS_TEXTS: dict[str, bool] = {
    "2025-01": True,  # "...including by autodialed calls and texts..."
}

# A partner's own disclosure (API intake stores its text verbatim) covers texts when it names them: "texts",
# "text messages", "SMS". Whole words only, so "context" is no consent.
_TEXTS_NAMED = re.compile(r"\b(texts?|text messages?|texting|sms)\b", re.IGNORECASE)


def consent_covers_texts(*, text: str, text_sha256: str = "") -> bool:
    """Did the consumer agree to be texted? Our own form's versions answer from CONSENT_COVERS_TEXTS; any
    other text (a partner's) only if it names texts in so many words. An empty text covers nothing."""
    version = consent_version_for(text_sha256 or consent_sha256(text))
    if version is not None:
        return CONSENT_COVERS_TEXTS.get(version, False)
    return bool(text) and _TEXTS_NAMED.search(text) is not None
