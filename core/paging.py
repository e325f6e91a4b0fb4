"""A paginator that counts up to a cap: a list's count is one index scan of at most `cap` rows, however many
rows match, so a page costs the same at 1,000 rows and at 100,000."""

from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property


class CappedPaginator(Paginator):
    """Counts at most `cap` rows (`capped` says there are more); pages run to the cap. Past it, a list is
    narrowed by its filters, which a person reaching for row 10,001 needs anyway."""

    def __init__(self, object_list: QuerySet, per_page: int, *, cap: int, **kwargs: Any) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.queryset = object_list
        self.cap = cap
        self.capped = False

    @cached_property
    def count(self) -> int:
        # COUNT(*) over the first cap + 1 rows in the list's order (a LIMIT subquery).
        n = self.queryset[: self.cap + 1].count()
        self.capped = n > self.cap
        return min(n, self.cap)
