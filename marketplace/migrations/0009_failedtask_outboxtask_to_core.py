# FailedTask and OutboxTask moved to core (generic plumbing): state only, their tables stay where they are.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0008_outboxtask_webhook_endpoints_per_lender"),
        ("core", "0001_failedtask_outboxtask_from_marketplace"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="FailedTask"), migrations.DeleteModel(name="OutboxTask")],
        ),
    ]
