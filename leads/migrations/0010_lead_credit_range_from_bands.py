"""Issue 12.5: existing leads' credit bands become credit ranges.

An old band cannot be split (we never knew where inside it the consumer was), so each maps to the new range
that contains its lowest score, the score the engine judged it by: excellent (740-850) -> 740-759, good
(670-739) -> 660-679, fair (620-669) -> 620-639, poor (300-619) -> below 500 (300-499). A lead is thereby
judged by the same lowest score it always was, or (good: 660 for 670) by a slightly lower one; never higher.
Backwards, each range maps to the old band containing its lowest score."""

from django.db import migrations

FORWARD = {"excellent": "740_759", "good": "660_679", "fair": "620_639", "poor": "300_499"}
# The old bands' lowest scores: 740, 670, 620, 300.
BACKWARD_FLOORS = (("excellent", 740), ("good", 670), ("fair", 620), ("poor", 300))


def forward(apps, schema_editor):
    Lead = apps.get_model("leads", "Lead")
    for band, credit_range in FORWARD.items():
        Lead.objects.filter(credit_range=band).update(credit_range=credit_range)


def backward(apps, schema_editor):
    Lead = apps.get_model("leads", "Lead")
    for credit_range in (
        "760_850", "740_759", "720_739", "700_719", "680_699", "660_679", "640_659", "620_639", "580_619",
        "500_579", "300_499",
    ):  # fmt: skip
        low = int(credit_range[:3])
        band = next(b for b, floor in BACKWARD_FLOORS if low >= floor)
        Lead.objects.filter(credit_range=credit_range).update(credit_range=band)


class Migration(migrations.Migration):
    dependencies = [("leads", "0009_lead_credit_range")]

    operations = [migrations.RunPython(forward, backward)]
