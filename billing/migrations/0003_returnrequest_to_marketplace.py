# ReturnRequest moved to marketplace (returns are the market's rule; billing keeps only the credit they post):
# state only, the table billing_returnrequest stays as it is.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_return_request"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="ReturnRequest")],
        ),
    ]
