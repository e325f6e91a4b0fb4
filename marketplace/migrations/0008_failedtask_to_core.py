# FailedTask moved to core (generic plumbing): state only, the table stays where it is.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0007_followup_due_at_in_range"),
        ("core", "0001_failedtask_from_marketplace"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="FailedTask")],
        ),
    ]
