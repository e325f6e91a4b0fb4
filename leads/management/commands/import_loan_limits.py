"""Import FHFA's conforming loan limits by county (pipe-separated file) into CountyLoanLimit."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from leads.geo import county_key
from leads.models import CountyLoanLimit

REQUIRED_COLUMNS = ("FIPSStateCode", "FIPSCountyCode", "CountyName", "State", "One-UnitLimit")
# Sanity bounds for a one-unit limit: catches a shifted column or a limit typed in thousands.
MIN_LIMIT = Decimal("100000")
MAX_LIMIT = Decimal("10000000")


class Command(BaseCommand):
    help = "Import FHFA conforming loan limits (one-unit, by county) from FHFA's pipe-separated file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="FHFA file, e.g. fhfa-conforming-loan-limits-2026.psv")
        parser.add_argument(
            "--year", type=int, default=2026, help="the year the limits apply to (default 2026)"
        )

    def handle(self, *args: Any, path: str, year: int, **options: Any) -> None:
        if not 2000 <= year <= 2100:
            raise CommandError(f"--year {year} is not a plausible loan-limit year")
        rows = self._read(Path(path), year)
        fields = ["state", "county_key", "one_unit_limit", "year"]
        with transaction.atomic():
            CountyLoanLimit.objects.bulk_create(
                rows,
                batch_size=1000,
                update_conflicts=True,
                unique_fields=["fips"],
                update_fields=fields,
            )
        self.stdout.write(
            self.style.SUCCESS(f"Imported {len(rows)} counties' {year} loan limits from {path}.")
        )

    def _read(self, path: Path, year: int) -> list[CountyLoanLimit]:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        lines = text.splitlines()
        if not lines:
            raise CommandError(f"{path} is empty")
        header = [h.strip() for h in lines[0].split("|")]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise CommandError(
                f"{path} line 1: header lacks {', '.join(missing)}; is this FHFA's pipe-separated file?"
            )
        col = {name: header.index(name) for name in REQUIRED_COLUMNS}

        rows: dict[str, CountyLoanLimit] = {}
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            fields = [f.strip() for f in line.split("|")]
            where = f"{path} line {number}"
            if len(fields) != len(header):
                raise CommandError(f"{where}: expected {len(header)} fields, found {len(fields)}")
            state_fips, county_fips = fields[col["FIPSStateCode"]], fields[col["FIPSCountyCode"]]
            if not re.fullmatch(r"\d{2}", state_fips) or not re.fullmatch(r"\d{3}", county_fips):
                raise CommandError(f"{where}: bad FIPS code {state_fips!r}/{county_fips!r}")
            state = fields[col["State"]].upper()
            if not re.fullmatch(r"[A-Z]{2}", state):
                raise CommandError(f"{where}: bad state {state!r}")
            key = county_key(state, fields[col["CountyName"]])
            if not key:
                raise CommandError(f"{where}: county name is empty")
            try:
                limit = Decimal(fields[col["One-UnitLimit"]].replace(",", "").replace("$", ""))
            except InvalidOperation:
                raise CommandError(
                    f"{where}: one-unit limit {fields[col['One-UnitLimit']]!r} is not a number"
                ) from None
            if not MIN_LIMIT <= limit <= MAX_LIMIT:
                raise CommandError(f"{where}: one-unit limit {limit} is outside {MIN_LIMIT}-{MAX_LIMIT}")
            fips = state_fips + county_fips
            if fips in rows:
                raise CommandError(f"{where}: FIPS {fips} appears twice")
            rows[fips] = CountyLoanLimit(
                fips=fips,
                state=state,
                county_key=key,
                one_unit_limit=limit.quantize(Decimal("0.01")),
                year=year,
            )
        if not rows:
            raise CommandError(f"{path} has a header but no counties")
        return list(rows.values())
