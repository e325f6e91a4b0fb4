"""The marketplace's default first-touch template, from the shipped wording, so staff find it in admin."""

from django.db import migrations

from integrations.outreach import defaults


def create_default(apps, schema_editor):
    MessageTemplate = apps.get_model("integrations", "MessageTemplate")
    if not MessageTemplate.objects.filter(is_default=True).exists():
        MessageTemplate.objects.create(
            is_default=True,
            email_subject=defaults.FIRST_TOUCH_SUBJECT,
            email_body=defaults.FIRST_TOUCH_EMAIL,
            text_body=defaults.FIRST_TOUCH_TEXT,
        )


class Migration(migrations.Migration):
    dependencies = [("integrations", "0006_outreach")]

    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
