"""Issue 12.5: a subscription filters credit by a minimum score instead of one boolean per credit band.
Schema: the new column (the booleans go after the next migration has read them)."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lenders", "0002_team_invitations_assignment_rules")]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="min_credit_score",
            field=models.PositiveSmallIntegerField(
                default=620,
                validators=[
                    django.core.validators.MinValueValidator(300),
                    django.core.validators.MaxValueValidator(850),
                ],
                verbose_name="minimum credit score",
            ),
        ),
    ]
