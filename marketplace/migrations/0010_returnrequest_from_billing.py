# ReturnRequest moved from billing to marketplace: state only, the table billing_returnrequest and its indexes
# keep their names. Its content type moves too, so staff permissions and admin history follow the model.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def content_type_to_marketplace(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="billing", model="returnrequest").update(app_label="marketplace")


def content_type_to_billing(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="marketplace", model="returnrequest").update(app_label="billing")


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0009_failedtask_outboxtask_to_core"),
        ("billing", "0003_returnrequest_to_marketplace"),
        ("lenders", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="ReturnRequest",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "reason",
                            models.CharField(
                                choices=[
                                    ("bad_contact", "Bad contact data"),
                                    ("duplicate", "Duplicate"),
                                    ("did_not_request", "Did not request"),
                                    ("not_as_described", "Not pre-qualified as described"),
                                    ("other", "Other"),
                                ],
                                max_length=20,
                            ),
                        ),
                        ("note", models.TextField(blank=True, max_length=1000)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("requested", "Requested"),
                                    ("approved", "Approved"),
                                    ("denied", "Denied"),
                                ],
                                default="requested",
                                max_length=10,
                            ),
                        ),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("decided_at", models.DateTimeField(blank=True, null=True)),
                        ("decision_note", models.CharField(blank=True, max_length=500)),
                        (
                            "credit",
                            models.OneToOneField(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="return_request",
                                to="billing.ledgerentry",
                            ),
                        ),
                        (
                            "decided_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "delivery",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="return_request",
                                to="marketplace.delivery",
                            ),
                        ),
                        (
                            "lender",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="return_requests",
                                to="lenders.lender",
                            ),
                        ),
                        (
                            "requested_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["-created_at", "-id"],
                        "db_table": "billing_returnrequest",
                        "indexes": [
                            models.Index(
                                fields=["lender", "-created_at"], name="billing_ret_lender__b15f5a_idx"
                            ),
                            models.Index(
                                fields=["status", "created_at"], name="billing_ret_status_dfc628_idx"
                            ),
                        ],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(
                                    models.Q(("status", "approved"), ("credit__isnull", False)),
                                    models.Q(
                                        models.Q(("status", "approved"), _negated=True),
                                        ("credit__isnull", True),
                                    ),
                                    _connector="OR",
                                ),
                                name="return_credited_iff_approved",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    models.Q(("reason", "other"), _negated=True),
                                    models.Q(("note", ""), _negated=True),
                                    _connector="OR",
                                ),
                                name="return_other_needs_note",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    ("status", "requested"), ("decided_at__isnull", False), _connector="OR"
                                ),
                                name="return_decision_dated",
                            ),
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(content_type_to_marketplace, content_type_to_billing),
    ]
