"""Admin changelists over tables of millions of rows: what a list page may ask of the database.

- No count of the whole table beside the filtered one (`show_full_result_count = False`), and the filtered
  one counted only up to COUNT_CAP rows: beyond, the list says "2,000+ leads" (20 pages of 100; filters
  narrow it), where counting a million rows took most of the page's time.
- No wide columns the list does not show: `list_defer` names them (a related row's JSON through
  list_select_related, e.g. "lead__qualification"); the change page still reads them all.
- Filters whose choices are fixed (`fixed_choices_filter`), never Django's default for a plain field, which
  asks the database for the distinct values of the whole table on every page view.
- No date_hierarchy: its links cost a min/max and a distinct-dates scan of every matching row (repeating the
  search) on each view; a `created_at` list filter (today, past 7 days, this month, this year) costs nothing.
- Searches on indexes: the admin overrides get_search_results with exact lookups (see leads.search).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from .paging import CappedPaginator

COUNT_CAP = 2000


class AtLeast(int):
    """A count known only to be at least this many: prints as "2,000+" wherever the admin shows it (the
    result count, "Select all 2,000+ leads"), and pages like the number it is."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


class AdminCappedPaginator(CappedPaginator):
    """The admin's paginator (ModelAdmin.paginator is built with the admin's own arguments): counts up to
    `default_cap` (core.paging), and a capped count is an AtLeast, so every place the admin prints it says
    so."""

    default_cap = COUNT_CAP

    def __init__(self, object_list: QuerySet, per_page: int, orphans: int = 0, allow_empty_first_page=True):
        super().__init__(
            object_list,
            per_page,
            cap=self.default_cap,
            orphans=orphans,
            allow_empty_first_page=allow_empty_first_page,
        )

    @cached_property
    def count(self) -> int:
        n = super().count
        return AtLeast(n) if self.capped else n


class LargeListMixin:
    """For a ModelAdmin whose table grows without bound. Set `search_q` (wrapped in staticmethod): a
    function of (term, path=...) that returns a Q of exact, indexed lookups, or None when the term names
    nothing (the list is then empty); `search_path` reaches its model from this one (e.g. "lead__")."""

    show_full_result_count = False
    paginator: ClassVar[type] = AdminCappedPaginator
    list_defer: Sequence[str] = ()
    search_q: Callable[..., Q | None] | None = None
    search_path = ""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if self.search_q is None:
            return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        if not search_term.strip():
            return queryset, False
        q = self.search_q(search_term, path=self.search_path)
        # No duplicates to remove: every lookup is a single row's (or a foreign key's), so no DISTINCT.
        return (queryset.filter(q) if q is not None else queryset.none()), False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        base: type[ChangeList] = super().get_changelist(request, **kwargs)  # type: ignore[misc]
        defer = tuple(self.list_defer)
        if not defer:
            return base

        class DeferringChangeList(base):  # type: ignore[valid-type,misc]
            """The list's rows without the columns it never shows (the change page reads them)."""

            def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
                return super().get_queryset(request, exclude_parameters).defer(*defer)

        return DeferringChangeList


def fixed_choices_filter(
    *, title: str, field: str, choices: Sequence[tuple[str, str]]
) -> type[admin.SimpleListFilter]:
    """A list filter on `field` whose choices are given, not read from the table."""

    class FixedChoicesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request: HttpRequest, model_admin: Any) -> Sequence[tuple[str, str]]:
            return choices

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            value = self.value()
            if value in {key for key, _ in choices}:
                return queryset.filter(**{field: value})
            return queryset

    FixedChoicesFilter.title = title
    FixedChoicesFilter.__name__ = f"{field.title().replace('_', '')}Filter"
    return FixedChoicesFilter
