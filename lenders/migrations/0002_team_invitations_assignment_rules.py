import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("lenders", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Invitation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email", models.EmailField(max_length=254)),
                ("role", models.CharField(choices=[("owner", "Owner"), ("manager", "Manager"), ("officer", "Loan officer")], default="officer", max_length=8)),
                ("token_hash", models.CharField(blank=True, db_index=True, max_length=64)),
                ("expires_at", models.DateTimeField()),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                ("accepted_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("invited_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("lender", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="invitations", to="lenders.lender")),
                ("user", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["-created_at"]},
        ),
        migrations.CreateModel(
            name="AssignmentRule",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("states", models.JSONField(blank=True, default=list, help_text="Two-letter states; empty: every state.")),
                ("purposes", models.JSONField(blank=True, default=list, help_text="Loan purposes; empty: every purpose.")),
                ("is_active", models.BooleanField(default=True, verbose_name="active")),
                ("position", models.PositiveIntegerField(default=0)),
                ("last_seq", models.PositiveBigIntegerField(default=0, editable=False)),
                ("assigned_count", models.PositiveIntegerField(default=0, editable=False)),
                ("last_assigned_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("lender", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="assignment_rules", to="lenders.lender")),
                ("membership", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="assignment_rules", to="lenders.membership")),
            ],
            options={
                "ordering": ["position", "id"],
                "indexes": [models.Index(fields=["lender", "is_active"], name="assignment_rule_lender_active")],
                "constraints": [models.UniqueConstraint(fields=("membership",), name="one_assignment_rule_per_member")],
            },
        ),
    ]
