"""Personal data handled with care: who viewed a consumer's contact details, erasure on request and by
retention (an event the apps above scrub their copies on), append-only evidence."""

from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance (PII access, erasure)"
