"""A queryset for append-only tables (consent records, ledger entries)."""

from django.core.exceptions import ValidationError
from django.db import models


class AppendOnlyQuerySet(models.QuerySet):
    """Bulk updates and deletes would bypass the model's save/delete guards; refuse them here too.
    On PostgreSQL a trigger refuses them in the database as well (compliance migration 0002)."""

    def update(self, **kwargs):
        raise ValidationError(f"{self.model._meta.verbose_name_plural} are append-only.")

    def delete(self):
        raise ValidationError(f"{self.model._meta.verbose_name_plural} are append-only.")
