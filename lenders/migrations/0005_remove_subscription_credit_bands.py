"""Issue 12.5: the credit band booleans go; min_credit_score (migrated from them) replaces them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lenders", "0004_subscription_min_credit_score_from_bands")]

    operations = [
        migrations.RemoveField(model_name="subscription", name="credit_excellent"),
        migrations.RemoveField(model_name="subscription", name="credit_good"),
        migrations.RemoveField(model_name="subscription", name="credit_fair"),
        migrations.RemoveField(model_name="subscription", name="credit_poor"),
        migrations.AddConstraint(
            model_name="subscription",
            constraint=models.CheckConstraint(
                condition=models.Q(min_credit_score__gte=300, min_credit_score__lte=850),
                name="subscription_min_credit_score_300_850",
            ),
        ),
    ]
