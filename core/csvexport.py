"""The one CSV writer: a streamed download whose cells a spreadsheet will not run as formulas."""

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone

# A cell starting with one of these is run as a formula by spreadsheets (CSV injection).
CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


# Types written as they are (checked by exact type first: the common case costs one set lookup per cell).
_AS_IS = frozenset({int, float, Decimal, date, datetime})
# Lines sent per chunk: one chunk per line costs the server more than writing the line itself.
CHUNK_LINES = 500


def csv_cell(value: Any) -> Any:
    """One cell: numbers stay numbers (a negative amount is still a number in the spreadsheet, however the
    page exported it), None is empty, and text starting with = + - @ (or a tab or carriage return) gets a
    leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float | Decimal | date | datetime):
        return value
    text = str(value)
    return f"'{text}" if text.startswith(CSV_DANGEROUS) else text


class _Echo:
    """A file that hands back what is written to it: csv.writer then yields one line at a time."""

    def write(self, value: str) -> str:
        return value


def csv_response(*, filename: str, header: list[str], rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    """Stream `header` then `rows` as an attachment. The rows are read after the view has returned, inside
    the time zone the view ran in (a portal page's: the lender's), so times come out as the page shows
    them. Never kept by a shared cache: exports may hold personal data."""
    writer = csv.writer(_Echo())
    zone = timezone.get_current_timezone()

    def lines() -> Iterator[str]:
        with timezone.override(zone):
            # The header alone first: the download starts before the first row is read.
            yield writer.writerow(header)
            chunk: list[str] = []
            for row in rows:
                # csv_cell's rules, with its two common cases (a number or date; plain text) inline.
                cells = [
                    v
                    if type(v) in _AS_IS or (type(v) is str and not v.startswith(CSV_DANGEROUS))
                    else csv_cell(v)
                    for v in row
                ]
                chunk.append(writer.writerow(cells))
                if len(chunk) >= CHUNK_LINES:
                    yield "".join(chunk)
                    chunk.clear()
            if chunk:
                yield "".join(chunk)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
