"""On PostgreSQL, the database itself refuses to change or delete consent records and ledger entries.

The models refuse too (save/delete raise), but a queryset .update() or raw SQL would bypass them; the trigger
does not. SQLite (the embedded default) relies on the model guards.
"""

from django.db import migrations

TABLES = ["leads_consentrecord", "billing_ledgerentry"]

CREATE = """
CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '%% rows are append-only: %% refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql;
""" + "".join(
    f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} FOR EACH ROW EXECUTE FUNCTION refuse_change();"
    for t in TABLES
)
DROP = "".join(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t};" for t in TABLES) + "DROP FUNCTION IF EXISTS refuse_change();"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0001_initial"),
        ("leads", "0001_initial"),
        ("billing", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
