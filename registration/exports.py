"""Exports for the office: applications, childcare roster, reception list, booth interest.

Each export is a `Table`: translated headers and rows read from the database in chunks
(`values_list(...).iterator(chunk_size=2000)`), never a list of every row. It is written as

- CSV for Japanese Excel: UTF-8 with a BOM (without it Excel reads Shift_JIS and garbles every
  name), CRLF line endings, minimal quoting; streamed with a StreamingHttpResponse;
- XLSX (registration/xlsx.py, imported only when asked for): openpyxl's write-only workbook
  (rows go straight to disk), saved to a temporary file that a FileResponse streams and deletes
  when it is closed.

A parent types the text that ends up in these cells, so a cell that Excel would run as a formula
(`=HYPERLINK(...)`, `+`, `-`, `@`) is neutralised: prefixed with a quote in CSV, stored as text
with Excel's own quote prefix in XLSX.

Who may export what (every view sits behind the admin login):
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

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, re_path
from django.utils import timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from childcare.models import Child, ChildcareAssignment, ChildcareBand, age_in_months, band_for
from lottery.models import LotteryResult

from . import audit, municipalities
from .models import GRADE_LABELS, Application, Booth, Edition, Option, Organisation, Session
from .normalize import format_phone
from .reception import holders

Cell = str | int | dt.date | dt.datetime | None

CHUNK_SIZE = 2000
CSV_ROWS_PER_CHUNK = 500  # rows joined into one chunk of the streamed response
# OWASP's list: what makes Excel (or LibreOffice) read a cell as a formula; and their full-width
# forms, which a Japanese keyboard types and which Japanese Excel reads as the same operators.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Table:
    name: str  # ASCII file name without extension, e.g. "applications-2026-tama"
    title: str  # translated; the XLSX sheet's name
    headers: list[str]
    rows: Iterable[Sequence[Cell]]


# --- Writing -------------------------------------------------------------------------------


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


def respond(table: Table, fmt: str) -> StreamingHttpResponse | FileResponse:
    if fmt == "xlsx":
        # Imported when asked for: openpyxl brings NumPy, tens of MiB in every web worker.
        from .xlsx import xlsx_response

        return xlsx_response(table)
    return csv_response(table)


# --- The tables ----------------------------------------------------------------------------


MOBILE_PREFIXES = ("050", "070", "080", "090")


def _phone(digits: str) -> str:
    """Hyphenated, as people read it, and so that Excel keeps the leading zero. Mobile numbers
    (most parents') are cut by hand: phonenumbers takes ~0.3 ms a number, too slow for 100,000
    rows."""
    if len(digits) == 11 and digits.startswith(MOBILE_PREFIXES):
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    return format_phone(digits)


def _municipality_labels() -> dict[str, str]:
    return {m.key: m.name for m in municipalities.all_municipalities()}


def _header(model: Any, field: str) -> str:
    return str(capfirst(model._meta.get_field(field).verbose_name))


def _option_labels(edition_id: int) -> dict[int, str]:
    """Short, translated option names: 'Tama: At the venue'."""
    return {
        o.pk: f"{o.session.name}: {o.get_kind_display()}"
        for o in Option.objects.filter(session__edition=edition_id).select_related("session")
    }


def applications_table(*, edition: Edition, session: Session | None = None) -> Table:
    """Every application of the edition (or choosing the session), whatever its status."""
    options = _option_labels(edition.pk)
    statuses = {s.value: str(s.label) for s in Application.Status}
    fallbacks = {f.value: str(f.label) for f in Application.Fallback}
    outcomes = {o.value: str(o.label) for o in LotteryResult.Outcome}
    childcare = {c.value: str(c.label) for c in LotteryResult.Childcare}
    grades = {code: str(label) for code, label in GRADE_LABELS.items()}
    municipality_names = _municipality_labels()
    yes = _("Yes")
    children_booked = Coalesce(
        Subquery(
            Child.objects.filter(application=OuterRef("pk"))
            .values("application")
            .annotate(n=Count("pk"))
            .values("n"),
            output_field=IntegerField(),
        ),
        Value(0),
    )
    queryset = Application.objects.filter(edition=edition)
    if session is not None:
        queryset = queryset.for_session(session)
    rows = (
        queryset.annotate(children_booked=children_booked)
        .order_by("created_at", "pk")
        .values_list(
            "number",
            "status",
            "created_at",
            "choice_1",
            "choice_2",
            "choice_3",
            "family_name",
            "given_name",
            "family_name_kana",
            "given_name_kana",
            "email",
            "phone",
            "municipality",
            "grades",
            "adults",
            "children",
            "children_booked",
            "childcare_fallback",
            "needs_sign_language",
            "needs_wheelchair_space",
            "needs_other",
            "questions",
            "language",
            "lottery_result__outcome",
            "lottery_result__rank",
            "place__option",
            "place__childcare",
            "place__promoted",
            "withdrawn_at",
            "status_reason",
        )
    )

    def lines() -> Iterator[list[Cell]]:
        for r in rows.iterator(chunk_size=CHUNK_SIZE):
            (number, status, created, c1, c2, c3, family, given, family_kana, given_kana) = r[:10]
            (email, phone, municipality, grade_codes, adults, children, booked, fallback) = r[10:18]
            (sign, wheelchair, other, questions, language, outcome, rank) = r[18:25]
            (place_option, place_childcare, promoted, withdrawn_at, reason) = r[25:]
            yield [
                number,
                statuses.get(status, status),
                created,
                options.get(c1, ""),
                options.get(c2, "") if c2 else "",
                options.get(c3, "") if c3 else "",
                family,
                given,
                family_kana,
                given_kana,
                email,
                _phone(phone),
                municipality_names.get(municipality, municipality),
                ", ".join(grades.get(g, g) for g in grade_codes.split(",") if g),
                adults,
                children,
                booked,
                fallbacks.get(fallback, ""),
                yes if sign else "",
                yes if wheelchair else "",
                other,
                questions,
                language,
                outcomes.get(outcome, "") if outcome else "",
                rank,
                options.get(place_option, "") if place_option else "",
                childcare.get(place_childcare, "") if place_childcare else "",
                yes if promoted else "",
                withdrawn_at,
                reason,
            ]

    a = Application
    headers = [
        _header(a, "number"),
        _header(a, "status"),
        _header(a, "created_at"),
        _header(a, "choice_1"),
        _header(a, "choice_2"),
        _header(a, "choice_3"),
        _header(a, "family_name"),
        _header(a, "given_name"),
        _header(a, "family_name_kana"),
        _header(a, "given_name_kana"),
        _header(a, "email"),
        _header(a, "phone"),
        _header(a, "municipality"),
        _header(a, "grades"),
        _header(a, "adults"),
        _header(a, "children"),
        _("Children in childcare"),
        _header(a, "childcare_fallback"),
        _header(a, "needs_sign_language"),
        _header(a, "needs_wheelchair_space"),
        _header(a, "needs_other"),
        _header(a, "questions"),
        _header(a, "language"),
        _("Lottery result"),
        _header(LotteryResult, "rank"),
        _("Place held now"),
        _("Childcare"),
        _("From the waiting list"),
        _header(a, "withdrawn_at"),
        _header(a, "status_reason"),
    ]
    scope = f"{edition.code}-{session.code}" if session else edition.code
    return Table(
        f"applications-{scope}",
        str(capfirst(Application._meta.verbose_name_plural)),
        headers,
        lines(),
    )


def childcare_table(*, session: Session, parents: bool, health_notes: bool) -> Table:
    """The children expected in the session's childcare (`Child.objects.at_sessions`), granted
    first, then by age band, youngest first.

    The parents' names and phone only for staff who see applications anyway (`parents`): the
    childcare staff get the application number and nothing else of the parents; the children's
    allergies and notes only with `health_notes`.
    """
    bands = list(ChildcareBand.objects.filter(session=session).select_related("session"))
    labels = {c.value: str(c.label) for c in LotteryResult.Childcare}
    no_place = _("No place yet (before the draw or on a waiting list)")
    rows = (
        Child.objects.at_sessions([session])
        .order_by(
            F("application__place__childcare").asc(nulls_last=True),
            "-date_of_birth",
            "name_kana",
            "pk",
        )
        .values_list(
            "name",
            "name_kana",
            "date_of_birth",
            "notes",
            "application__number",
            "application__place__childcare",
            "application__family_name",
            "application__given_name",
            "application__family_name_kana",
            "application__given_name_kana",
            "application__phone",
        )
    )

    def lines() -> Iterator[list[Cell]]:
        for r in rows.iterator(chunk_size=CHUNK_SIZE):
            name, kana, born, notes, number, status = r[:6]
            family, given, family_kana, given_kana, phone = r[6:]
            band = band_for(bands, born)
            if band is None:
                continue  # no band fits: the child stays with the parents (as in the lottery)
            months = age_in_months(born, session.date)
            age = _("%(years)d years %(months)d months") % {
                "years": months // 12,
                "months": months % 12,
            }
            line: list[Cell] = [band.label, name, kana, born, age, number]
            line.append(labels.get(status, status) if status else no_place)
            if parents:
                line += [f"{family} {given}", f"{family_kana} {given_kana}", _phone(phone)]
            if health_notes:
                line.append(notes)
            yield line

    headers = [
        str(capfirst(ChildcareBand._meta.verbose_name)),
        _header(Child, "name"),
        _header(Child, "name_kana"),
        _header(Child, "date_of_birth"),
        _("Age on the session date"),
        _header(Application, "number"),
        _("Childcare"),
    ]
    if parents:
        headers += [_("Parent's name"), _("Parent's furigana"), _header(Application, "phone")]
    if health_notes:
        headers.append(_header(Child, "notes"))
    return Table(
        f"childcare-{session.edition.code}-{session.code}", _("Childcare roster"), headers, lines()
    )


def reception_table(*, session: Session) -> Table:
    """The parties expected at the venue, by furigana, with their arrival if recorded."""
    childcare = {c.value: str(c.label) for c in LotteryResult.Childcare}
    yes = _("Yes")
    rows = (
        holders(session)
        .order_by("family_name_kana", "given_name_kana", "pk")
        .values_list(
            "number",
            "family_name_kana",
            "given_name_kana",
            "family_name",
            "given_name",
            "adults",
            "children",
            "place__childcare",
            "needs_sign_language",
            "needs_wheelchair_space",
            "needs_other",
            "attendance__arrived_at",
            "attendance__heads",
        )
    )

    def lines() -> Iterator[list[Cell]]:
        for r in rows.iterator(chunk_size=CHUNK_SIZE):
            number, f_kana, g_kana, family, given, adults, children, care = r[:8]
            sign, wheelchair, other, arrived_at, arrived_heads = r[8:]
            yield [
                number,
                f"{f_kana} {g_kana}",
                f"{family} {given}",
                adults + children,
                adults,
                children,
                childcare.get(care, ""),
                yes if sign else "",
                yes if wheelchair else "",
                other,
                arrived_at,
                arrived_heads,
            ]

    a = Application
    headers = [
        _header(a, "number"),
        _("Furigana"),
        _("Name"),
        _("People"),
        _header(a, "adults"),
        _header(a, "children"),
        _("Childcare"),
        _header(a, "needs_sign_language"),
        _header(a, "needs_wheelchair_space"),
        _header(a, "needs_other"),
        _("Arrived at"),
        _("People arrived"),
    ]
    return Table(
        f"reception-{session.edition.code}-{session.code}", _("Reception list"), headers, lines()
    )


def booths_table(*, session: Session) -> Table:
    """How many active applications chose each booth, and how many of them hold a venue place."""
    active = Q(interested__status=Application.Status.ACTIVE)
    holding = active & Q(
        interested__place__option__session=session,
        interested__place__option__kind=Option.Kind.VENUE,
    )
    categories = {c.value: str(c.label) for c in Organisation.Category}
    booths = (
        Booth.objects.filter(session=session)
        .annotate(
            n_interested=Count("interested", filter=active, distinct=True),
            n_holding=Count("interested", filter=holding, distinct=True),
        )
        .order_by("number")
        .values_list(
            "number",
            "organisation__name_ja",
            "organisation__name_en",
            "organisation__category",
            "n_interested",
            "n_holding",
        )
    )
    english = (translation.get_language() or "ja").startswith("en")

    def lines() -> Iterator[list[Cell]]:
        for number, name_ja, name_en, category, interested, holding in booths.iterator(
            chunk_size=CHUNK_SIZE
        ):
            yield [
                number,
                (name_en if english and name_en else name_ja),
                categories.get(category, category),
                interested,
                holding,
            ]

    headers = [
        _header(Booth, "number"),
        _header(Booth, "organisation"),
        _header(Organisation, "category"),
        _("Interested (active applications)"),
        _("Interested and holding a venue place"),
    ]
    return Table(
        f"booths-{session.edition.code}-{session.code}", _("Booth interest"), headers, lines()
    )


# --- Who may export what -------------------------------------------------------------------


def can_export_applications(user: Any) -> bool:
    return bool(user.has_perm("registration.view_application"))


def can_export_reception(user: Any) -> bool:
    return bool(
        user.has_perm("registration.check_in") or user.has_perm("registration.view_application")
    )


def can_export_booths(user: Any) -> bool:
    return bool(
        user.has_perm("registration.view_application") or user.has_perm("registration.view_booth")
    )


def can_see_health_notes(user: Any) -> bool:
    return bool(user.has_perm("childcare.view_health_notes"))


def assigned_session_ids(user: Any) -> set[int] | None:
    """The sessions whose roster a user may export; None for all of them.

    Staff who see applications (the office, administrators) are not limited: they see the
    parents' data anyway. Childcare staff are limited to the sessions they are assigned to.
    """
    if user.has_perm("registration.view_application"):
        return None
    return set(
        ChildcareAssignment.objects.filter(user_id=user.pk).values_list("session_id", flat=True)
    )


def can_export_childcare(user: Any, session: Session | None = None) -> bool:
    if not user.has_perm("childcare.view_child"):
        return False
    if session is None:
        return True
    allowed = assigned_session_ids(user)
    return allowed is None or session.pk in allowed


def _staff(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


def _log(request: HttpRequest, kind: str, fmt: str, edition: Edition, **data: Any) -> None:
    audit.log_action(
        f"export.{kind}",
        actor=_staff(request),
        actor_label=request.user.get_username(),
        edition=edition,
        data={"format": fmt, **data},
    )


# --- Views ---------------------------------------------------------------------------------


def _session(session_id: str) -> Session:
    return get_object_or_404(Session.objects.select_related("edition"), pk=int(session_id))


def edition_applications_view(
    request: HttpRequest, edition_code: str, fmt: str
) -> StreamingHttpResponse:
    if not can_export_applications(request.user):
        raise PermissionDenied
    edition = get_object_or_404(Edition, code=edition_code)
    _log(request, "applications", fmt, edition)
    return respond(applications_table(edition=edition), fmt)


def session_applications_view(
    request: HttpRequest, session_id: str, fmt: str
) -> StreamingHttpResponse:
    if not can_export_applications(request.user):
        raise PermissionDenied
    session = _session(session_id)
    _log(request, "applications", fmt, session.edition, session=session.code)
    return respond(applications_table(edition=session.edition, session=session), fmt)


def childcare_view(request: HttpRequest, session_id: str, fmt: str) -> StreamingHttpResponse:
    if not can_export_childcare(request.user):
        raise PermissionDenied
    session = _session(session_id)
    if not can_export_childcare(request.user, session):
        raise PermissionDenied
    parents = can_export_applications(request.user)
    health = can_see_health_notes(request.user)
    _log(request, "childcare", fmt, session.edition, session=session.code, health_notes=health)
    table = childcare_table(session=session, parents=parents, health_notes=health)
    return respond(table, fmt)


def reception_view(request: HttpRequest, session_id: str, fmt: str) -> StreamingHttpResponse:
    if not can_export_reception(request.user):
        raise PermissionDenied
    session = _session(session_id)
    _log(request, "reception", fmt, session.edition, session=session.code)
    return respond(reception_table(session=session), fmt)


def booths_view(request: HttpRequest, session_id: str, fmt: str) -> StreamingHttpResponse:
    if not can_export_booths(request.user):
        raise PermissionDenied
    session = _session(session_id)
    return respond(booths_table(session=session), fmt)


@dataclass
class SessionExports:
    session: Session
    applications: bool
    childcare: bool
    reception: bool
    booths: bool


def index_view(request: HttpRequest) -> HttpResponse:
    """Every export this user may take, per edition and session, in CSV and XLSX."""
    user = request.user
    allowed = {
        "applications": can_export_applications(user),
        "childcare": can_export_childcare(user),
        "reception": can_export_reception(user),
        "booths": can_export_booths(user),
    }
    if not any(allowed.values()):
        raise PermissionDenied
    assigned = assigned_session_ids(user) if allowed["childcare"] else None
    editions = []
    for edition in Edition.objects.prefetch_related("sessions"):
        sessions = [
            SessionExports(
                session=s,
                applications=allowed["applications"],
                childcare=allowed["childcare"] and (assigned is None or s.pk in assigned),
                reception=allowed["reception"],
                booths=allowed["booths"],
            )
            for s in edition.sessions.all()
        ]
        sessions = [s for s in sessions if s.applications or s.childcare or s.reception or s.booths]
        if sessions:
            editions.append({"edition": edition, "sessions": sessions})
    return TemplateResponse(
        request,
        "admin/exports/index.html",
        {
            **admin.site.each_context(request),
            "title": _("Exports"),
            "editions": editions,
            "can_export_applications": allowed["applications"],
            "formats": ["csv", "xlsx"],
        },
    )


FORMAT = r"(?P<fmt>csv|xlsx)"


def export_urls(site: admin.AdminSite | None = None) -> list[URLPattern]:
    """The export pages, for an admin's get_urls (names become ``admin:registration_export_*``)."""
    view: Callable[..., Any] = (site or admin.site).admin_view
    return [
        path("exports/", view(index_view), name="registration_export_index"),
        re_path(
            rf"^exports/edition/(?P<edition_code>[-\w]+)/applications\.{FORMAT}$",
            view(edition_applications_view),
            name="registration_export_edition_applications",
        ),
        re_path(
            rf"^exports/session/(?P<session_id>\d+)/applications\.{FORMAT}$",
            view(session_applications_view),
            name="registration_export_session_applications",
        ),
        re_path(
            rf"^exports/session/(?P<session_id>\d+)/childcare\.{FORMAT}$",
            view(childcare_view),
            name="registration_export_childcare",
        ),
        re_path(
            rf"^exports/session/(?P<session_id>\d+)/reception\.{FORMAT}$",
            view(reception_view),
            name="registration_export_reception",
        ),
        re_path(
            rf"^exports/session/(?P<session_id>\d+)/booths\.{FORMAT}$",
            view(booths_view),
            name="registration_export_booths",
        ),
    ]
