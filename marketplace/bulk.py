"""Bulk writes for the sale path. Django's bulk_update builds a CASE per field and row, which costs more
Python than the sale itself once a batch holds dozens of leads; on PostgreSQL one UPDATE ... FROM (VALUES ...)
does the same work for a fraction of it."""

from collections.abc import Sequence

from django.db import connections, models, router


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
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    row = "(" + ", ".join(f"CAST(%s AS {f.cast_db_type(connection)})" for f in columns) + ")"
    qn = connection.ops.quote_name
    # Only model metadata (quoted table and column names) is formatted in; every value is a parameter.
    template = "UPDATE {table} AS t SET {assign} FROM (VALUES {rows}) AS v ({names}) WHERE t.{pk} = v.{pk}"
    sql = template.format(
        table=qn(meta.db_table),
        assign=", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in columns[1:]),
        rows=", ".join([row] * len(objs)),
        names=", ".join(qn(f.column) for f in columns),
        pk=qn(meta.pk.column),
    )
    params = [f.get_db_prep_save(getattr(obj, f.attname), connection) for obj in objs for f in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
