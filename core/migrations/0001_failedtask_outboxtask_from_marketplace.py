# FailedTask and OutboxTask moved from marketplace to core: state only, their tables (marketplace_failedtask,
# marketplace_outboxtask) stay as they are.

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("marketplace", "0008_outboxtask_webhook_endpoints_per_lender"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="FailedTask",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("task_name", models.CharField(max_length=200)),
                        ("task_id", models.CharField(max_length=64, unique=True)),
                        ("args", models.JSONField(default=list)),
                        ("kwargs", models.JSONField(default=dict)),
                        ("exception", models.CharField(max_length=500)),
                        ("retries", models.PositiveIntegerField(default=0)),
                        ("failed_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("replayed_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "ordering": ["-failed_at"],
                        "db_table": "marketplace_failedtask",
                        "indexes": [
                            models.Index(
                                fields=["replayed_at", "failed_at"], name="marketplace_replaye_8a8172_idx"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="OutboxTask",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("task_name", models.CharField(max_length=200)),
                        ("args", models.JSONField(default=list)),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                    ],
                    options={"ordering": ["created_at", "id"], "db_table": "marketplace_outboxtask"},
                ),
            ],
        ),
    ]
