"""Declarative match terms: one declaration per filter gives the SQL predicate a set-based matcher runs and
the ORM `Q` that finds the candidates meeting one order's terms, so the two cannot drift apart.

The words: an *order* is a row (alias `s` in SQL) whose columns hold terms; a *candidate* is a row of typed
values (alias `l`, a VALUES list the matcher sends) that must meet them; the same candidate values are ORM
expressions over a model when we ask the other way round ("which rows meet these terms?"). The domain
declares its candidate values and terms (marketplace.matching); nothing here knows what they mean.

Only declared names (columns, tables, SQL types) are formatted into SQL, never a value: values are params.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from django.db import connection
from django.db.models import F, Model, Q, Value
from django.db.models.expressions import Combinable
from django.db.models.lookups import GreaterThanOrEqual, In, LessThanOrEqual


@dataclass(frozen=True)
class Candidate:
    """One value of the candidate row: its SQL type in the VALUES list, how Python reads it off an instance
    (for the matcher's params), and the ORM expression that computes the same value over a queryset."""

    name: str
    sql_type: str
    read: Callable[[Any], Any]
    expression: Callable[[], Combinable]  # built on each use: an expression is not shared between queries

    def orm(self) -> Combinable:
        return self.expression()


def field_candidate(name: str, sql_type: str, attname: str | None = None) -> Candidate:
    """A candidate value that is a plain field of the candidate model."""
    attname = attname or name
    return Candidate(name, sql_type, lambda obj: getattr(obj, attname), lambda: F(attname))


def values_cte(candidates: Sequence[Candidate], rows: int, *, key: str, alias: str = "l") -> str:
    """`alias (key, v1, v2 ...) AS (VALUES (...), (...))` for `rows` candidates; each value cast to its type
    (PostgreSQL cannot infer a parameter's type inside VALUES). The key is a bigint (the candidate's id)."""
    row = "(" + ", ".join(["CAST(%s AS bigint)"] + [f"CAST(%s AS {c.sql_type})" for c in candidates]) + ")"
    names = ", ".join([key, *(c.name for c in candidates)])
    return f"{alias} ({names}) AS (VALUES {', '.join([row] * rows)})"


def values_params(candidates: Sequence[Candidate], objects: Iterable[Any]) -> list[Any]:
    """The params of values_cte, in its order: each object's pk, then its candidate values."""
    params: list[Any] = []
    for obj in objects:
        params.append(obj.pk)
        params.extend(c.read(obj) for c in candidates)
    return params


class Term:
    """A filter an order may set. `sql()` is the predicate over `s.<column>` and `l.<candidate>` (TRUE when
    the order's term lets the candidate through); `q(terms)` is the same test as a `Q` over the candidate
    model, for an order whose terms are given by name (a Subscription's attributes or a form's values)."""

    key: str  # the name the order's value goes by in `terms`

    def sql(self) -> str:
        raise NotImplementedError

    def q(self, terms: Mapping[str, Any]) -> Q:
        raise NotImplementedError


@dataclass(frozen=True)
class AtMost(Term):
    """The candidate's value is at most the order's column; an empty (NULL) column sets no bound. A
    candidate without the value (NULL) meets only an order without the bound, in SQL and in the ORM."""

    key: str
    candidate: Candidate

    def sql(self) -> str:
        return f"(s.{self.key} IS NULL OR l.{self.candidate.name} <= s.{self.key})"

    def q(self, terms: Mapping[str, Any]) -> Q:
        bound = terms.get(self.key)
        return Q() if bound is None else Q(LessThanOrEqual(self.candidate.orm(), Value(bound)))


@dataclass(frozen=True)
class AtLeast(Term):
    """The candidate's value is at least the order's column; an empty (NULL) column sets no bound."""

    key: str
    candidate: Candidate

    def sql(self) -> str:
        return f"(s.{self.key} IS NULL OR l.{self.candidate.name} >= s.{self.key})"

    def q(self, terms: Mapping[str, Any]) -> Q:
        bound = terms.get(self.key)
        return Q() if bound is None else Q(GreaterThanOrEqual(self.candidate.orm(), Value(bound)))


@dataclass(frozen=True)
class OneOf(Term):
    """The candidate's value is one of those the order lists in a JSON array column (a new choice needs no
    column and no migration). An empty list takes nothing."""

    key: str
    candidate: Candidate

    def sql(self) -> str:
        if connection.vendor == "postgresql":
            # jsonb `?`: does the array hold this string? Per row and cheap: the list is a few short strings.
            return f"(s.{self.key} ? l.{self.candidate.name})"
        return f"EXISTS (SELECT 1 FROM json_each(s.{self.key}) j WHERE j.value = l.{self.candidate.name})"  # noqa: S608  # nosec B608

    def q(self, terms: Mapping[str, Any]) -> Q:
        return Q(In(self.candidate.orm(), list(terms.get(self.key) or [])))


@dataclass(frozen=True)
class RowsInclude(Term):
    """The order's rows in another table (`model`, pointing at the order by `owner` = `s.<via>`) include
    one whose `column` equals the candidate's value. With `optional` naming a boolean column of the order,
    the term applies only when that column is true (an order without rows takes any value).

    `drives` marks the term the matcher starts from: it becomes the JOIN that reaches the orders through the
    rows' (column, owner) index, rather than a test on every order."""

    key: str  # the allowed values in `terms` (a list, or a values() queryset)
    candidate: Candidate
    model: type[Model]
    column: str
    owner: str
    via: str = "id"
    optional: str = ""
    drives: bool = False

    def join(self, order_table: str) -> str:
        rows = self.model._meta.db_table
        return (
            f"JOIN {rows} d ON d.{self.column} = l.{self.candidate.name} "
            f"JOIN {order_table} s ON s.{self.via} = d.{self.owner}"
        )

    def sql(self) -> str:
        if self.drives:
            return "TRUE"  # met by the join itself
        rows = self.model._meta.db_table
        exists = (
            f"EXISTS (SELECT 1 FROM {rows} r "  # noqa: S608  # nosec B608  (declared names only)
            f"WHERE r.{self.owner} = s.{self.via} AND r.{self.column} = l.{self.candidate.name})"
        )
        return f"(NOT s.{self.optional} OR {exists})" if self.optional else exists

    def q(self, terms: Mapping[str, Any]) -> Q:
        allowed = terms.get(self.key)
        if allowed is None or isinstance(allowed, list | tuple | set | frozenset):
            allowed = sorted(set(allowed or []))
            if self.optional and not allowed:
                return Q()  # no rows: the term is off
        return Q(In(self.candidate.orm(), allowed))  # a list, or a values() queryset (a subquery)


@dataclass(frozen=True)
class WeeklyWindow:
    """Weekdays (a string of digits, Monday=0) and an hour window (start, end; an end before the start runs
    overnight, e.g. 20:00-06:00; no start or end means any hour; a start equal to the end is an empty
    window). It depends on the moment, not on the candidate alone: `holds` judges a local moment in Python
    (the sale, at sale time, in the order's zone), `q` the candidate's `moment` field in the current time
    zone (the forecast, over past candidates). Both read the same declaration."""

    days: str
    start: str
    end: str
    moment: str  # the candidate model's datetime field `q` reads

    def holds(self, terms: Any, local_now: datetime) -> bool:
        if str(local_now.weekday()) not in getattr(terms, self.days):
            return False
        return self._in_hours(getattr(terms, self.start), getattr(terms, self.end), local_now.time())

    @staticmethod
    def _in_hours(start: time | None, end: time | None, now: time) -> bool:
        if start is None or end is None:
            return True
        if start <= end:
            return start <= now < end
        return now >= start or now < end

    def q(self, terms: Mapping[str, Any]) -> Q:
        days = sorted({int(d) for d in terms.get(self.days, "0123456") if d in "0123456"})
        q = Q()
        if len(days) < 7:
            q &= Q(**{f"{self.moment}__iso_week_day__in": [d + 1 for d in days]})
        start, end = terms.get(self.start), terms.get(self.end)
        if start is None or end is None:
            return q
        at = f"{self.moment}__time"
        if start <= end:
            return q & Q(**{f"{at}__gte": start, f"{at}__lt": end})
        return q & (Q(**{f"{at}__gte": start}) | Q(**{f"{at}__lt": end}))


def predicates(terms: Iterable[Term]) -> str:
    """The terms' SQL predicates joined with AND, one per line."""
    return "\n    AND ".join(t.sql() for t in terms if not getattr(t, "drives", False))


def q_all(terms: Iterable[Term], values: Mapping[str, Any]) -> Q:
    """Every term's Q for one order's values, ANDed."""
    q = Q()
    for t in terms:
        q &= t.q(values)
    return q


def driving(terms: Iterable[Term]) -> RowsInclude:
    (term,) = [t for t in terms if isinstance(t, RowsInclude) and t.drives]
    return term
