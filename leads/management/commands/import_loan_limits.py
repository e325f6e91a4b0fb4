"""Import FHFA's conforming loan limits by county (pipe-separated file) into CountyLoanLimit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leads import reference
from leads.services import loan_limits_import


class Command(BaseCommand):
    help = (
        "Import FHFA conforming loan limits (1-4 units, by county) from FHFA's pipe-separated file; "
        "the project ships the 2026 file in leads/data/."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path",
            nargs="?",
            default=str(reference.FHFA_FILE),
            help="FHFA file (default: the shipped leads/data/fhfa-conforming-loan-limits-2026.psv)",
        )
        parser.add_argument(
            "--year", type=int, default=2026, help="the year the limits apply to (default 2026)"
        )

    def handle(self, *args: Any, path: str, year: int, **options: Any) -> None:
        if not 2000 <= year <= 2100:
            raise CommandError(f"--year {year} is not a plausible loan-limit year")
        try:
            rows = reference.read_fhfa(Path(path), year=year)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        count = loan_limits_import(rows=rows)
        self.stdout.write(self.style.SUCCESS(f"Imported {count} counties' {year} loan limits from {path}."))
