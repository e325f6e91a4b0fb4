"""Import HUD's FHA forward-mortgage limits by county into CountyLoanLimit (beside FHFA's limits).

HUD publishes them yearly ("FHA Mortgage Limits", the county file). The file needs a header row and is
comma-, pipe- or tab-separated; the columns read (names matched ignoring case, spaces, hyphens and
underscores; others are ignored):

    State            two-letter abbreviation, e.g. AK
    State FIPS       2 digits (may be left out when County FIPS has all 5 digits)
    County FIPS      3 digits, or the full 5-digit code
    County Name      optional, for messages
    One-Unit Limit, Two-Unit Limit, Three-Unit Limit, Four-Unit Limit   dollars ("1,249,125" or "$1249125")

(`leads.reference.HUD_COLUMNS` lists the spellings accepted for each.) A county must already have FHFA's
row (the shipped file has every county): HUD's limits are stored on it, matched by FIPS code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leads import reference
from leads.services import fha_limits_import


class Command(BaseCommand):
    help = "Import HUD's FHA forward-mortgage limits (1-4 units, by county) from HUD's county file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="HUD's county file (CSV, pipe or tab separated, with a header)")
        parser.add_argument(
            "--year", type=int, default=2026, help="the year the limits apply to (default 2026)"
        )

    def handle(self, *args: Any, path: str, year: int, **options: Any) -> None:
        if not 2000 <= year <= 2100:
            raise CommandError(f"--year {year} is not a plausible loan-limit year")
        try:
            rows = reference.read_hud_fha(Path(path))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        stored, unknown = fha_limits_import(rows=rows, year=year)
        if unknown:
            shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            self.stderr.write(
                self.style.WARNING(f"{len(unknown)} FIPS codes have no FHFA county and were skipped: {shown}")
            )
        self.stdout.write(
            self.style.SUCCESS(f"Imported HUD's {year} FHA limits for {stored} counties from {path}.")
        )
