"""Fewer indexes on the consumer, each of which every lead's intake pays for: an e-mail is searched from its
start (the text_pattern_ops B-tree of UPPER(email)), never inside, so its trigram index goes; a whole phone
number is found by equality on the phone's own B-tree, so the phone's text_pattern_ops B-tree goes. The
trigram indexes of the names and the phone's digits stay (leads 0012). PostgreSQL only, as in 0012."""

from django.db import migrations

DROPPED = {
    "leads_consumer_email_trgm": "CREATE INDEX IF NOT EXISTS leads_consumer_email_trgm ON leads_consumer "
    "USING gin (UPPER(email) gin_trgm_ops)",
    "leads_consumer_phone_prefix": "CREATE INDEX IF NOT EXISTS leads_consumer_phone_prefix ON leads_consumer "
    "(phone text_pattern_ops)",
}


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in DROPPED:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def recreate(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in DROPPED.values():
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("leads", "0014_lead_status_newest_first")]

    operations = [migrations.RunPython(drop, recreate)]
