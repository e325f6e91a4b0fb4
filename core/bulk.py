"""Bulk writes for the hot path, where Django's general-purpose ones cost more Python than the work itself:
- bulk_set: bulk_update builds a CASE per field and row; one UPDATE … FROM the rows does the same.
- insert_chain: a consumer, its lead and its consent in one statement instead of three in a transaction.
- bulk_insert: rows carrying JSON, which bulk_create's UNNEST arrays make Python quote character by character.
Each sends its rows as one JSON parameter (see _json), and falls back to the ORM on other databases (SQLite in
development). The inserts skip save() but not a model's own rules: an object whose model defines
`prepare_insert()` (checks and derived fields, which its save() calls too) has it called first."""

import datetime
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import connections, models, router, transaction
from django.db.models.options import Options

M = TypeVar("M", bound=models.Model)


def bulk_set(objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of every object (same model, saved rows) in one statement. Like bulk_update, no
    signals and no auto_now: set such fields yourself."""
    if not objs:
        return
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model._base_manager.bulk_update(objs, fields)
        return
    meta = model._meta
    columns = [meta.pk, *(_concrete_field(meta, name) for name in fields)]
    qn = connection.ops.quote_name
    # Only model metadata (quoted table and column names) is formatted in; the rows are one JSON parameter.
    template = (
        "UPDATE {table} AS t SET {assign} "
        "FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) AS v WHERE t.{pk} = v.{pk}"
    )
    sql = template.format(
        table=qn(meta.db_table),
        assign=", ".join(f"{qn(_column(f))} = v.{qn(_column(f))}" for f in columns[1:]),
        pk=qn(_column(meta.pk)),
    )
    rows = [{_column(f): f.get_prep_value(getattr(obj, f.attname)) for f in columns} for obj in objs]
    with connection.cursor() as cursor:
        cursor.execute(sql, [_json(rows)])


def insert_chain(objs: Sequence[models.Model], links: Sequence[str]) -> None:
    """Insert new objects, each one pointing at the one before through the foreign key named in `links`
    (links[i] on objs[i + 1]), and set their primary keys. On PostgreSQL this is one statement of chained
    `INSERT … RETURNING` CTEs: a single round trip, atomic by itself, where three ORM creates in a transaction
    cost five round trips and most of a request's time. Each row travels as one JSON parameter (see
    _chain_sql). Like bulk_create, no save() and no signals, but each model's `prepare_insert()` runs (see
    above). Elsewhere (SQLite in development) the objects are saved one by one, through save()."""
    connection = connections[router.db_for_write(type(objs[0]))]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=connection.alias):
            for i, obj in enumerate(objs):
                if i:
                    setattr(obj, links[i - 1], objs[i - 1])
                obj.save(force_insert=True, using=connection.alias)
        return
    _prepare(objs)
    sql, plan = _chain_sql(tuple(type(obj) for obj in objs), tuple(links), connection.ops.quote_name)
    params = [_json(_new_row(obj, fields)) for obj, fields in zip(objs, plan, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        pks = cursor.fetchone()
    _saved(objs, pks, connection.alias)
    for i, obj in enumerate(objs[1:]):
        setattr(obj, links[i], objs[i])


@functools.cache
def _chain_sql(
    types: tuple[type[models.Model], ...], links: tuple[str, ...], qn: Callable[[str], str]
) -> tuple[str, list[list[models.Field]]]:
    """insert_chain's statement for these models, and the fields each one's parameters come from (the same
    for every consumer who sends the form, so it is built once per connection)."""
    # Only model metadata (quoted table and column names) is formatted in; every value is a parameter.
    # Each row is one JSON parameter that jsonb_populate_record spreads into the table's columns: three
    # parameters instead of some sixty, which psycopg would otherwise quote one by one on every request.
    cte = (
        "r{i} AS (INSERT INTO {table} ({columns}) SELECT {values} "
        "FROM jsonb_populate_record(NULL::{table}, %s::jsonb) AS v RETURNING {pk})"
    )
    ref = "(SELECT {pk} FROM r{i})"
    statement = "WITH {ctes} SELECT {select}"
    ctes: list[str] = []
    plan: list[list[models.Field]] = []
    for i, (model, link) in enumerate(zip(types, [None, *links], strict=True)):
        fields = _insert_fields(model._meta)
        values = [
            ref.format(pk=qn(_column(types[i - 1]._meta.pk)), i=i - 1)
            if link and f.name == link
            else f"v.{qn(_column(f))}"
            for f in fields
        ]
        plan.append([f for f in fields if not (link and f.name == link)])
        ctes.append(
            cte.format(
                i=i,
                table=qn(model._meta.db_table),
                columns=", ".join(qn(_column(f)) for f in fields),
                values=", ".join(values),
                pk=qn(_column(model._meta.pk)),
            )
        )
    select = ", ".join(ref.format(pk=qn(_column(model._meta.pk)), i=i) for i, model in enumerate(types))
    return statement.format(ctes=", ".join(ctes), select=select), plan


def _json(rows) -> str:
    """Rows as one JSON document for jsonb_populate_record(set): psycopg quotes one string where it would
    quote a parameter per value (or, in bulk_create's arrays, a JSON payload character by character).
    Values go as PostgreSQL's text input reads them, at full precision: money to the cent, times to the
    microsecond."""
    return json.dumps(rows, default=_json_default)


def _json_default(value):
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)  # Decimal, UUID, IP addresses


def bulk_insert(objs: Sequence[M]) -> list[M]:
    """bulk_create for rows that carry JSON documents, and set their primary keys. Django's bulk_create on
    PostgreSQL sends each column as one array, and quoting a JSON document as an array element runs in
    Python, character by character: for webhook messages that cost several times this. No save(), no
    signals. Returns the objects, as bulk_create does. Elsewhere (SQLite in development) this is
    bulk_create."""
    if not objs:
        return []
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    _prepare(objs)
    if connection.vendor != "postgresql":
        return model._base_manager.bulk_create(objs)
    meta = model._meta
    fields = _insert_fields(meta)
    qn = connection.ops.quote_name
    # Only model metadata (quoted table and column names) is formatted in; the rows are one JSON parameter.
    template = (
        "INSERT INTO {table} ({columns}) SELECT {values} "
        "FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) AS v RETURNING {pk}"
    )
    sql = template.format(
        table=qn(meta.db_table),
        columns=", ".join(qn(_column(f)) for f in fields),
        values=", ".join(f"v.{qn(_column(f))}" for f in fields),
        pk=qn(_column(meta.pk)),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_json([_new_row(obj, fields) for obj in objs])])
        # In the rows' order, as Django's own bulk_create (UNNEST) relies on too.
        pks = [pk for (pk,) in cursor.fetchall()]
    _saved(objs, pks, connection.alias)
    return list(objs)


def _prepare(objs: Sequence[models.Model]) -> None:
    """Apply each model's own rules for a new row, where it has some (ConsentRecord: refuse a stored record,
    seal the text), as its save() would before an INSERT."""
    for obj in objs:
        prepare = getattr(obj, "prepare_insert", None)
        if prepare is not None:
            prepare()


def _new_row(obj: models.Model, fields: list[models.Field]) -> dict[str, Any]:
    """A new object's columns as an INSERT writes them (defaults and auto_now applied, as save() would)."""
    return {_column(f): f.get_prep_value(f.pre_save(obj, True)) for f in fields}


def _saved(objs: Sequence[models.Model], pks: Sequence[Any], alias: str) -> None:
    """Mark inserted objects as saved rows with their new primary keys."""
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, alias


def _insert_fields(meta: Options) -> list[models.Field]:
    """The columns an INSERT writes: every concrete one but the generated ones and the serial primary key."""
    return [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field]


def _concrete_field(meta: Options, name: str) -> models.Field:
    """The field `name` of the model, which must be one of its own columns: get_field() also returns reverse
    relations, which have no column to write."""
    field = meta.get_field(name)
    if not isinstance(field, models.Field) or not field.concrete:
        raise ValueError(f"{meta.label}.{name} is not a column and cannot be written in bulk")
    return field


def _column(field: models.Field) -> str:
    """A concrete field's column name. Field.column is None only on fields without a column (which the
    callers never pass); the narrowing is what lets the name go into the statement."""
    if field.column is None:
        raise ValueError(f"{field} has no column")
    return field.column
