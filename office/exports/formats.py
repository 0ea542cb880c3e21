"""Writing a Table as CSV for Japanese Excel, and what every format must neutralise."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone, translation

from .tables import Cell, Table

CSV_ROWS_PER_CHUNK = 500  # rows joined into one chunk of the streamed response
# OWASP's list: what makes Excel (or LibreOffice) read a cell as a formula; and their full-width
# forms, which a Japanese keyboard types and which Japanese Excel reads as the same operators.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def _csv_cell(value: Cell) -> str | int:
    if isinstance(value, str):  # most cells: checked first, this runs for every cell
        if value.startswith(FORMULA_PREFIXES):
            value = "'" + value  # shown as text, never run (CSV injection)
        if "\r" in value:
            # Excel breaks a line inside a quoted cell on LF; a CR shows as a stray character.
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        return value
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class _Echo:
    """The file-like object csv.writer needs: returns each line instead of storing it."""

    def write(self, line: str) -> str:
        return line


def _csv_stream(table: Table, language: str) -> Iterator[str]:
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    # The response is consumed after the view has returned: keep its language for any label.
    with translation.override(language):
        yield "\ufeff" + writer.writerow([_csv_cell(h) for h in table.headers])
        lines: list[str] = []
        for row in table.rows:
            lines.append(writer.writerow([_csv_cell(c) for c in row]))
            if len(lines) >= CSV_ROWS_PER_CHUNK:
                yield "".join(lines)
                lines = []
        if lines:
            yield "".join(lines)


def csv_response(table: Table) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        _csv_stream(table, translation.get_language() or "ja"),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{table.name}.csv"'
    return response
