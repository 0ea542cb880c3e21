"""The XLSX form of an export (office.exports): openpyxl's write-only workbook, rows
straight to a temporary file that a FileResponse streams and deletes when it is closed."""

from __future__ import annotations

import datetime as dt
import tempfile
from typing import Any

from django.http import FileResponse
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from .formats import FORMULA_PREFIXES
from .tables import Cell, Table

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: Cell) -> Any:
    if isinstance(value, dt.datetime):
        cell = WriteOnlyCell(sheet, timezone.localtime(value).replace(tzinfo=None))
        cell.number_format = "yyyy-mm-dd hh:mm"
        return cell
    if isinstance(value, dt.date):
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = "yyyy-mm-dd"
        return cell
    if isinstance(value, str):
        if not value:
            return None  # an empty cell is not written at all: a third of the work
        text = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters make a corrupt file
        if text.startswith(FORMULA_PREFIXES):
            # openpyxl would store "=..." as a formula; keep it text, as Excel does for '=...
            cell = WriteOnlyCell(sheet, text)
            cell.data_type = "s"
            cell.quotePrefix = True
            return cell
        return text
    return value


def xlsx_response(table: Table) -> FileResponse:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_sheet_title(table.title))
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for text in table.headers:
        cell = WriteOnlyCell(sheet, text)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in table.rows:
        sheet.append([_xlsx_cell(sheet, c) for c in row])
    # Unlinked at once: gone when FileResponse closes it, even if the client goes away.
    file = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115
    try:
        workbook.save(file)
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return FileResponse(
        file, as_attachment=True, filename=f"{table.name}.xlsx", content_type=XLSX_CONTENT_TYPE
    )


def _sheet_title(title: str) -> str:
    for ch in "[]:*?/\\":
        title = title.replace(ch, " ")
    return title[:31] or "Sheet"
