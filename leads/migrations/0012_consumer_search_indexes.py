"""The inbox's search (issue 14): trigram indexes for a name, e-mail or phone anywhere in the field, and
consumer -> lead without reading the lead row.

The trigram indexes exist on PostgreSQL only (pg_trgm and GIN); they index the expressions Django's
`icontains` compares (UPPER(col)) and the phone's digits (stored as digits only). They are made here rather
than declared on the model, so that SQLite, the embedded default, migrates too and searches by scanning.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

TRIGRAM_INDEXES = {
    "leads_consumer_first_name_trgm": "UPPER(first_name) gin_trgm_ops",
    "leads_consumer_last_name_trgm": "UPPER(last_name) gin_trgm_ops",
    "leads_consumer_email_trgm": "UPPER(email) gin_trgm_ops",
    "leads_consumer_phone_trgm": "phone gin_trgm_ops",
}


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, expression in TRIGRAM_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON leads_consumer USING gin ({expression})")


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0003_webhookendpoint_scheduling'),
        ('leads', '0011_guidelines_2026_3'),
    ]

    operations = [
        TrigramExtension(),  # CREATE EXTENSION IF NOT EXISTS pg_trgm; nothing on SQLite
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
        migrations.AddIndex(
            model_name='lead',
            index=models.Index(fields=['consumer', 'id'], name='lead_consumer_id'),
        ),
    ]
