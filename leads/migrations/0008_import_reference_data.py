"""Issue 11.16 / 12.6: a fresh database gets the reference data shipped in leads/data/ (FHFA's 2026 county
limits and the state property-tax and insurance table), so a fresh clone never falls to the national
baseline. `make run` / `make up` import the FHFA file again (a newer one if staff point LOAN_LIMITS_FILE at
it); staff edit the state table in admin."""

from django.db import migrations

from leads import reference


def load(apps, schema_editor):
    CountyLoanLimit = apps.get_model("leads", "CountyLoanLimit")
    StateHousingCost = apps.get_model("leads", "StateHousingCost")
    fields = ["state", "county_key", "county_name", *reference.UNIT_FIELDS, "year"]
    CountyLoanLimit.objects.bulk_create(
        [CountyLoanLimit(**row) for row in reference.read_fhfa(reference.FHFA_FILE, year=2026)],
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["fips"],
        update_fields=fields,
    )
    StateHousingCost.objects.bulk_create(
        [StateHousingCost(**row) for row in reference.read_state_costs()],
        update_conflicts=True,
        unique_fields=["state"],
        update_fields=["property_tax_rate", "insurance_rate", "average_premium", "source"],
    )


class Migration(migrations.Migration):
    dependencies = [("leads", "0007_lead_units_limits_by_units_fha_housing_costs")]

    # Nothing to undo: the rows are reference data, and an older schema reads them as before.
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
