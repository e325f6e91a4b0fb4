"""Guidelines 2026.3 (issue 12.5) become the active set: credit is judged by the lowest score of one of eleven
ranges (or the partner's exact score), so FHA's "poor band assumed 500" goes; the product rules are
otherwise 2026.2's.

Copied from the stored 2026.2 set (with any edits staff made to it) rather than read from the code, which will
move on. Leads qualified before keep the version they were qualified with; the newest active set qualifies new
leads."""

from django.db import migrations
from django.utils import timezone

VERSION = "2026.3"
RETIRED_KEYS = ("poor_band_assumed_score",)


def add_set(apps, schema_editor):
    GuidelineSet = apps.get_model("leads", "GuidelineSet")
    previous = GuidelineSet.objects.filter(version="2026.2").first()
    if previous is None or GuidelineSet.objects.filter(version=VERSION).exists():
        return  # a database that never had 2026.2 qualifies with the code's defaults, which are 2026.3
    rules = dict(previous.rules)
    rules["products"] = {
        name: {k: v for k, v in product.items() if k not in RETIRED_KEYS}
        for name, product in previous.rules["products"].items()
    }
    GuidelineSet.objects.create(
        version=VERSION,
        is_active=True,
        rules=rules,
        created_at=timezone.now(),
        notes="2026.2 with credit judged by eleven ranges (760+, 740-759, ... 500-579, below 500) or an exact "
        "score: each range by its lowest score, so FHA's assumed 500 for 'poor' credit is gone.",
    )


def remove_set(apps, schema_editor):
    apps.get_model("leads", "GuidelineSet").objects.filter(version=VERSION).delete()


class Migration(migrations.Migration):
    dependencies = [("leads", "0010_lead_credit_range_from_bands")]

    operations = [migrations.RunPython(add_set, remove_set)]
