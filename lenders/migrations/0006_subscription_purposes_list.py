"""Issue 13.3: a subscription's loan purposes become one list (LoanPurpose values) instead of a boolean column
per purpose, so a new purpose needs no column, no migration and no edit of the matching SQL.

Each subscription keeps exactly the purposes it took (in the choices' order); one that took none (only a
direct edit could make one) keeps an empty list, which matches nothing, as before. Backwards, each column is
ticked when its purpose is listed."""

from django.db import migrations, models

import lenders.models

PURPOSES = ("purchase", "refinance", "home_equity")  # the columns as they were


def forward(apps, schema_editor):
    Subscription = apps.get_model("lenders", "Subscription")
    for sub in Subscription.objects.only("id", *(f"purpose_{p}" for p in PURPOSES)):
        taken = [p for p in PURPOSES if getattr(sub, f"purpose_{p}")]
        # update(), not save(): nothing else on the row (the sale counters above all) is written.
        Subscription.objects.filter(pk=sub.pk).update(purposes=taken)


def backward(apps, schema_editor):
    Subscription = apps.get_model("lenders", "Subscription")
    for sub in Subscription.objects.only("id", "purposes"):
        listed = set(sub.purposes or [])
        Subscription.objects.filter(pk=sub.pk).update(**{f"purpose_{p}": p in listed for p in PURPOSES})


class Migration(migrations.Migration):
    dependencies = [("lenders", "0005_remove_subscription_credit_bands")]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="purposes",
            field=models.JSONField(default=lenders.models.all_loan_purposes, verbose_name="loan purposes"),
        ),
        migrations.RunPython(forward, backward),
        migrations.RemoveField(model_name="subscription", name="purpose_purchase"),
        migrations.RemoveField(model_name="subscription", name="purpose_refinance"),
        migrations.RemoveField(model_name="subscription", name="purpose_home_equity"),
    ]
