"""Issue 12.5: each subscription's credit bands become its minimum score, without losing their meaning.

The minimum is the lowest score of the lowest band the subscription took: excellent 740, good 670, fair
620, poor 300. A subscription that took "good" (and better) now takes every range inside 670-739 and above:
680-699, 700-719, 720-739 (a 660-679 lead may be below 670, so it is left out, as a 'good' filter would).
A subscription that took a non-contiguous set (say excellent and fair but not good) cannot keep the gap: it
gets the lowest band's minimum (620 there), so it takes the ranges between too; a minimum cannot express a
gap, and taking more leads beats silently taking none. A subscription that took no band matched nothing
(the portal refused that, only direct edits could make one): it gets 850, which no range reaches.
Backwards, a minimum ticks every band whose lowest score reaches it."""

from django.db import migrations

BAND_FLOORS = (("poor", 300), ("fair", 620), ("good", 670), ("excellent", 740))  # lowest band first


def forward(apps, schema_editor):
    Subscription = apps.get_model("lenders", "Subscription")
    for sub in Subscription.objects.only("id", "credit_excellent", "credit_good", "credit_fair", "credit_poor"):
        taken = [floor for band, floor in BAND_FLOORS if getattr(sub, f"credit_{band}")]
        minimum = taken[0] if taken else 850
        # update(), not save(): nothing else on the row (the sale counters above all) is written.
        Subscription.objects.filter(pk=sub.pk).update(min_credit_score=minimum)


def backward(apps, schema_editor):
    Subscription = apps.get_model("lenders", "Subscription")
    for sub in Subscription.objects.only("id", "min_credit_score"):
        low = sub.min_credit_score
        # The band containing the minimum, and every band above it.
        start = max((i for i, (_, floor) in enumerate(BAND_FLOORS) if floor <= low), default=0)
        Subscription.objects.filter(pk=sub.pk).update(
            **{f"credit_{band}": i >= start for i, (band, _) in enumerate(BAND_FLOORS)}
        )


class Migration(migrations.Migration):
    dependencies = [("lenders", "0003_subscription_min_credit_score")]

    operations = [migrations.RunPython(forward, backward)]
