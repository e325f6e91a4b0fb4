"""Issue 12.5: the four credit bands become ranges that line up with the program and pricing thresholds.

Schema only: credit_band is renamed credit_range (its values are mapped by the next migration), and a lead
may carry the exact score a partner gave (300-850)."""

import django.core.validators
from django.db import migrations, models

RANGES = [
    ("760_850", "760 or higher"),
    ("740_759", "740–759"),
    ("720_739", "720–739"),
    ("700_719", "700–719"),
    ("680_699", "680–699"),
    ("660_679", "660–679"),
    ("640_659", "640–659"),
    ("620_639", "620–639"),
    ("580_619", "580–619"),
    ("500_579", "500–579"),
    ("300_499", "Below 500"),
]


class Migration(migrations.Migration):
    dependencies = [("leads", "0008_import_reference_data")]

    operations = [
        migrations.RenameField(model_name="lead", old_name="credit_band", new_name="credit_range"),
        migrations.AlterField(
            model_name="lead",
            name="credit_range",
            field=models.CharField(choices=RANGES, max_length=16),
        ),
        migrations.AddField(
            model_name="lead",
            name="credit_score",
            field=models.PositiveSmallIntegerField(
                blank=True,
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(300),
                    django.core.validators.MaxValueValidator(850),
                ],
            ),
        ),
        migrations.AddConstraint(
            model_name="lead",
            constraint=models.CheckConstraint(
                condition=models.Q(credit_score__isnull=True)
                | models.Q(credit_score__gte=300, credit_score__lte=850),
                name="lead_credit_score_300_850",
            ),
        ),
    ]
