"""The export pages: the index of what this user may take, and one view per table and format.
Every export of personal data is written to the audit log: who took which, and when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from childcare.models import sessions_visible_to
from registration import audit
from registration.models import Edition, Session
from seminar_site.admin_site import staff_member

from .. import permissions
from . import tables
from .formats import csv_response
from .tables import Table


def respond(table: Table, fmt: str) -> StreamingHttpResponse | FileResponse:
    if fmt == "xlsx":
        # Imported when asked for: openpyxl brings NumPy, tens of MiB in every web worker.
        from .xlsx import xlsx_response

        return xlsx_response(table)
    return csv_response(table)


def _log(request: HttpRequest, kind: str, fmt: str, edition: Edition, **data: Any) -> None:
    audit.log_action(
        f"export.{kind}", actor=staff_member(request), edition=edition, data={"format": fmt, **data}
    )


def _session(session_id: str) -> Session:
    return get_object_or_404(Session.objects.select_related("edition"), pk=int(session_id))


def edition_applications_view(
    request: HttpRequest, edition_code: str, fmt: str
) -> StreamingHttpResponse | FileResponse:
    permissions.require(permissions.may_export_applications(request.user))
    edition = get_object_or_404(Edition, code=edition_code)
    _log(request, "applications", fmt, edition)
    return respond(tables.applications_table(edition=edition), fmt)


def session_applications_view(
    request: HttpRequest, session_id: str, fmt: str
) -> StreamingHttpResponse | FileResponse:
    permissions.require(permissions.may_export_applications(request.user))
    session = _session(session_id)
    _log(request, "applications", fmt, session.edition, session=session.code)
    return respond(tables.applications_table(edition=session.edition, session=session), fmt)


def childcare_view(
    request: HttpRequest, session_id: str, fmt: str
) -> StreamingHttpResponse | FileResponse:
    user = request.user
    permissions.require(permissions.may_export_childcare(user))
    session = _session(session_id)
    permissions.require(permissions.may_export_childcare(user, session))
    parents = permissions.may_export_applications(user)
    health = permissions.may_see_health_notes(user)
    _log(request, "childcare", fmt, session.edition, session=session.code, health_notes=health)
    return respond(
        tables.childcare_table(session=session, parents=parents, health_notes=health), fmt
    )


def reception_view(
    request: HttpRequest, session_id: str, fmt: str
) -> StreamingHttpResponse | FileResponse:
    permissions.require(permissions.may_export_reception(request.user))
    session = _session(session_id)
    _log(request, "reception", fmt, session.edition, session=session.code)
    return respond(tables.reception_table(session=session), fmt)


def booths_view(
    request: HttpRequest, session_id: str, fmt: str
) -> StreamingHttpResponse | FileResponse:
    permissions.require(permissions.may_export_booths(request.user))
    return respond(tables.booths_table(session=_session(session_id)), fmt)


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
        "applications": permissions.may_export_applications(user),
        "childcare": permissions.may_export_childcare(user),
        "reception": permissions.may_export_reception(user),
        "booths": permissions.may_export_booths(user),
    }
    permissions.require(any(allowed.values()))
    rosters = (
        set(sessions_visible_to(user).values_list("pk", flat=True))
        if allowed["childcare"]
        else set()
    )
    editions = []
    for edition in Edition.objects.prefetch_related("sessions"):
        sessions = [
            SessionExports(
                session=s,
                applications=allowed["applications"],
                childcare=s.pk in rosters,
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
        "admin/office/exports.html",
        {
            **admin.site.each_context(request),
            "title": _("Exports"),
            "editions": editions,
            "can_export_applications": allowed["applications"],
            "formats": ["csv", "xlsx"],
        },
    )
