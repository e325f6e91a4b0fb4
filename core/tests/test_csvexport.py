"""The one CSV writer (core.csvexport): formulas neutralised, numbers exported the same way everywhere."""

import csv
import io
from decimal import Decimal

from django.utils import timezone

from core.csvexport import csv_response


def _read(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_number_is_written_as_a_number_and_text_that_looks_like_a_formula_is_quoted():
    """Issue 13.2: the inbox export turned numbers into text (a negative amount came out as '-40.00, text to
    a spreadsheet) while the billing export kept them numbers; both now write through one writer."""
    response = csv_response(
        filename="x.csv", header=["amount", "memo"], rows=[[Decimal("-40.00"), "-refund"], [7, None]]
    )
    assert _read(response) == [["amount", "memo"], ["-40.00", "'-refund"], ["7", ""]]
    assert response["Content-Disposition"] == 'attachment; filename="x.csv"'
    assert response["Cache-Control"] == "no-store"


def test_rows_are_read_in_the_time_zone_the_view_ran_in():
    """The rows are produced after the view returned: they still see the view's (the lender's) zone."""
    with timezone.override("America/Chicago"):
        response = csv_response(
            filename="x.csv", header=["zone"], rows=([str(timezone.get_current_timezone())] for _ in range(1))
        )
    assert _read(response)[1] == ["America/Chicago"]
