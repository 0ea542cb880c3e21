"""Exports for the office: applications, childcare roster, reception list, booth interest.

Each export is a `Table`: translated headers and rows read from the database in chunks
(`values_list(...).iterator(chunk_size=2000)`), never a list of every row. It is written as

- CSV for Japanese Excel: UTF-8 with a BOM (without it Excel reads Shift_JIS and garbles every
  name), CRLF line endings, minimal quoting; streamed with a StreamingHttpResponse;
- XLSX (xlsx.py, imported only when asked for): openpyxl's write-only workbook
  (rows go straight to disk), saved to a temporary file that a FileResponse streams and deletes
  when it is closed.

A parent types the text that ends up in these cells, so a cell that Excel would run as a formula
(`=HYPERLINK(...)`, `+`, `-`, `@`) is neutralised: prefixed with a quote in CSV, stored as text
with Excel's own quote prefix in XLSX.

tables.py builds each Table, formats.py writes CSV, xlsx.py XLSX, views.py holds the pages.

Who may export what (office/permissions.py; every view sits behind the admin login):
- applications: `registration.view_application`;
- reception list: `registration.check_in` or `registration.view_application`;
- childcare roster: `childcare.view_child`; the children's allergies and notes only with
  `childcare.view_health_notes`; the parents' names and phone only with `view_application`.
  Childcare staff (without `view_application`) only for the sessions they are assigned to
  (`childcare.ChildcareAssignment`), as in the admin's roster;
- booth interest counts (no personal data): `registration.view_application` or
  `registration.view_booth`.
Every export is written to the audit log: who took which personal data, and when.
"""
