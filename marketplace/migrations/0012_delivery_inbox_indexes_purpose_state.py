"""The inbox at scale (issue 14): the lead's purpose and state copied onto each delivery (filled in here for
the deliveries sold before), a covering index in the inbox's order, and one for its live refresh."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_purpose_and_state(apps, schema_editor):
    Delivery = apps.get_model("marketplace", "Delivery")
    Lead = apps.get_model("leads", "Lead")
    lead = Lead.objects.filter(pk=OuterRef("lead_id"))
    # One UPDATE for every delivery (a correlated subquery per column, on the lead's primary key).
    Delivery.objects.update(
        purpose=Subquery(lead.values("purpose")[:1]), state=Subquery(lead.values("state")[:1])
    )


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0002_return_request'),
        ('leads', '0012_consumer_search_indexes'),
        ('lenders', '0006_subscription_purposes_list'),
        ('marketplace', '0011_delivery_replied_at_activity_automated'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='delivery',
            name='marketplace_lender__772709_idx',
        ),
        migrations.AddField(
            model_name='delivery',
            name='purpose',
            field=models.CharField(blank=True, choices=[('purchase', 'Purchase'), ('refinance', 'Refinance'), ('home_equity', 'Home equity')], max_length=16),
        ),
        migrations.AddField(
            model_name='delivery',
            name='state',
            field=models.CharField(blank=True, max_length=2),
        ),
        migrations.RunPython(copy_purpose_and_state, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['lender', '-created_at', '-id'], include=('status', 'purpose', 'state', 'subscription', 'assigned_to'), name='delivery_inbox'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['lender', 'touched_at'], name='delivery_lender_touched'),
        ),
    ]
