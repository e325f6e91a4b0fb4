"""Pages for long lists, whose cost does not grow with the list:
- CappedPaginator counts up to a cap: a list's count is one index scan of at most `cap` rows, however many
  rows match, so a page costs the same at 1,000 rows and at 100,000.
- keyset_page reads a list newest first from where the last page stopped: page 1,000 is one indexed range,
  as page 1 is, and no page counts the list. A cursor names the row a page starts after ("older than") or
  before ("newer than"): its time in whole microseconds since the epoch and its id, e.g.
  `1796745823123456.4211`. The list must be ordered by (time DESC, id DESC) with an index in that order
  after its equality filters (e.g. account, time, id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
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


# --- keyset pages --------------------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# Cursors outside these bounds were not made by a page of ours: refused rather than read.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class BadCursor(ValueError):
    """A cursor that no page of ours made (edited or truncated by hand)."""


def cursor_make(when: datetime, pk: int) -> str:
    return f"{(when - EPOCH) // MICROSECOND}.{pk}"


def cursor_read(text: str) -> tuple[datetime, int]:
    micros, sep, pk = text.partition(".")
    if not sep or not micros.isdigit() or not pk.isdigit() or len(micros) > 17 or len(pk) > 19:
        raise BadCursor("This page link is not one of ours: go back to the first page.")
    when = EPOCH + int(micros) * MICROSECOND
    if not EARLIEST <= when < LATEST or int(pk) >= 2**63:
        raise BadCursor("This page link is not one of ours: go back to the first page.")
    return when, int(pk)


@dataclass
class KeysetPage:
    """A page with the attributes the portal's pager reads: has_previous (newer rows exist), has_next
    (older ones do) and the query strings that open those pages."""

    object_list: list[Any]
    has_previous: bool
    has_next: bool
    previous_query: str = ""
    next_query: str = ""
    keyset: bool = True

    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)


def keyset_page(
    qs: QuerySet, *, size: int, older_than: str = "", newer_than: str = "", time_field: str = "created_at"
) -> KeysetPage:
    """One page of `qs` (newest first): the newest `size` rows, or those just older than the cursor
    `older_than`, or just newer than `newer_than`. One query. Raises BadCursor for a cursor not ours."""
    t = time_field
    if newer_than:
        when, pk = cursor_read(newer_than)
        # The bound on the time alone is what the index can seek to; the OR then settles equal times.
        rows = list(
            qs.filter(Q(**{f"{t}__gt": when}) | Q(**{t: when, "pk__gt": pk}), **{f"{t}__gte": when}).order_by(
                t, "pk"
            )[: size + 1]
        )
        if len(rows) <= size:
            # Back at the top: show the newest full page rather than the few rows left above the cursor.
            return keyset_page(qs, size=size, time_field=time_field)
        has_previous, has_next = True, True
        rows = rows[:size][::-1]
    else:
        if older_than:
            when, pk = cursor_read(older_than)
            qs = qs.filter(Q(**{f"{t}__lt": when}) | Q(**{t: when, "pk__lt": pk}), **{f"{t}__lte": when})
        rows = list(qs.order_by(f"-{t}", "-pk")[: size + 1])
        has_previous, has_next = bool(older_than), len(rows) > size
        rows = rows[:size]
    page = KeysetPage(object_list=rows, has_previous=has_previous and bool(rows), has_next=has_next)
    if rows:
        page.previous_query = f"newer_than={cursor_make(getattr(rows[0], t), rows[0].pk)}"
        page.next_query = f"older_than={cursor_make(getattr(rows[-1], t), rows[-1].pk)}"
    return page
